import { randomBytes } from "node:crypto"
import { afterEach, describe, expect, it } from "vitest"
import type * as net from "node:net"
import type { Connection } from "../../../src/runtime/connection/Connection.ts"
import { makeResolve } from "../../../src/runtime/dial/Resolver.ts"
import { startDnsServer } from "../../e2e/support/dns.ts"
import { baseInit, echoServer, freePort, httpServer, rawClient, type RunningProxy, sleep, startProxy } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})
const proxy = async (...args: Parameters<typeof startProxy>): Promise<RunningProxy> => {
  const p = await startProxy(...args)
  cleanups.push(() => p.stop(50))
  return p
}

/** A raw client of proxy `p` whose `CONNECT authority` was answered (the 200 head is in its bytes). */
const tunnelClient = async (p: RunningProxy, authority: string): Promise<ReturnType<typeof rawClient>> => {
  const c = rawClient(p.port)
  c.socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`)
  await c.waitFor("\r\n\r\n")
  return c
}

describe("Connection over loopback", () => {
  it("CONNECT tunnels bytes both ways to an echo origin, then logs the tunnel", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p = await proxy(baseInit())
    const c = await tunnelClient(p, `origin.test:${echo.port}`)
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 /)
    const headLength = c.text().length
    c.socket.write("ping through the tunnel")
    await c.waitFor("ping through the tunnel")
    expect(c.text().slice(headLength)).toBe("ping through the tunnel")
    // Client half-closes: the FIN travels to the echo origin, which ends too; the tunnel finishes.
    c.socket.end()
    await c.waitClose()
    await sleep(20)
    expect(p.server.liveConnections).toBe(0)
    const line = p.lines.find((l) => l.includes("CONNECT"))
    expect(line).toMatch(new RegExp(`^127\\.0\\.0\\.1:\\d+ CONNECT origin\\.test:${echo.port} 200 \\d+/\\d+ \\d+ms ok`))
    expect(p.server.stats.tunnels).toBe(1)
    expect(p.server.stats.bytesFromClients).toBeGreaterThan(23)
  })

  it("an idle tunnel's sockets carry one 'end' listener each and no 'drain' listener (memory per tunnel)", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p = await proxy(baseInit())
    const c = await tunnelClient(p, `127.0.0.1:${echo.port}`)
    c.socket.write("x")
    await c.waitFor("\r\n\r\nx")
    const [connection] = (p.server as unknown as { connections: Set<Connection> }).connections
    const origin = (connection as unknown as { origin: net.Socket | undefined }).origin
    expect(origin).toBeDefined()
    for (const socket of [connection!.client, origin!]) {
      expect(socket.listenerCount("end")).toBe(1)
      expect(socket.listenerCount("drain")).toBe(0)
    }
    c.socket.end()
    await c.waitClose()
  })

  it("CONNECT carries 8 MiB each way with backpressure intact", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p = await proxy(baseInit())
    const c = await tunnelClient(p, `127.0.0.1:${echo.port}`)
    const head = c.bytes().length
    const payload = randomBytes(8 * 1024 * 1024)
    c.socket.write(payload)
    await c.waitForBytes(head + payload.length, 20_000)
    expect(c.bytes().subarray(head).equals(payload)).toBe(true)
    c.socket.end()
    await c.waitClose()
  })

  it("GET in absolute form is forwarded to a local http server", async () => {
    const origin = await httpServer((req, res) => {
      res.setHeader("content-type", "text/plain")
      res.end(`hello from ${req.url} via ${req.headers.via ?? "-"}`)
    })
    cleanups.push(origin.close)
    const p = await proxy(baseInit())
    const c = rawClient(p.port)
    c.socket.write(
      `GET http://origin.test:${origin.port}/path?q=1 HTTP/1.1\r\nHost: origin.test:${origin.port}\r\nConnection: close\r\n\r\n`,
    )
    await c.waitClose()
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(c.text()).toContain("hello from /path?q=1 via 1.1 hctunnel-test")
    await sleep(20)
    expect(p.lines.some((l) => / GET http:\/\/origin\.test:\d+\/path\?q=1 200 /.test(l))).toBe(true)
    expect(p.server.stats.requests).toBe(1)
  })

  it("keeps the client connection alive across two requests", async () => {
    let n = 0
    const origin = await httpServer((_req, res) => res.end(`response ${++n}`))
    cleanups.push(origin.close)
    const p = await proxy(baseInit())
    const c = rawClient(p.port)
    const req = `GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test:${origin.port}\r\n\r\n`
    c.socket.write(req)
    await c.waitFor("response 1")
    c.socket.write(req)
    await c.waitFor("response 2")
    expect(c.isClosed()).toBe(false)
    c.socket.end()
    await c.waitClose()
  })

  it("answers 502 for a .invalid name without any DNS query", async () => {
    const dns = await startDnsServer({ "nowhere.invalid": { addresses: ["127.0.0.1"] } })
    cleanups.push(dns.close)
    const p = await proxy(baseInit({ dnsServers: [dns.address] }))
    const c = rawClient(p.port)
    c.socket.write("CONNECT nowhere.invalid:443 HTTP/1.1\r\nHost: nowhere.invalid:443\r\n\r\n")
    await c.waitClose()
    expect(c.text()).toMatch(/^HTTP\/1\.1 502 /)
    expect(dns.questions).toEqual([])
  })

  it("answers 502 when the origin refuses the connection", async () => {
    const port = await freePort()
    const p = await proxy(baseInit())
    const c = rawClient(p.port)
    c.socket.write(`GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
    await c.waitClose()
    expect(c.text()).toMatch(/^HTTP\/1\.1 502 /)
    expect(c.text()).toContain("refused")
    await sleep(20)
    expect(p.lines.some((l) => l.includes(" 502 ") && l.includes("origin-error"))).toBe(true)
  })

  it("drops a DNS answer that arrives after the connect deadline: 504, and no origin socket is opened", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    // The answer comes after the connect deadline, but before the resolver's own query timeout.
    const dns = await startDnsServer({ "slow.test": { addresses: ["127.0.0.1"], delayMs: 300 } })
    cleanups.push(dns.close)
    const resolve = makeResolve({ hostsFile: false, servers: [dns.address], queryTimeoutMs: 5_000 })
    let answered = false
    const p = await proxy(baseInit({ hosts: {} }, { connectTimeout: 50 }), {
      resolve: (host, cb) =>
        resolve(host, (error, addresses) => {
          answered = error === undefined
          cb(error, addresses)
        }),
    })
    const c = rawClient(p.port)
    c.socket.write(`CONNECT slow.test:${echo.port} HTTP/1.1\r\nHost: slow.test:${echo.port}\r\n\r\n`)
    await c.waitClose()
    expect(c.text()).toMatch(/^HTTP\/1\.1 504 /)
    await sleep(400)
    expect(answered).toBe(true)
    expect(echo.accepted()).toBe(0)
    expect(p.server.liveConnections).toBe(0)
  })

  it("closes an idle kept-alive client after keepAliveTimeout", async () => {
    const origin = await httpServer((_req, res) => res.end("ok"))
    cleanups.push(origin.close)
    const p = await proxy(baseInit({}, { keepAliveTimeout: 100 }))
    const c = rawClient(p.port)
    c.socket.write(`GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test:${origin.port}\r\n\r\n`)
    await c.waitFor("ok")
    const answered = c.bytes().length
    // Closed quietly: nothing is written after the response (no timing thresholds: the machine may be busy).
    await c.waitClose(5_000)
    expect(c.bytes().length).toBe(answered)
    await sleep(20)
    expect(p.server.liveConnections).toBe(0)
  })

  it("refuses a client outside the allow-list with 403 and never starts a Postman", async () => {
    const p = await proxy(baseInit({ allow: ["10.0.0.0/8"] }))
    const c = rawClient(p.port)
    c.socket.write("CONNECT origin.test:1 HTTP/1.1\r\nHost: origin.test:1\r\n\r\n")
    await c.waitClose()
    expect(c.text()).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/)
    expect(c.text()).toContain("Connection: close")
    expect(p.server.stats.connectionsLive).toBe(0)
    expect(p.server.stats.connectionsAccepted).toBe(1)
  })

  it("warns once per refused address per interval, not once per connection", async () => {
    const p = await proxy(baseInit({ allow: ["10.0.0.0/8"] }))
    for (let i = 0; i < 4; i++) {
      const c = rawClient(p.port)
      await c.waitClose()
      expect(c.text()).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/)
    }
    expect(p.server.stats.connectionsAccepted).toBe(4)
    expect(p.lines.filter((l) => l.includes("refused client"))).toHaveLength(1)
  })

  it("a client reset mid-tunnel releases both sockets", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p = await proxy(baseInit())
    const c = await tunnelClient(p, `origin.test:${echo.port}`)
    c.socket.resetAndDestroy()
    for (let i = 0; i < 50 && p.server.liveConnections > 0; i++) await sleep(10)
    expect(p.server.liveConnections).toBe(0)
    expect(p.server.stats.connectionsLive).toBe(0)
  })

  it("shutdown closes idle connections at once and aborts a tunnel after the grace period", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p = await startProxy(baseInit())
    const idle = rawClient(p.port)
    const tunnel = rawClient(p.port)
    tunnel.socket.write(`CONNECT origin.test:${echo.port} HTTP/1.1\r\nHost: origin.test:${echo.port}\r\n\r\n`)
    await tunnel.waitFor("\r\n\r\n")
    await sleep(20)
    expect(p.server.liveConnections).toBe(2)
    const t0 = Date.now()
    let drained = false
    const stopped = p.stop(300).then(() => (drained = true))
    await idle.waitClose(5_000)
    expect(drained).toBe(false) // the idle connection went first; the tunnel holds the drain
    expect(tunnel.isClosed()).toBe(false)
    await stopped
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290)
    await tunnel.waitClose(5_000)
    expect(p.server.liveConnections).toBe(0)
    expect(p.lines.some((l) => l.includes("CONNECT") && l.includes("shutdown"))).toBe(true)
  })
})
