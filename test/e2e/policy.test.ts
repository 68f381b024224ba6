/**
 * The destination policy end to end, on the built proxy. Every connection here goes to 127.0.0.1 (or
 * ::1): an exposed proxy (listening on 0.0.0.0, clients allowed from 127.0.0.0/8) must refuse loopback
 * origins with 403 before dialling them, however the address is spelled or named; an allow rule opens
 * them; deny wins; and no proxy, exposed or not, connects to itself. Rules about other ranges (private,
 * link-local, metadata) are tested on the policy function only (test/runtime/DestinationPolicy.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { curl } from "./support/run.ts"
import { Conn, get, until } from "./support/wire.ts"

let web: HttpOrigin
let tcp: Awaited<ReturnType<typeof startTcpServer>>
/** Listens on 0.0.0.0, no destination rules: the defaults of an exposed proxy. */
let exposed: Proxy
/** Listens on 0.0.0.0 and allows the web origin's port on loopback, but denies the TCP origin. */
let opened: Proxy
/** The default loopback listener, with one name denied and an admin endpoint. */
let local: Proxy
/** A loopback listener behind a load balancer on loopback (PROXY protocol), serving 10.0.0.0/8: exposed. */
let balanced: Proxy

const EXPOSED = ["--allow", "127.0.0.0/8", "--hosts", "origin.test=127.0.0.1"]

beforeAll(async () => {
  ;[web, tcp] = await Promise.all([startHttpOrigin("web"), startTcpServer("echo")])
  ;[exposed, opened, local, balanced] = await Promise.all([
    startProxy({ workers: 1, listenHost: "0.0.0.0", extraArgs: EXPOSED }),
    startProxy({
      workers: 1,
      listenHost: "0.0.0.0",
      extraArgs: [
        ...EXPOSED,
        "--allow-to",
        `127.0.0.0/8:${web.port},${tcp.port}`,
        "--allow-to",
        "origin.test",
        "--deny-to",
        `127.0.0.1:${tcp.port}`,
      ],
    }),
    startProxy({
      workers: 1,
      extraArgs: [
        "--hosts",
        "origin.test=127.0.0.1",
        "--hosts",
        "denied.test=127.0.0.1",
        "--deny-to",
        "denied.test",
        "--admin",
        "127.0.0.1:0",
      ],
    }),
    startProxy({ workers: 1, extraArgs: ["--proxy-protocol-from", "127.0.0.1", "--allow", "10.0.0.0/8"] }),
  ])
})

afterAll(async () => {
  await Promise.all([exposed?.stop(), opened?.stop(), local?.stop(), balanced?.stop()])
  await Promise.all([web?.close(), tcp?.close()])
})

/** Send one raw request head and read the answer. */
const ask = async (proxy: Proxy, head: string) => {
  const c = await Conn.open(proxy.port)
  try {
    await c.write(head)
    return await c.readResponse()
  } finally {
    c.destroy()
  }
}
const connect = (authority: string) => `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`

