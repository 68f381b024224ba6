/**
 * Parent (upstream) proxies end to end: a child hctunnel with --upstream, and as its parent a second
 * hctunnel (or, for the parent's refusals, a loopback server that answers 407 to everything and records
 * what it got). Every name comes from --hosts maps given to both proxies; every address is loopback.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import net from "node:net"
import { join } from "node:path"
import { writeFile } from "node:fs/promises"
import { randomBytes, createHash } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeCert, type Cert } from "./support/cert.ts"
import { freePort, LOOPBACK, startHttpOrigin, startTlsOrigin, type Closable, type EchoBody, type HttpOrigin } from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { curl, headerOf, splitIncluded } from "./support/run.ts"
import { Conn } from "./support/wire.ts"

const HOSTS = ["--hosts", `origin.test=${LOOPBACK}`, "--hosts", `direct.test=${LOOPBACK}`]

/** A parent that refuses everything with 407 and keeps the heads it received. */
interface RefusingParent extends Closable {
  readonly heads: string[]
}
const startRefusingParent = async (): Promise<RefusingParent> => {
  const heads: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("error", () => {})
    socket.once("close", () => sockets.delete(socket))
    let got = ""
    socket.on("data", (d: Buffer) => {
      got += d.toString("latin1")
      const end = got.indexOf("\r\n\r\n")
      if (end < 0) return
      heads.push(got.slice(0, end))
      got = ""
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="parent"\r\nContent-Length: 0\r\n\r\n')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  return {
    heads,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

let origin: HttpOrigin
let tls: Closable
let cert: Cert
let parent: Proxy
let child: Proxy
const extra: Array<Proxy> = []
let refusing: RefusingParent

beforeAll(async () => {
  cert = await makeCert()
  ;[origin, tls, refusing] = await Promise.all([startHttpOrigin("a"), startTlsOrigin(cert.key, cert.cert), startRefusingParent()])
  parent = await startProxy({ workers: 1, extraArgs: ["--via", "parent", ...HOSTS] })
  child = await startProxy({
    workers: 1,
    extraArgs: ["--via", "child", "--upstream", parent.url, "--no-upstream", "direct.test", ...HOSTS],
  })
}, 60_000)

afterAll(async () => {
  await Promise.all([parent?.stop(), child?.stop(), ...extra.map((p) => p.stop())])
  await Promise.all([origin?.close(), tls?.close(), refusing?.close()])
  await cert?.remove()
})

const o = (host: string, path: string): string => `http://${host}:${origin.port}${path}`
/** The parent's access-log lines that mention `text`. */
const parentLines = (text: string): string[] => parent.stdout.filter((l) => l.includes(text))

describe("through a parent hctunnel", () => {
  it("GET goes to the parent in absolute-form, and on to the origin", async () => {
    const r = await curl(child.url, ["-i", o("origin.test", "/small?via=parent")])
    expect(r.code, r.stderr).toBe(0)
    const { heads, body } = splitIncluded(r.stdout)
    expect(heads[0]).toMatch(/^HTTP\/1\.1 200 /)
    expect(body.toString()).toBe("hello from a\n")
    expect(headerOf(heads[0]!, "via")).toBe("1.1 parent, 1.1 child")
    const seen = origin.seen.find((s) => s.url === "/small?via=parent")
    expect(seen?.headers.via).toBe("1.1 child, 1.1 parent")
    await parent.waitForLine((l) => l.includes(`GET ${o("origin.test", "/small?via=parent")} 200`))
  })

  it("POST with a body", async () => {
    const body = randomBytes(200_000)
    const file = join(cert.dir, "post.bin")
    await writeFile(file, body)
    const r = await curl(child.url, [
      "--data-binary",
      `@${file}`,
      "-H",
      "Content-Type: application/octet-stream",
      o("origin.test", "/echo"),
    ])
    expect(r.code, r.stderr).toBe(0)
    const echo = JSON.parse(r.stdout.toString()) as EchoBody
    expect(echo.method).toBe("POST")
    expect(echo.length).toBe(body.length)
    expect(echo.sha256).toBe(createHash("sha256").update(body).digest("hex"))
    await parent.waitForLine((l) => l.includes(`POST ${o("origin.test", "/echo")} 200`))
  })

  it("CONNECT becomes a CONNECT to the parent; TLS runs end to end inside", async () => {
    const r = await curl(child.url, ["-i", "--cacert", cert.certFile, `https://${LOOPBACK}:${tls.port}/small`])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toMatch(/HTTP\/1\.1 200[\s\S]*hello over tls\n$/)
    await parent.waitForLine((l) => l.includes(`CONNECT ${LOOPBACK}:${tls.port} 200`))
  })

  it("reuses the kept-alive connection to the parent (two requests, one parent connection)", async () => {
    const r = await curl(child.url, [o("origin.test", "/small?reuse=1"), "--next", "-x", child.url, o("origin.test", "/small?reuse=2")])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toBe("hello from a\nhello from a\n")
    const first = await parent.waitForLine((l) => l.includes("/small?reuse=1 200"))
    const second = await parent.waitForLine((l) => l.includes("/small?reuse=2 200"))
    // The parent's access line starts with its client's address:port: the child's one connection.
    expect(second.split(" ")[0]).toBe(first.split(" ")[0])
  })

  it("Upgrade: the 101 comes back through both proxies and the bytes flow both ways", async () => {
    const c = await Conn.open(child.port)
    try {
      await c.write(
        `GET ${o("origin.test", "/up")} HTTP/1.1\r\nHost: origin.test:${origin.port}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`,
      )
      const h = await c.readHead()
      expect(h.status).toBe(101)
      expect(h.headers["upgrade"]).toBe("echo")
      await c.write("raw bytes after 101")
      expect((await c.readBytes(19)).toString()).toBe("raw bytes after 101")
      c.end()
      await c.waitEnd()
    } finally {
      c.destroy()
    }
    await parent.waitForLine((l) => l.includes(`GET ${o("origin.test", "/up")} 101`))
  })

  it("a --no-upstream destination goes direct: the parent sees nothing of it", async () => {
    const r = await curl(child.url, ["-i", o("direct.test", "/small?direct=1")])
    expect(r.code, r.stderr).toBe(0)
    const { heads } = splitIncluded(r.stdout)
    expect(headerOf(heads[0]!, "via")).toBe("1.1 child")
    expect(origin.seen.find((s) => s.url === "/small?direct=1")?.headers.via).toBe("1.1 child")
    await child.waitForLine((l) => l.includes(`GET ${o("direct.test", "/small?direct=1")} 200`))
    expect(parentLines("direct.test")).toEqual([])
  })
})

describe("a parent that fails", () => {
  it("down: 502 naming the parent, for plain HTTP and for CONNECT", async () => {
    const port = await freePort()
    const p = await startProxy({ workers: 1, extraArgs: ["--via", "child", "--upstream", `http://${LOOPBACK}:${port}`, ...HOSTS] })
    extra.push(p)
    const plain = await curl(p.url, ["-i", o("origin.test", "/small")])
    expect(plain.stdout.toString()).toMatch(/^HTTP\/1\.1 502 /)
    expect(plain.stdout.toString()).toContain(`upstream proxy ${LOOPBACK}:${port} refused the connection`)
    const tunnel = await curl(p.url, ["-v", "--cacert", cert.certFile, `https://${LOOPBACK}:${tls.port}/small`])
    expect(tunnel.code).not.toBe(0)
    expect(tunnel.stderr).toMatch(/CONNECT tunnel failed, response 502|502 Bad Gateway/)
    await p.waitForLine(
      (l) => l.includes(`CONNECT ${LOOPBACK}:${tls.port} 502`) && l.includes(`upstream proxy ${LOOPBACK}:${port} refused the connection`),
    )
  })

  it("407: 502 naming the parent and its answer; ours is the Proxy-Authorization it gets, the client's never", async () => {
    const p = await startProxy({
      workers: 1,
      extraArgs: ["--via", "child", "--upstream", `http://${LOOPBACK}:${refusing.port}`, ...HOSTS],
      env: { HCTUNNEL_UPSTREAM_CREDENTIALS: "child-user:child-pw" },
    })
    extra.push(p)
    const plain = await curl(p.url, ["-i", "--proxy-user", "client:client-pw", o("origin.test", "/small")])
    const text = plain.stdout.toString()
    expect(text).toMatch(/^HTTP\/1\.1 502 /)
    expect(text).toContain(`upstream proxy ${LOOPBACK}:${refusing.port} answered 407 Proxy Authentication Required`)
    expect(text).not.toMatch(/proxy-authenticate/i)
    const tunnel = await curl(p.url, ["-v", "--cacert", cert.certFile, `https://${LOOPBACK}:${tls.port}/small`])
    expect(tunnel.stderr).toMatch(/CONNECT tunnel failed, response 502|502 Bad Gateway/)
    const ours = `Proxy-Authorization: Basic ${Buffer.from("child-user:child-pw").toString("base64")}`
    const [get, connect] = refusing.heads.slice(-2)
    expect(get).toMatch(
      new RegExp(`^GET http://origin\\.test:${origin.port}/small HTTP/1\\.1\\r\\nHost: origin\\.test:${origin.port}\\r\\n`),
    )
    expect(get).toContain(ours)
    expect(get).not.toContain(Buffer.from("client:client-pw").toString("base64"))
    expect(connect).toBe(`CONNECT ${LOOPBACK}:${tls.port} HTTP/1.1\r\nHost: ${LOOPBACK}:${tls.port}\r\n${ours}\r\nVia: 1.1 child`)
  })

  it("a password in the --upstream URL works and is never printed", async () => {
    const p = await startProxy({
      workers: 1,
      logFormat: "json",
      extraArgs: ["--via", "child", "--upstream", `http://someone:hunter2@${LOOPBACK}:${refusing.port}`, ...HOSTS],
    })
    extra.push(p)
    const r = await curl(p.url, ["-i", o("origin.test", "/small?secret")])
    expect(r.stdout.toString()).toMatch(/^HTTP\/1\.1 502 /)
    expect(refusing.heads.at(-1)).toContain(`Proxy-Authorization: Basic ${Buffer.from("someone:hunter2").toString("base64")}`)
    await p.waitForLine((l) => l.includes("/small?secret"))
    expect(p.output().replace(/^\$ .*\n/, "")).not.toContain("hunter2")
  })
})

describe("credentials checked by a parent hctunnel (--auth-file)", () => {
  let dir: string
  let guarded: Proxy
  let right: Proxy
  let wrong: Proxy

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hctunnel-upstream-auth-"))
    const users = join(dir, "users.htpasswd")
    execFileSync("/usr/bin/htpasswd", ["-bBc", "-C", "5", users, "child", "right one"], { stdio: "ignore" })
    const wrongFile = join(dir, "wrong.cred")
    writeFileSync(wrongFile, "child:wrong one\n")
    guarded = await startProxy({ workers: 1, extraArgs: ["--via", "guarded", "--auth-file", users, ...HOSTS] })
    extra.push(guarded)
    ;[right, wrong] = await Promise.all([
      startProxy({
        workers: 1,
        extraArgs: ["--via", "child", "--upstream", guarded.url, ...HOSTS],
        env: { HCTUNNEL_UPSTREAM_CREDENTIALS: "child:right one" },
      }),
      startProxy({
        workers: 1,
        extraArgs: ["--via", "child", "--upstream", guarded.url, "--upstream-credentials-file", wrongFile, ...HOSTS],
      }),
    ])
    extra.push(right, wrong)
  }, 60_000)
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it("the right password: 200 for plain HTTP and through a CONNECT tunnel", async () => {
    const plain = await curl(right.url, ["-i", o("origin.test", "/small?auth=right")])
    expect(plain.stdout.toString()).toMatch(/^HTTP\/1\.1 200 [\s\S]*hello from a\n$/)
    const tunnel = await curl(right.url, ["--cacert", cert.certFile, `https://${LOOPBACK}:${tls.port}/small`])
    expect(tunnel.code, tunnel.stderr).toBe(0)
    expect(tunnel.stdout.toString()).toBe("hello over tls\n")
    // The origin never sees the parent's credentials.
    expect(origin.seen.find((s) => s.url === "/small?auth=right")?.headers["proxy-authorization"]).toBeUndefined()
  })

  it("a wrong password: 502 naming the parent and its 407, for plain HTTP and CONNECT", async () => {
    const name = `${LOOPBACK}:${guarded.port}`
    const plain = await curl(wrong.url, ["-i", o("origin.test", "/small?auth=wrong")])
    expect(plain.stdout.toString()).toMatch(/^HTTP\/1\.1 502 /)
    expect(plain.stdout.toString()).toContain(`upstream proxy ${name} answered 407 Proxy Authentication Required`)
    const tunnel = await curl(wrong.url, ["-v", "--cacert", cert.certFile, `https://${LOOPBACK}:${tls.port}/small`])
    expect(tunnel.code).not.toBe(0)
    expect(tunnel.stderr).toMatch(/CONNECT tunnel failed, response 502|502 Bad Gateway/)
    await wrong.waitForLine((l) => l.includes(`CONNECT ${LOOPBACK}:${tls.port} 502`) && l.includes(`upstream proxy ${name} answered 407`))
    expect(origin.seen.some((s) => s.url === "/small?auth=wrong")).toBe(false)
  })
})

describe("a loop through parents (issue 17, item 11)", () => {
  it("two proxies that are each other's parent: the first turn back is refused (508), as a 502 to the client; no socket pile-up", async () => {
    // A listens on a second, known port, so that B can take it as its parent before A starts.
    const aPort = await freePort()
    // A short connect timeout bounds the pile-up should the loop ever go unseen (each turn waits for the next).
    const b = await startProxy({
      workers: 1,
      connectTimeoutMs: 2000,
      extraArgs: ["--via", "loop-b", "--upstream", `http://${LOOPBACK}:${aPort}`, ...HOSTS],
    })
    extra.push(b)
    const a = await startProxy({
      workers: 1,
      connectTimeoutMs: 2000,
      extraArgs: ["--via", "loop-a", "--listen", `${LOOPBACK}:${aPort}`, "--upstream", b.url, ...HOSTS],
    })
    extra.push(a)
    // CONNECT: A -> B -> A, whose CONNECT from B carries "1.1 loop-a, 1.1 loop-b": 508 there.
    const c = await Conn.open(a.port)
    try {
      await c.write(`CONNECT ${LOOPBACK}:${tls.port} HTTP/1.1\r\nHost: ${LOOPBACK}:${tls.port}\r\n\r\n`)
      const r = await c.readResponse()
      expect(r.status).toBe(502)
      expect(r.body.toString()).toContain(`upstream proxy ${LOOPBACK}:${b.port} answered 502`)
    } finally {
      c.destroy()
    }
    await a.waitForLine((l) => l.includes(`CONNECT ${LOOPBACK}:${tls.port} 508`))
    // Plain HTTP: the forwarded head carries the chain already; A's 508 comes back as the parent's answer.
    const plain = await curl(a.url, ["-s", "-o", "/dev/null", "-w", "%{http_code}", o("origin.test", "/small?loop")])
    expect(plain.stdout.toString()).toBe("508")
    await a.waitForLine((l) => l.includes(`GET ${o("origin.test", "/small?loop")} 508`))
    // One turn each, not a pile: A saw two CONNECTs in all (the client's and B's), B one.
    expect(a.stdout.filter((l) => l.includes(`CONNECT ${LOOPBACK}:${tls.port} `))).toHaveLength(2)
    expect(b.stdout.filter((l) => l.includes(`CONNECT ${LOOPBACK}:${tls.port} `))).toHaveLength(1)
  })
})
