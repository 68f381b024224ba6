/**
 * The destination policy inside a worker (ProxyServer + Connection, in-process, loopback only): a name a
 * deny rule names is never looked up; an address is checked as resolved and not dialled when denied;
 * a listener bound to port 0 denies its real port; every denial is counted by its kind.
 */
import { afterEach, describe, expect, it } from "vitest"
import { makeResolve, type ResolveFn } from "../../../src/runtime/dial/Resolver.ts"
import { baseInit, echoServer, rawClient, type RunningProxy, startProxy } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

/** A resolver with the usual rules that remembers every host it was asked for. */
const countingResolver = (): { resolve: ResolveFn; asked: Array<string> } => {
  const asked: Array<string> = []
  const inner = makeResolve({ hosts: { "origin.test": "127.0.0.1" } })
  return {
    asked,
    resolve: (host, cb) => {
      asked.push(host)
      inner(host, cb)
    },
  }
}

const answer = async (p: RunningProxy, head: string): Promise<string> => {
  const c = rawClient(p.port)
  c.socket.write(head)
  await c.waitClose()
  return c.text()
}

describe("the destination policy in a worker", () => {
  it("a deny rule on a name answers 403 without a lookup", async () => {
    const dns = countingResolver()
    const p = await startProxy(baseInit({ denyTo: ["*.blocked.test"] }), { resolve: dns.resolve })
    cleanups.push(() => p.stop(50))
    const text = await answer(p, "CONNECT a.blocked.test:443 HTTP/1.1\r\nHost: a.blocked.test:443\r\n\r\n")
    expect(text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/)
    expect(text).toContain("destination a.blocked.test:443 denied: rule --deny-to *.blocked.test")
    expect(dns.asked).toEqual([])
    expect(p.server.stats.deniedRule).toBe(1)
    expect(p.lines.some((l) => / CONNECT a\.blocked\.test:443 403 .* denied /.test(l))).toBe(true)
  })

  it("an address rule is checked on what the name resolved to, and nothing is dialled", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const dns = countingResolver()
    const p = await startProxy(baseInit({ denyTo: [`127.0.0.0/8:${echo.port}`] }), { resolve: dns.resolve })
    cleanups.push(() => p.stop(50))
    const text = await answer(p, `GET http://origin.test:${echo.port}/ HTTP/1.1\r\nHost: origin.test\r\n\r\n`)
    expect(text).toMatch(/^HTTP\/1\.1 403 /)
    expect(text).toContain(`destination origin.test:${echo.port} (127.0.0.1) denied: rule --deny-to 127.0.0.0/8:${echo.port}`)
    expect(dns.asked).toEqual(["origin.test"])
    expect(echo.accepted()).toBe(0)
  })

  it("a worker bound to port 0 denies its real port, and counts it as self", async () => {
    const p = await startProxy(baseInit())
    cleanups.push(() => p.stop(50))
    const text = await answer(p, `CONNECT 127.0.0.1:${p.port} HTTP/1.1\r\nHost: x\r\n\r\n`)
    expect(text).toContain(`destination 127.0.0.1:${p.port} denied: the proxy's own listening socket`)
    expect(p.server.stats.deniedSelf).toBe(1)
    expect(p.server.snapshot()).toMatchObject({ deniedSelf: 1, deniedRule: 0, deniedRange: 0, deniedPort: 0 })
  })

  it("the default set-up still tunnels to loopback origins", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p = await startProxy(baseInit())
    cleanups.push(() => p.stop(50))
    const c = rawClient(p.port)
    c.socket.write(`CONNECT origin.test:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`)
    await c.waitFor("\r\n\r\n")
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 /)
    c.socket.destroy()
  })
})