describe("an exposed proxy (listening on 0.0.0.0) denies loopback origins by default", () => {
  it("CONNECT to a loopback origin: 403 naming the rule and the flag; the origin sees nothing", async () => {
    const before = tcp.conns.length
    const r = await ask(exposed, connect(`127.0.0.1:${tcp.port}`))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toBe(
      `403 Forbidden: destination 127.0.0.1:${tcp.port} denied: loopback (allow it with --allow-to 127.0.0.0/8:${tcp.port})\n`,
    )
    expect(tcp.conns.length).toBe(before)
  })

  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]"],
    ["[::1]", "[::1]"],
    ["localhost", "localhost"],
    ["foo.localhost", "foo.localhost"],
    ["origin.test", "origin.test"],
  ])("plain HTTP to http://%s:port/: 403 and the origin sees no connection", async (host, shown) => {
    const before = web.connections()
    const r = await ask(exposed, get(`http://${host}:${web.port}/name`))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toContain(`destination ${shown}:${web.port}`)
    expect(r.body.toString()).toMatch(/denied: loopback \(allow it with --allow-to (127\.0\.0\.0\/8|\[::1\/128\]):\d+\)/)
    expect(web.connections()).toBe(before)
  })

  it("a --hosts name mapped to 127.0.0.1 is denied like the address: the check is after DNS", async () => {
    const r = await ask(exposed, connect(`origin.test:${tcp.port}`))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toContain(`destination origin.test:${tcp.port} (127.0.0.1) denied: loopback`)
  })

  it("curl sees the 403 for plain HTTP and for a CONNECT tunnel", async () => {
    const plain = await curl(exposed.url, ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${web.port}/name`])
    expect(plain.stdout.toString()).toBe("403")
    const tunnel = await curl(exposed.url, ["-p", "-s", "-o", "/dev/null", "-w", "%{http_connect}", `http://127.0.0.1:${web.port}/name`])
    expect(tunnel.stdout.toString()).toBe("403")
    expect(tunnel.code).not.toBe(0)
  })

  it("the access log says denied", async () => {
    await ask(exposed, get(`http://127.0.0.1:${web.port}/logged`))
    const line = await exposed.waitForLine((l) => l.includes(`GET http://127.0.0.1:${web.port}/logged 403`))
    expect(line).toMatch(/ denied destination 127\.0\.0\.1:\d+ denied: loopback/)
  })

  it("the stats count the denials", async () => {
    /** The `denied=` figure of a stats line printed now (SIGUSR1), after the lines already there. */
    const denied = async (): Promise<number> => {
      const from = exposed.stdout.length
      process.kill(exposed.pid, "SIGUSR1")
      await until("a stats line", () => exposed.stdout.slice(from).some((l) => / stats pid=/.test(l)))
      const line = exposed.stdout.slice(from).find((l) => / stats pid=/.test(l)) as string
      return Number(/ denied=(\d+)/.exec(line)?.[1])
    }
    const before = await denied()
    expect((await ask(exposed, get(`http://127.0.0.1:${web.port}/counted`))).status).toBe(403)
    expect((await ask(exposed, connect(`127.0.0.1:${tcp.port}`))).status).toBe(403)
    // A stats line waits only briefly for the worker's fresh figures (the earlier one may have been behind
    // too): ask again until the two denials are in.
    let after = before
    await until("the two denials counted", async () => (after = await denied()) >= before + 2)
    expect(after).toBeGreaterThanOrEqual(before + 2)
  })
})

describe("a loopback listener behind a load balancer is exposed (issue 17, item 3)", () => {
  // The PROXY header names a client on 10.0.0.0/8: only a field of the header, nothing is sent there.
  const viaBalancer = async (head: string) => {
    const c = await Conn.open(balanced.port)
    try {
      await c.write(`PROXY TCP4 10.1.2.3 127.0.0.1 40000 ${balanced.port}\r\n${head}`)
      return await c.readResponse()
    } finally {
      c.destroy()
    }
  }

  it("a remote client named by the PROXY header cannot reach loopback services: 403, the origin sees nothing", async () => {
    const before = tcp.conns.length
    const r = await viaBalancer(connect(`127.0.0.1:${tcp.port}`))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toContain(`destination 127.0.0.1:${tcp.port} denied: loopback`)
    expect((await viaBalancer(get(`http://127.0.0.1:${web.port}/name`))).status).toBe(403)
    expect(tcp.conns.length).toBe(before)
  })
})

