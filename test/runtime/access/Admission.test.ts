/**
 * Who gets in, and what a client holds (ProxyServer in-process, loopback only; the PROXY headers name
 * documentation addresses, which are only bytes sent to the proxy on loopback):
 * - the allow-list is judged before a connection slot is taken, so refused clients whose 403 lingers
 *   hold no slot of --max-connections (issue 17 item 12), with or without PROXY protocol;
 * - every per-client mechanism sees the same effective client: the PROXY header's client, else the
 *   socket's peer (issue 17 item 2): the per-client connection limit, the refusal log, the access log, allow;
 * - a client that reset its connection before the worker accepted it is no client to judge (finding F1 of
 *   docs/reliability.md): closed quietly, never refused.
 */
import { spawnSync } from "node:child_process"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeConnectionLimits } from "../../../src/runtime/access/ConnectionLimits.ts"
import { counterSlot } from "../../../src/runtime/observe/Metrics.ts"
import type { WorkerInit } from "../../../src/runtime/protocol.ts"
import { baseInit, httpServer, type RunningProxy, startProxy, waitForLine } from "../loopback.ts"

let origin: Awaited<ReturnType<typeof httpServer>>

beforeAll(async () => {
  origin = await httpServer((_req, res) => res.end("hello"))
})
afterAll(() => origin.close())

const withProxy = async (overrides: Partial<WorkerInit>, body: (proxy: RunningProxy) => Promise<void>) => {
  const proxy = await startProxy(baseInit(overrides))
  try {
    await body(proxy)
  } finally {
    await proxy.stop()
  }
}

