/**
 * Deadlines of the real proxy, with short timeouts: slowloris (408), idle tunnels, idle keep-alive
 * connections, connect timeout (504) and an origin that never answers (504).
 * No timing thresholds: each test waits (bounded) for the outcome, never asserts on how long it took.
 */
import { afterAll, beforeAll, describe, it } from "vitest"
import { startBlackhole, startHttpOrigin, startSilentServer, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, get, openTunnel, until } from "./support/wire.ts"

let proxy: Proxy
let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>
let silent: Awaited<ReturnType<typeof startSilentServer>>
let blackhole: Awaited<ReturnType<typeof startBlackhole>>

beforeAll(async () => {
  ;[origin, echo, silent, blackhole, proxy] = await Promise.all([
    startHttpOrigin("t"),
    startTcpServer("echo"),
    startSilentServer(),
    startBlackhole(),
    startProxy({ workers: 2, graceMs: 2000, headTimeoutMs: 1000, keepAliveTimeoutMs: 1000, idleTimeoutMs: 1500, connectTimeoutMs: 1000 }),
  ])
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([origin?.close(), echo?.close(), silent?.close(), blackhole?.close()])
})

// The tests only wait on the proxy's timers and share nothing but the proxy: they run concurrently.
describe.concurrent("timeouts", () => {
  it("slowloris: a partial head gets 408 and the connection is closed", async ({ expect }) => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(`GET http://localhost:${origin.port}/small HTTP/1.1\r\nHost: localhost\r\nX-Slow: `)
      const r = await c.readResponse({ timeoutMs: 10_000 })
      expect(r.status).toBe(408)
      expect(r.headers["connection"]).toBe("close")
      await c.waitEnd()
      expect(origin.seen.filter((s) => s.url === "/small")).toEqual([])
    } finally {
      c.destroy()
    }
  })

  it("slowloris: trickling bytes does not extend the head deadline", async ({ expect }) => {
    const c = await Conn.open(proxy.port)
    try {
      const head = get(`http://localhost:${origin.port}/small`, `X-Pad: ${"p".repeat(200)}\r\n`)
      let i = 0
      const trickle = setInterval(() => {
        if (i < head.length - 3 && !c.closed && !c.ended) void c.write(head[i++]!).catch(() => {})
      }, 50)
      try {
        const r = await c.readResponse({ timeoutMs: 10_000 })
        expect(r.status).toBe(408)
      } finally {
        clearInterval(trickle)
      }
      await c.waitEnd()
    } finally {
      c.destroy()
    }
  })

  it("a connection that sends nothing is closed without a response", async ({ expect }) => {
    const c = await Conn.open(proxy.port)
    try {
      const rest = await c.readToEnd(10_000)
      expect(rest.length).toBe(0)
    } finally {
      c.destroy()
    }
  })

  it("a kept-alive client connection idle past the keep-alive timeout is closed", async ({ expect }) => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(`http://localhost:${origin.port}/small?ka`))
      const r = await c.readResponse()
      expect(r.status).toBe(200)
      expect(r.headers["connection"]).not.toBe("close")
      const rest = await c.readToEnd(10_000) // the proxy closes it, silently
      expect(rest.length).toBe(0)
    } finally {
      c.destroy()
    }
  })

  it("a tunnel idle past the idle timeout is closed (both sides)", async ({ expect }) => {
    const accepted = echo.nextConnection()
    const c = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`)
    try {
      const o = await accepted
      await c.write("hi")
      expect((await c.readBytes(2)).toString()).toBe("hi")
      expect((await c.readToEnd(10_000)).length).toBe(0)
      expect(c.ended || c.closed).toBe(true)
      await until("the origin side of the tunnel is closed", () => o.socket.destroyed || o.ended, 10_000)
    } finally {
      c.destroy()
    }
  })

  it("504 when the origin accepts but never answers (idle timeout before a response)", async ({ expect }) => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(`http://127.0.0.1:${silent.port}/never`))
      const r = await c.readResponse({ timeoutMs: 10_000 })
      expect(r.status).toBe(504)
      await c.waitEnd()
    } finally {
      c.destroy()
    }
  })

  it("504 on a connect timeout (origin whose accept queue is full)", async ({ expect }) => {
    // On loopback nothing times out by itself; a listener with a full accept queue drops SYNs, so connect() hangs.
    expect(await blackhole.verify(300), "a connect to the full accept queue should hang on this kernel").toBe(true)
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(`http://127.0.0.1:${blackhole.port}/`))
      const r = await c.readResponse({ timeoutMs: 10_000 })
      expect(r.status).toBe(504)
      await c.waitEnd()
    } finally {
      c.destroy()
    }
    const t = await Conn.open(proxy.port)
    try {
      await t.write(`CONNECT 127.0.0.1:${blackhole.port} HTTP/1.1\r\nHost: 127.0.0.1:${blackhole.port}\r\n\r\n`)
      const r = await t.readResponse({ timeoutMs: 10_000 })
      expect(r.status).toBe(504)
    } finally {
      t.destroy()
    }
  })
})
