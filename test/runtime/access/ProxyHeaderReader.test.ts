/**
 * PROXY protocol on the accept path (ProxyServer in-process, loopback only): the header's client is
 * the one `allow` and the access log see, the bytes after the header are the first request, and a
 * connection from an unlisted source, with a malformed header, or without one in time is closed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { WorkerInit } from "../../../src/runtime/protocol.ts"
import { V2_SIGNATURE } from "../../../src/runtime/access/ProxyProtocol.ts"
import { baseInit, httpServer, rawClient, type RunningProxy, startProxy, until, waitForLine } from "../loopback.ts"

let origin: Awaited<ReturnType<typeof httpServer>>

beforeAll(async () => {
  origin = await httpServer((_req, res) => res.end("hello"))
})
afterAll(() => origin.close())

const get = (): string => `GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test:${origin.port}\r\nConnection: close\r\n\r\n`

const v2Header = (command: number, family: number, block: ReadonlyArray<number>): Buffer =>
  Buffer.from([...V2_SIGNATURE, command, family, block.length >> 8, block.length & 0xff, ...block])

/**
 * A proxy that takes PROXY headers from 127.0.0.1 (where the test's clients come from). Trusting PROXY
 * protocol makes it exposed, whose defaults deny loopback: the loopback origin needs an allow rule.
 */
const withProxy = async (overrides: Partial<WorkerInit>, body: (proxy: RunningProxy) => Promise<void>, headTimeout?: number) => {
  const proxy = await startProxy(
    baseInit(
      { proxyProtocolFrom: ["127.0.0.1/32"], allowTo: [`127.0.0.1:${origin.port}`], ...overrides },
      headTimeout === undefined ? {} : { headTimeout },
    ),
  )
  try {
    await body(proxy)
  } finally {
    await proxy.stop()
  }
}

describe("PROXY protocol on the accept path", () => {
  it("v1 header and request in one write: served, logged as the header's client", () =>
    withProxy({ allow: ["192.0.2.0/24"] }, async (proxy) => {
      const c = rawClient(proxy.port)
      c.socket.write(`PROXY TCP4 192.0.2.7 127.0.0.1 40123 ${proxy.port}\r\n${get()}`)
      await c.waitClose()
      expect(c.text()).toMatch(/^HTTP\/1\.1 200 /)
      expect(c.text()).toMatch(/hello$/)
      expect(await waitForLine(proxy, /^192\.0\.2\.7:40123 GET /)).toContain(" 200 ")
    }))

  it("v2 header in pieces, then the request: served, logged as the header's IPv6 client", () =>
    withProxy({ allow: ["2001:db8::/32"] }, async (proxy) => {
      const c = rawClient(proxy.port)
      const src = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 0x07]
      const dst = [...new Array<number>(15).fill(0), 1]
      const header = v2Header(0x21, 0x21, [...src, ...dst, 0x9c, 0x40, 0x01, 0xbb])
      await new Promise<void>((r) => c.socket.once("connect", r))
      for (const piece of [header.subarray(0, 5), header.subarray(5, 13), header.subarray(13, 20), header.subarray(20)]) {
        c.socket.write(piece)
        await new Promise((r) => setTimeout(r, 5))
      }
      c.socket.write(get())
      await c.waitClose()
      expect(c.text()).toMatch(/^HTTP\/1\.1 200 /)
      await waitForLine(proxy, /^\[2001:db8::7\]:40000 GET .* 200 /)
    }))

  it("allow judges the header's client, not the load balancer", () =>
    withProxy({ allow: ["192.0.2.0/24"] }, async (proxy) => {
      const denied = rawClient(proxy.port)
      denied.socket.write(`PROXY TCP4 198.51.100.1 127.0.0.1 5555 ${proxy.port}\r\n${get()}`)
      await denied.waitClose()
      expect(denied.text()).toMatch(/^HTTP\/1\.1 403 /)
      await waitForLine(proxy, /refused client 198\.51\.100\.1:5555: not in the allow-list/)
      // LOCAL (a health check) keeps the real peer, 127.0.0.1, which this allow-list does not name.
      const local = rawClient(proxy.port)
      local.socket.write(Buffer.concat([v2Header(0x20, 0x00, []), Buffer.from(get())]))
      await local.waitClose()
      expect(local.text()).toMatch(/^HTTP\/1\.1 403 /)
      const allowed = rawClient(proxy.port)
      allowed.socket.write(`PROXY TCP4 192.0.2.200 127.0.0.1 6666 ${proxy.port}\r\n${get()}`)
      await allowed.waitClose()
      expect(allowed.text()).toMatch(/^HTTP\/1\.1 200 /)
    }))

  it("v1 UNKNOWN and v2 LOCAL keep the real peer address", () =>
    withProxy({}, async (proxy) => {
      for (const header of [Buffer.from("PROXY UNKNOWN\r\n"), v2Header(0x20, 0x00, [])]) {
        const c = rawClient(proxy.port)
        c.socket.write(Buffer.concat([header, Buffer.from(get())]))
        await c.waitClose()
        expect(c.text()).toMatch(/^HTTP\/1\.1 200 /)
      }
      await waitForLine(proxy, /^127\.0\.0\.1:\d+ GET .* 200 /)
    }))

  it("a connection from a source not listed is closed without an answer", () =>
    withProxy({ proxyProtocolFrom: ["127.0.0.2/32"] }, async (proxy) => {
      const c = rawClient(proxy.port)
      c.socket.write(`PROXY TCP4 192.0.2.7 127.0.0.1 40123 ${proxy.port}\r\n${get()}`)
      await c.waitClose()
      expect(c.text()).toBe("")
      await waitForLine(proxy, /closed connection from 127\.0\.0\.1:\d+: not a --proxy-protocol-from source/)
    }))

  it("a listed source without a header (plain HTTP) is closed without an answer", () =>
    withProxy({}, async (proxy) => {
      const c = rawClient(proxy.port)
      c.socket.write(get())
      await c.waitClose()
      expect(c.text()).toBe("")
      await waitForLine(proxy, /closed: no PROXY protocol header/)
    }))

  it("a malformed header is closed without an answer", () =>
    withProxy({}, async (proxy) => {
      const c = rawClient(proxy.port)
      c.socket.write(`PROXY TCP4 192.0.2.7 127.0.0.1 040123 ${proxy.port}\r\n${get()}`)
      await c.waitClose()
      expect(c.text()).toBe("")
      await waitForLine(proxy, /closed: v1 header: a port is not/)
      expect(proxy.server.snapshot().connectionsLive).toBe(0)
    }))

  it("a header that does not complete within headTimeout is closed", () =>
    withProxy(
      {},
      async (proxy) => {
        const c = rawClient(proxy.port)
        c.socket.write("PROXY TCP4 192.0.2.7 ")
        await c.waitClose()
        expect(c.text()).toBe("")
        await waitForLine(proxy, /closed: no complete PROXY protocol header within the head timeout/)
      },
      100,
    ))

  it("shutdown: a socket still waiting for its header is closed when the grace period ends", async () => {
    const proxy = await startProxy(baseInit({ proxyProtocolFrom: ["127.0.0.1/32"] }))
    const c = rawClient(proxy.port)
    c.socket.write("PROXY ")
    await until("the connection accepted", () => proxy.server.stats.connectionsAccepted === 1)
    await proxy.stop(50) // resolves once drained
    await c.waitClose()
    expect(c.text()).toBe("")
  })
})
