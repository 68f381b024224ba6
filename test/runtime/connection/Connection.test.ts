import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { afterEach, describe, expect, it, vi } from "vitest"
import type { Connection } from "../../../src/runtime/connection/Connection.ts"
import { makeResolve } from "../../../src/runtime/dial/Resolver.ts"
import { startDnsServer } from "../../e2e/support/dns.ts"
import {
  baseInit,
  closeServer,
  echoServer,
  freePort,
  httpServer,
  listen,
  rawClient,
  type RunningProxy,
  startProxy,
  until,
  waitForLine,
} from "../loopback.ts"

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
    await until("the tunnel to finish", () => p.server.liveConnections === 0)
    const line = await waitForLine(p, /CONNECT/)
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
    await waitForLine(p, / GET http:\/\/origin\.test:\d+\/path\?q=1 200 /)
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

  it("the retry after a reused origin connection failed dials afresh, not another pooled one (docs/reliability.md, F2)", async () => {
    // An origin that answers the first request of each connection and closes a connection on its second
    // request, as one does that closed all its idle connections at once. The first answers wait until two
    // connections each have a request, so that two connections end up in the proxy's pool.
    const sockets: Array<net.Socket> = []
    const waiting: Array<net.Socket> = []
    const answer = (s: net.Socket) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    const origin = net.createServer((s) => {
      sockets.push(s)
      s.on("error", () => {})
      let requests = 0
      let head = ""
      s.on("data", (d: Buffer) => {
        head += d.toString("latin1")
        if (!head.endsWith("\r\n\r\n")) return
        head = ""
        if (++requests > 1) return void s.destroy()
        waiting.push(s)
        if (waiting.length === 2) waiting.splice(0).forEach(answer)
        else if (sockets.length > 2) answer(waiting.shift()!)
      })
    })
    const port = await listen(origin)
    cleanups.push(async () => {
      for (const s of sockets) s.destroy()
      await closeServer(origin)
    })
    const p = await proxy(baseInit())
    const get = `GET http://origin.test:${port}/ HTTP/1.1\r\nHost: origin.test:${port}\r\n\r\n`
    const first = [rawClient(p.port), rawClient(p.port)]
    for (const c of first) c.socket.write(get)
    for (const c of first) await c.waitFor("\r\n\r\nok")
    await vi.waitFor(() => expect(p.server.pool.size).toBe(2), { timeout: 5_000, interval: 5 })
    // The third request takes a pooled connection, which the origin closes; the one retry must not take the other.
    const third = rawClient(p.port)
    third.socket.write(get)
    await third.waitFor("\r\n\r\n")
    expect(third.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    await third.waitFor("\r\n\r\nok")
    expect(sockets).toHaveLength(3)
    for (const c of [...first, third]) c.socket.destroy()
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
    await waitForLine(p, / 502 .*origin-error/)
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
    await until("the connection to finish", () => p.server.liveConnections === 0)
    await until("the late DNS answer", () => answered)
    // A tunnel opened after the answer arrived reaches the origin; had the late answer been dialled, that
    // connection would have been accepted first.
    const probe = await tunnelClient(p, `127.0.0.1:${echo.port}`)
    probe.socket.write("probe")
    await probe.waitFor("\r\n\r\nprobe")
    expect(echo.accepted()).toBe(1)
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
    await until("the connection to finish", () => p.server.liveConnections === 0)
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
    await until("both sockets released", () => p.server.liveConnections === 0)
    expect(p.server.stats.connectionsLive).toBe(0)
  })

  it("shutdown closes idle connections at once and aborts a tunnel when the grace period ends on the worker's clock", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    let now = 0
    const p = await startProxy(baseInit(), { clock: () => now })
    const idle = rawClient(p.port)
    const tunnel = await tunnelClient(p, `origin.test:${echo.port}`)
    await until("both connections accepted", () => p.server.liveConnections === 2)
    const cut: Array<number> = []
    p.server.shutdown(300, (n) => cut.push(n))
    p.server.shutdown(10_000, (n) => cut.push(n)) // a later, longer one never extends the grace period
    await idle.waitClose()
    // 299 ms into the grace period (whatever the real time): the tunnel still relays.
    now = 299
    p.server.deadlines.fire()
    tunnel.socket.write("in grace")
    await tunnel.waitFor("in grace")
    expect(cut).toEqual([])
    now = 300
    p.server.deadlines.fire()
    await tunnel.waitClose()
    await until("drained", () => cut.length === 2)
    expect(cut).toEqual([1, 1]) // the tunnel; the idle connection had gone at once
    expect(p.server.liveConnections).toBe(0)
    expect(p.lines.filter((l) => l.includes("CONNECT"))).toEqual([expect.stringMatching(/ shutdown shutdown: grace period over$/)])
  })

  it("a second shutdown with no grace aborts what is open at once (a second signal)", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p = await startProxy(baseInit(), { clock: () => 0 })
    const tunnels = [await tunnelClient(p, `origin.test:${echo.port}`), await tunnelClient(p, `origin.test:${echo.port}`)]
    const first = new Promise<number>((resolve) => p.server.shutdown(60_000, resolve))
    for (const t of tunnels) {
      t.socket.write("in grace")
      await t.waitFor("in grace")
    }
    const second = new Promise<number>((resolve) => p.server.shutdown(0, resolve))
    for (const t of tunnels) await t.waitClose()
    expect([await first, await second]).toEqual([2, 2])
    expect(p.lines.filter((l) => l.includes("grace period cut short"))).toHaveLength(2)
  })
})