/** A client from `localAddress` that keeps its side open (so a 403 can linger) and collects what it reads. */
const client = async (port: number, localAddress: string) => {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress, allowHalfOpen: true })
  socket.on("error", () => {})
  let text = ""
  let ended = false
  let closed = false
  socket.on("data", (d: Buffer) => (text += d.toString("latin1")))
  socket.on("end", () => (ended = true))
  socket.on("close", () => (closed = true))
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve)
    socket.once("error", reject)
  })
  const until = async (what: string, done: () => boolean) => {
    for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10))
    if (!done()) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(text.slice(0, 200))}`)
  }
  return {
    socket,
    text: () => text,
    /** The proxy ended its side (a 403 then FIN, or closed at once). */
    waitEnded: () => until("the end", () => ended || closed),
    waitFor: (s: string) => until(JSON.stringify(s), () => text.includes(s)),
  }
}

const get = (): string => `GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test:${origin.port}\r\n\r\n`

describe("the allow-list is judged before a connection slot is taken (issue 17 item 12)", () => {
  it("a refused client whose 403 lingers holds no slot; allowed clients get every slot", () =>
    withProxy({ allow: ["127.0.0.1/32"], connectionLimits: makeConnectionLimits(2, 2, 1) }, async (proxy) => {
      const refused = await Promise.all([1, 2, 3].map(() => client(proxy.port, "127.0.0.5")))
      for (const r of refused) {
        await r.waitEnded()
        expect(r.text()).toMatch(/^HTTP\/1\.1 403 /)
      }
      // The 403s linger (the clients keep their side open) and count for nothing.
      expect(proxy.server.connectionLimits.total).toBe(0)
      const allowed = await Promise.all([1, 2].map(() => client(proxy.port, "127.0.0.1")))
      for (const a of allowed) {
        a.socket.write(get())
        await a.waitFor("hello")
      }
      expect(proxy.server.connectionLimits.total).toBe(2)
      for (const c of [...refused, ...allowed]) c.socket.destroy()
    }))

  it("with PROXY protocol, the slot taken while the header is read is given back before the 403", () =>
    withProxy(
      {
        allow: ["192.0.2.0/24"],
        proxyProtocolFrom: ["127.0.0.1/32"],
        allowTo: ["127.0.0.0/8"],
        connectionLimits: makeConnectionLimits(2, 2, 1),
      },
      async (proxy) => {
        const refused = await Promise.all([1, 2, 3].map(() => client(proxy.port, "127.0.0.1")))
        for (const r of refused) r.socket.write(`PROXY TCP4 198.51.100.1 127.0.0.1 5555 ${proxy.port}\r\n${get()}`)
        for (const r of refused) {
          await r.waitEnded()
          expect(r.text()).toMatch(/^HTTP\/1\.1 403 /)
        }
        expect(proxy.server.connectionLimits.total).toBe(0)
        const allowed = await client(proxy.port, "127.0.0.1")
        allowed.socket.write(`PROXY TCP4 192.0.2.7 127.0.0.1 5555 ${proxy.port}\r\n${get()}`)
        await allowed.waitFor("hello")
        for (const c of [...refused, allowed]) c.socket.destroy()
      },
    ))
})

describe("every per-client mechanism uses the effective client address (issue 17 item 2)", () => {
  it("behind a load balancer: the per-client limit, allow, the refusal log and the access log all see the header's client", () =>
    withProxy(
      {
        allow: ["192.0.2.0/24"],
        proxyProtocolFrom: ["127.0.0.1/32"],
        allowTo: ["127.0.0.0/8"],
        connectionLimits: makeConnectionLimits(100, 2, 1),
      },
      async (proxy) => {
        // All of them come from the balancer (127.0.0.1); the headers name the clients.
        const from = async (address: string, port: number) => {
          const c = await client(proxy.port, "127.0.0.1")
          c.socket.write(`PROXY TCP4 ${address} 127.0.0.1 ${port} ${proxy.port}\r\n${get()}`)
          return c
        }
        // 192.0.2.7 may hold two connections; its third is closed at once, without a byte.
        const a1 = await from("192.0.2.7", 40001)
        const a2 = await from("192.0.2.7", 40002)
        await a1.waitFor("hello")
        await a2.waitFor("hello")
        const a3 = await from("192.0.2.7", 40003)
        await a3.waitEnded()
        expect(a3.text()).toBe("")
        await waitForLine(proxy, /connection limit reached for client 192\.0\.2\.7: 2 connections open/)
        // Another client behind the same balancer has its own count.
        const b = await from("192.0.2.8", 40004)
        await b.waitFor("hello")
        // The access log names each client as the header did.
        await waitForLine(proxy, /^192\.0\.2\.7:40001 GET .* 200 /)
        await waitForLine(proxy, /^192\.0\.2\.8:40004 GET .* 200 /)
        // allow and the refusal log: the header's client, not the balancer.
        const denied = await from("198.51.100.9", 40005)
        await denied.waitEnded()
        expect(denied.text()).toMatch(/^HTTP\/1\.1 403 /)
        await waitForLine(proxy, /refused client 198\.51\.100\.9:40005: not in the allow-list/)
        expect(proxy.lines.some((l) => /127\.0\.0\.1/.test(l) && /refused|limit reached/.test(l))).toBe(false)
        for (const c of [a1, a2, a3, b, denied]) c.socket.destroy()
      },
    ))
})

/**
 * A client that connects and resets at once, while this thread is blocked (spawnSync): the connection
 * waits in the accept queue, reset, and the proxy accepts a socket that has no peer any more.
 */
const connectAndResetBeforeAccept = (port: number): void => {
  const script = `const s = require("node:net").connect(${port}, "127.0.0.1", () => s.resetAndDestroy()); s.on("close", () => process.exit(0))`
  const child = spawnSync(process.execPath, ["-e", script], { timeout: 10_000 })
  expect(child.status).toBe(0)
}

const waitUntil = async (what: string, done: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10))
  if (!done()) throw new Error(`timed out waiting for ${what}`)
}

describe("a client gone before it was accepted is closed quietly (docs/reliability.md, F1)", () => {
  const refusedTotal = (proxy: RunningProxy): number => {
    const counters = proxy.server.metricsSnapshot({ p50: 0, p99: 0, max: 0 }).counters
    return ["not_allowed", "not_proxy_source"].reduce((n, reason) => n + (counters[counterSlot("connectionsRefused", { reason })] ?? 0), 0)
  }

  const check = (overrides: Partial<WorkerInit>) =>
    withProxy({ ...overrides, connectionLimits: makeConnectionLimits(100, 1, 1) }, async (proxy) => {
      connectAndResetBeforeAccept(proxy.port)
      await waitUntil("the accept", () => proxy.server.stats.connectionsAccepted === 1)
      // Neither a refusal nor an error, nothing held.
      expect(proxy.lines.filter((l) => /refused|not a --proxy-protocol-from source|limit reached/.test(l))).toEqual([])
      expect(refusedTotal(proxy)).toBe(0)
      expect(proxy.server.stats.errors).toBe(0)
      expect(proxy.server.liveConnections).toBe(0)
      expect(proxy.server.connectionLimits.total).toBe(0)
      // The one slot of the per-client limit is free for the next client.
      const next = await client(proxy.port, "127.0.0.1")
      if (overrides.proxyProtocolFrom !== undefined) next.socket.write(`PROXY TCP4 127.0.0.1 127.0.0.1 5555 ${proxy.port}\r\n`)
      next.socket.write(get())
      await next.waitFor("hello")
      next.socket.destroy()
    })

  it("with an allow-list: not logged or counted as refused", () => check({ allow: ["127.0.0.0/8"] }))

  it("with --proxy-protocol-from: not logged or counted as an unlisted source", () =>
    check({ allow: ["127.0.0.0/8"], proxyProtocolFrom: ["127.0.0.1/32"], allowTo: ["127.0.0.0/8"] }))
})
