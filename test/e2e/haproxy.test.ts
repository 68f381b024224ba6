/**
 * hctunnel behind the real HAProxy (mode tcp, PROXY protocol v1 and v2, /healthz checks), all on
 * loopback: curl (bound to 127.0.0.2, so its address differs from HAProxy's 127.0.0.1) -> HAProxy ->
 * two hctunnel instances with --proxy-protocol-from 127.0.0.1, --allow 127.0.0.2 and --allow-to 127.0.0.0/8
 * (PROXY protocol makes a proxy exposed, whose defaults deny loopback) -> loopback origins.
 *
 * The same with HAProxy on ::1 and curl from ::1, so that HAProxy sends TCP6 headers.
 *
 * Proves: plain HTTP and CONNECT work through HAProxy with either header version; the access log and
 * `allow` see curl's address and port, never HAProxy's; a graceful stop (SIGTERM) of one instance
 * moves new clients to the other without one failed request, while a tunnel it carries keeps relaying.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Backend, HAPROXY_CONFIG, type Haproxy, startHaproxy } from "./support/haproxy.ts"
import { freePort, startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { canConnect, ROOT, startProxy, type Proxy } from "./support/proxy.ts"
import { curl, run } from "./support/run.ts"

/** curl's own address: loopback, but not HAProxy's (which reaches the instances from 127.0.0.1). */
const CLIENT = "127.0.0.2"

let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>

beforeAll(async () => {
  ;[origin, echo] = await Promise.all([startHttpOrigin("a"), startTcpServer("echo")])
})
afterAll(async () => {
  await Promise.all([origin?.close(), echo?.close()])
})

interface Instance {
  readonly proxy: Proxy
  readonly adminPort: number
}

const startInstance = async (): Promise<Instance> => {
  const proxy = await startProxy({
    workers: 2,
    graceMs: 20_000,
    // Trusting PROXY protocol makes the proxy exposed (its clients are remote): the loopback origins need an allow rule.
    extraArgs: [
      "--proxy-protocol-from",
      "127.0.0.1/32",
      "--allow",
      `${CLIENT}/32`,
      "--allow",
      "::1/128",
      "--admin",
      "127.0.0.1:0",
      "--allow-to",
      "127.0.0.0/8",
    ],
  })
  const line = await proxy.waitForLine(/listening/)
  const m = /admin endpoint on http:\/\/127\.0\.0\.1:(\d+)\//.exec(line)
  if (m === null) throw new Error(`no admin address in the start-up line: ${line}`)
  return { proxy, adminPort: Number(m[1]) }
}

interface Setup {
  readonly instances: readonly [Instance, Instance]
  readonly haproxy: Haproxy
  readonly url: string
  /** Where curl connects from: 127.0.0.2, or ::1 when HAProxy listens on ::1 (then the headers are TCP6). */
  readonly client: "127.0.0.2" | "::1"
  readonly stop: () => Promise<void>
}

const setUp = async (versions: readonly [1 | 2, 1 | 2], client: "127.0.0.2" | "::1" = CLIENT): Promise<Setup> => {
  const instances = [await startInstance(), await startInstance()] as const
  const backends = instances.map(
    (inst, i): Backend => ({
      address: `127.0.0.1:${inst.proxy.port}`,
      adminPort: inst.adminPort,
      version: versions[i] as 1 | 2,
    }),
  ) as unknown as readonly [Backend, Backend]
  const haproxy = await startHaproxy(await freePort(), backends, client === "::1" ? "::1" : "127.0.0.1")
  return {
    instances,
    haproxy,
    client,
    url: client === "::1" ? `http://[::1]:${haproxy.port}` : `http://127.0.0.1:${haproxy.port}`,
    stop: async () => {
      await haproxy.stop()
      await Promise.all(instances.map((i) => i.proxy.stop()))
    },
  }
}

/** One request through HAProxy from `s.client`; `tunnel` sends it through a CONNECT tunnel (curl -p). `client` as the log writes it. */
const request = async (s: Setup, path: string, tunnel = false) => {
  const r = await curl(s.url, [
    "--interface",
    s.client,
    ...(tunnel ? ["-p"] : []),
    "-w",
    "\n%{http_code} %{local_ip} %{local_port}",
    `http://127.0.0.1:${origin.port}${path}`,
  ])
  const text = r.stdout.toString()
  const [code, ip, port] = text.slice(text.lastIndexOf("\n") + 1).split(" ")
  return {
    exit: r.code,
    stderr: r.stderr,
    body: text.slice(0, text.lastIndexOf("\n")),
    code,
    client: `${ip?.includes(":") ? `[${ip}]` : ip}:${port}`,
  }
}