describe("allow and deny rules", () => {
  it("--allow-to opens a loopback port, for HTTP and for CONNECT", async () => {
    const r = await ask(opened, get(`http://127.0.0.1:${web.port}/name`))
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe("hello from web\n")
    const c = await Conn.open(opened.port)
    try {
      await c.write(connect(`127.0.0.1:${web.port}`))
      expect((await c.readHead()).status).toBe(200)
    } finally {
      c.destroy()
    }
  })

  it("a name rule opens what the name resolves to", async () => {
    const r = await ask(opened, get(`http://origin.test:${web.port}/name`))
    expect(r.status).toBe(200)
  })

  it("deny wins over allow; the origin sees nothing", async () => {
    const before = tcp.conns.length
    const r = await ask(opened, connect(`127.0.0.1:${tcp.port}`))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toContain(`rule --deny-to 127.0.0.1:${tcp.port}`)
    expect(tcp.conns.length).toBe(before)
  })

  it("other loopback ports stay closed", async () => {
    const other = web.port + 1 === tcp.port ? web.port + 2 : web.port + 1
    const r = await ask(opened, connect(`127.0.0.1:${other}`))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toContain(`denied: loopback (allow it with --allow-to 127.0.0.0/8:${other})`)
  })
})

describe("a name rule holds for every spelling of the name (issue 17, item 4)", () => {
  it.each([["denied.test"], ["Denied.TEST"], ["denied.test."]])("%s: 403 by the rule", async (host) => {
    const r = await ask(local, connect(`${host}:${tcp.port}`))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toContain("rule --deny-to denied.test")
    const g = await ask(local, get(`http://${host}:${web.port}/name`))
    expect(g.status).toBe(403)
  })

  it.each([["denied.test.."], ["denied..test"], [".denied.test"]])("%s: 400, never resolved", async (host) => {
    const before = tcp.conns.length
    const r = await ask(local, connect(`${host}:${tcp.port}`))
    expect(r.status).toBe(400)
    expect(r.body.toString()).toContain("an empty label in the host name")
    expect((await ask(local, get(`http://${host}:${web.port}/name`))).status).toBe(400)
    expect(tcp.conns.length).toBe(before)
  })
})

// The unspecified address (0.0.0.0) as a destination is "self" too; that is checked on the policy function
// (test/runtime/dial/DestinationPolicy.test.ts), since tests send nothing to an address outside 127.0.0.0/8.
describe("no proxy connects to itself", () => {
  it.each([
    ["the loopback listener, CONNECT to its own address", () => local, () => connect(`127.0.0.1:${local.port}`)],
    ["the loopback listener, CONNECT through a name", () => local, () => connect(`origin.test:${local.port}`)],
    ["the loopback listener, plain HTTP to localhost", () => local, () => get(`http://localhost:${local.port}/`)],
    ["a wildcard listener, even with everything on loopback allowed", () => opened, () => connect(`127.0.0.2:${opened.port}`)],
  ])("%s: 403", async (_name, proxy, head) => {
    const p = proxy()
    const r = await ask(p, head())
    expect(r.status).toBe(403)
    expect(r.body.toString()).toContain("the proxy's own listening socket")
  })

  it("the admin endpoint is the proxy itself too: CONNECT and plain HTTP to its port are 403 (issue 17, item 14)", async () => {
    const line = await local.waitForLine(/listening/)
    const adminPort = Number(/admin endpoint on http:\/\/127\.0\.0\.1:(\d+)\//.exec(line)?.[1])
    expect(adminPort).toBeGreaterThan(0)
    for (const head of [
      connect(`127.0.0.1:${adminPort}`),
      get(`http://127.0.0.1:${adminPort}/metrics`),
      connect(`origin.test:${adminPort}`),
    ]) {
      const r = await ask(local, head)
      expect(r.status).toBe(403)
      expect(r.body.toString()).toContain("the proxy's own listening socket")
    }
  })

  it("40 pipelined CONNECTs to itself: one 403 and a close; the proxy keeps serving", async () => {
    const c = await Conn.open(local.port)
    try {
      await c.write(connect(`127.0.0.1:${local.port}`).repeat(40))
      expect((await c.readResponse()).status).toBe(403)
      await until("the connection to close", () => c.closed || c.ended)
    } finally {
      c.destroy()
    }
    const r = await ask(local, get(`http://127.0.0.1:${web.port}/name`))
    expect(r.status).toBe(200) // a loopback listener allows loopback origins, as before
  })
})
