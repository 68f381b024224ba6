/**
 * What a worker counts for /metrics, in process (ProxyServer over loopback): the connect timeout as a
 * connect failure with reason "timeout" (a resolver that never answers stands in for a slow dial, so
 * nothing leaves loopback), unresolved names, and the tunnel gauge.
 */
import { afterEach, describe, expect, it } from "vitest"
import { COUNTER_OFFSETS, connectFailureSlot, requestSlot } from "../../../src/runtime/observe/Metrics.ts"
import { baseInit, echoServer, rawClient, type RunningProxy, startProxy } from "../loopback.ts"

const running: Array<RunningProxy> = []
afterEach(async () => {
  for (const p of running.splice(0)) await p.stop(0)
})

describe("worker metrics", () => {
  it("a dial that outlives the connect timeout counts as a connect failure (timeout) and a 504", async () => {
    const p = await startProxy(baseInit({}, { connectTimeout: 50 }), { resolve: () => {} })
    running.push(p)
    const c = rawClient(p.port)
    c.socket.write("GET http://slow.test/ HTTP/1.1\r\nHost: slow.test\r\n\r\n")
    await c.waitFor("\r\n\r\n")
    expect(c.text()).toMatch(/^HTTP\/1\.1 504 /)
    const m = p.server.metricsSnapshot({ p50: 0, p99: 0, max: 0 })
    expect(m.counters[connectFailureSlot("timeout")]).toBe(1)
    expect(m.counters[requestSlot("GET", 504)]).toBe(1)
    c.socket.destroy()
  })

  it("an unresolved name counts as unresolved; an open tunnel is in the gauge until it ends", async () => {
    const echo = await echoServer()
    const p = await startProxy(baseInit())
    running.push(p)
    const bad = rawClient(p.port)
    bad.socket.write("GET http://nowhere.invalid/ HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n")
    await bad.waitFor("\r\n\r\n")
    expect(p.server.metricsSnapshot({ p50: 0, p99: 0, max: 0 }).counters[connectFailureSlot("unresolved")]).toBe(1)

    const t = rawClient(p.port)
    t.socket.write(`CONNECT origin.test:${echo.port} HTTP/1.1\r\nHost: origin.test:${echo.port}\r\n\r\n`)
    await t.waitFor("\r\n\r\n")
    expect(p.server.metricsSnapshot({ p50: 0, p99: 0, max: 0 }).tunnelsOpen).toBe(1)
    t.socket.end()
    await t.waitClose()
    const until = Date.now() + 5000
    while (p.server.metricsSnapshot({ p50: 0, p99: 0, max: 0 }).tunnelsOpen !== 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10))
    const m = p.server.metricsSnapshot({ p50: 0, p99: 0, max: 0 })
    expect(m.tunnelsOpen).toBe(0)
    expect(m.counters[COUNTER_OFFSETS.tunnelsClosed]).toBe(1)
    bad.socket.destroy()
    await echo.close()
  })
})