/** The access-log line (in whichever instance served it) of a request whose target contains `target`. */
const accessLine = async (s: Setup, client: string, target: string): Promise<string> => {
  for (let i = 0; i < 400; i++) {
    for (const inst of s.instances) {
      const line = inst.proxy.stdout.find((l) => l.startsWith(`${client} `) && l.includes(target))
      if (line !== undefined) return line
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(
    `no access-log line for ${client} ${target}\n${s.instances.map((i) => i.proxy.output()).join("\n")}\n${s.haproxy.output()}`,
  )
}

const accessLines = (inst: Instance): Array<string> => inst.proxy.stdout.filter((l) => /^\S+:\d+ (GET|CONNECT) /.test(l))

describe.each([
  ["PROXY protocol v1 (send-proxy) on both servers", [1, 1] as const, CLIENT],
  ["PROXY protocol v2 (send-proxy-v2) on both servers", [2, 2] as const, CLIENT],
  ["PROXY protocol v1 on both servers, IPv6 clients (TCP6 headers)", [1, 1] as const, "::1"],
  ["PROXY protocol v2 on both servers, IPv6 clients (TCP6 headers)", [2, 2] as const, "::1"],
] as const)("hctunnel behind HAProxy: %s", (_name, versions, client) => {
  let s: Setup
  beforeAll(async () => {
    s = await setUp(versions, client)
  }, 90_000)
  /** How the log writes curl's address: "127.0.0.2:port" or "[::1]:port". */
  const clientPattern = client === "::1" ? /^\[::1\]:\d+/ : /^127\.0\.0\.2:\d+/
  afterAll(() => s?.stop(), 30_000)

  it("plain HTTP and CONNECT work, and the log shows curl's address and port, not HAProxy's", { timeout: 60_000 }, async () => {
    for (let i = 0; i < 4; i++) {
      const plain = await request(s, `/small?plain=${i}`)
      expect(plain.exit, plain.stderr).toBe(0)
      expect(plain.code).toBe("200")
      expect(plain.body).toBe("hello from a\n")
      expect(plain.client).toMatch(clientPattern)
      expect(await accessLine(s, plain.client, `/small?plain=${i} 200 `)).toMatch(/ GET http:\/\/127\.0\.0\.1:\d+\/small\?plain=\d 200 /)

      const tunneled = await request(s, `/small?tunnel=${i}`, true)
      expect(tunneled.exit, tunneled.stderr).toBe(0)
      expect(tunneled.code).toBe("200")
      expect(tunneled.body).toBe("hello from a\n")
      expect(await accessLine(s, tunneled.client, ` CONNECT 127.0.0.1:${origin.port} 200 `)).toBeDefined()
    }
    // Every access line names curl's address; HAProxy's 127.0.0.1 never appears as a client.
    const lines = s.instances.flatMap(accessLines)
    expect(lines.length).toBeGreaterThanOrEqual(8)
    for (const line of lines) expect(line).toMatch(clientPattern)
  })
})

describe("hctunnel behind HAProxy: one v1 and one v2 server, one drained gracefully", () => {
  let s: Setup
  beforeAll(async () => {
    s = await setUp([1, 2])
  }, 90_000)
  afterAll(() => s?.stop(), 30_000)

  it("SIGTERM to one instance moves new clients to the other without a failed request; its tunnel keeps relaying", {
    timeout: 90_000,
  }, async () => {
    const [a, b] = s.instances
    // Both serve (leastconn rotates among idle servers): bounded, since a server may start as "down".
    for (let i = 0; i < 300 && (accessLines(a).length === 0 || accessLines(b).length === 0); i++) {
      const r = await request(s, `/small?warm=${i}`)
      expect(r.exit, r.stderr).toBe(0)
      expect(r.code).toBe("200")
      await accessLine(s, r.client, `/small?warm=${i} `)
    }
    expect(accessLines(a).length).toBeGreaterThan(0)
    expect(accessLines(b).length).toBeGreaterThan(0)

    // A tunnel through HAProxy that instance A carries (leastconn sends the second one to A if B got the first).
    const tunnels: Array<RawTunnel> = []
    let held: RawTunnel | undefined
    for (let i = 0; i < 4 && held === undefined; i++) {
      const before = await liveConnections(a)
      const t = await openRawTunnel(s.haproxy.port, `127.0.0.1:${echo.port}`)
      tunnels.push(t)
      expect(await t.echo("ping")).toBe("ping")
      if ((await liveConnections(a)) > before) held = t
    }
    expect(held, "no tunnel landed on instance A").toBeDefined()

    a.proxy.child.kill("SIGTERM")
    await until(async () => (await fetch(`http://127.0.0.1:${a.adminPort}/healthz`)).status === 503)
    // Its listeners are closed (a connection accepted in the instant before would meet the drain idle).
    await until(async () => !(await canConnect(a.proxy.port)))
    // New clients, one after another: not one fails, and none of them reaches A.
    const results: Array<Awaited<ReturnType<typeof request>>> = []
    for (let i = 0; i < 10; i++) results.push(await request(s, `/small?drain=${i}`))
    // A's tunnel still relays during the grace period, then ends; A exits once it is gone.
    expect(await held!.echo("pong")).toBe("pong")
    for (const t of tunnels) t.socket.destroy()
    expect(await a.proxy.exited, a.proxy.output()).toEqual({ code: 0, signal: null })
    for (let i = 0; i < 10; i++) results.push(await request(s, `/small?after=${i}`))
    for (const r of results) {
      expect(r.exit, r.stderr).toBe(0)
      expect(r.code).toBe("200")
      expect(r.body).toBe("hello from a\n")
      await accessLine(s, r.client, "/small?")
      expect(
        b.proxy.stdout.some((l) => l.startsWith(`${r.client} `)),
        `${r.client} served by B`,
      ).toBe(true)
    }
  })
})

/** /stats of an instance: how many client connections it has open. */
const liveConnections = async (inst: Instance): Promise<number> => {
  const r = await fetch(`http://127.0.0.1:${inst.adminPort}/stats`)
  return (JSON.parse(await r.text()) as { connectionsLive: number }).connectionsLive
}

const until = async (f: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 400; i++) {
    if (await f()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error("condition not met within 400 tries")
}

interface RawTunnel {
  readonly socket: net.Socket
  /** Send `text` through the tunnel and read as many bytes back. */
  echo(text: string): Promise<string>
}

/** A CONNECT tunnel through HAProxy from 127.0.0.2. */
const openRawTunnel = (port: number, authority: string): Promise<RawTunnel> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: CLIENT })
    socket.once("error", reject)
    let received = Buffer.alloc(0)
    let want: { n: number; done: (s: string) => void } | undefined
    const check = (): void => {
      if (want === undefined || received.length < want.n) return
      const text = received.subarray(0, want.n).toString()
      received = received.subarray(want.n)
      const w = want
      want = undefined
      w.done(text)
    }
    const tunnel: RawTunnel = {
      socket,
      echo: (text) =>
        new Promise((done) => {
          want = { n: text.length, done }
          socket.write(text)
          check()
        }),
    }
    let head = true
    socket.on("data", (d: Buffer) => {
      received = Buffer.concat([received, d])
      if (head) {
        const end = received.indexOf("\r\n\r\n")
        if (end < 0) return
        const status = received.subarray(0, end).toString("latin1")
        received = received.subarray(end + 4)
        head = false
        if (!/^HTTP\/1\.1 200 /.test(status)) return reject(new Error(`CONNECT answered: ${status}`))
        resolve(tunnel)
      }
      check()
    })
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`)
  })

describe("docs/deploy.md", () => {
  const block = async (language: string, startsWith: string): Promise<string> => {
    const doc = await readFile(join(ROOT, "docs/deploy.md"), "utf8")
    const found = doc.split(/^```/m).find((part) => part.startsWith(`${language}\n${startsWith}`))
    if (found === undefined) throw new Error(`docs/deploy.md has no \`\`\`${language} block starting with ${startsWith}`)
    return found.slice(language.length + 1)
  }

  it("shows the HAProxy configuration of this test verbatim", async () => {
    expect(await block("haproxy", "global")).toBe(HAPROXY_CONFIG)
  })

  it("its systemd unit passes systemd-analyze verify without a warning", { timeout: 30_000 }, async () => {
    const unit = await block("ini", "[Unit]")
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/hctunnel /m)
    const dir = await mkdtemp(join(tmpdir(), "hctunnel-unit-"))
    try {
      // hctunnel is not installed in /usr/local/bin here: verify checks that the program exists.
      await writeFile(join(dir, "hctunnel.service"), unit.replace(/^ExecStart=\/usr\/local\/bin\/hctunnel /m, "ExecStart=/usr/bin/true "))
      const r = await run("systemd-analyze", ["verify", join(dir, "hctunnel.service")])
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("its alert rules pass promtool check rules", { timeout: 30_000 }, async () => {
    const rules = await block("yaml", "groups:")
    const dir = await mkdtemp(join(tmpdir(), "hctunnel-rules-"))
    try {
      await writeFile(join(dir, "hctunnel.rules.yml"), rules)
      const r = await run("promtool", ["check", "rules", join(dir, "hctunnel.rules.yml")])
      expect(r.code, `${r.stdout.toString()}${r.stderr}`).toBe(0)
      expect(r.stdout.toString()).toMatch(/SUCCESS: 8 rules found/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
