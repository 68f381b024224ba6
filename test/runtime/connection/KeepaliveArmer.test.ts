/**
 * KeepaliveArmer: the worker sweeps its connections every `sweepMs`, only while it has some; a connection
 * arms TCP keepalive on its sockets at its second sweep (10–20 s old), once, and origins it dials after
 * that are armed at birth. The sweep itself runs on a test clock; the connections are real, over loopback.
 */
import type * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import type { Connection } from "../../../src/runtime/connection/Connection.ts"
import { Deadlines } from "../../../src/runtime/timers/Deadlines.ts"
import { type Aging, KeepaliveArmer } from "../../../src/runtime/connection/KeepaliveArmer.ts"
import { baseInit, echoServer, rawClient, type RunningProxy, startProxy, until } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe("KeepaliveArmer", () => {
  it("sweeps every connection each sweepMs while there are any, and stops when there are none", () => {
    let now = 1_000
    const deadlines = new Deadlines({ clock: () => now })
    cleanups.push(() => deadlines.stop())
    const connections = new Set<Aging & { sweeps: number }>()
    const armer = new KeepaliveArmer(deadlines, connections, { delayMs: 60_000, sweepMs: 10_000 })
    const make = () => ({
      sweeps: 0,
      keepaliveSweep: function (this: { sweeps: number }) {
        this.sweeps++
      },
    })
    const a = make()
    connections.add(a)
    armer.wake()
    armer.wake() // a second wake does not move the sweep
    deadlines.fire((now += 9_999))
    expect(a.sweeps).toBe(0)
    deadlines.fire((now += 1))
    expect(a.sweeps).toBe(1)
    const b = make()
    connections.add(b)
    armer.wake()
    deadlines.fire((now += 10_000))
    expect([a.sweeps, b.sweeps]).toEqual([2, 1])
    connections.clear()
    deadlines.fire((now += 10_000))
    expect(deadlines.size).toBe(0) // nothing left to sweep: no timer
  })
})

describe("a connection's keepalive", () => {
  /** Records setKeepAlive calls on `socket`. */
  const spy = (socket: net.Socket) => {
    const calls: Array<[boolean | undefined, number | undefined]> = []
    const original = socket.setKeepAlive.bind(socket)
    socket.setKeepAlive = ((enable?: boolean, delay?: number) => {
      calls.push([enable, delay])
      return original(enable, delay)
    }) as typeof socket.setKeepAlive
    return calls
  }

  it("is armed on both sockets of a tunnel at the second sweep, once", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const p: RunningProxy = await startProxy(baseInit())
    cleanups.push(() => p.stop(50))
    const c = rawClient(p.port)
    c.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`)
    await c.waitFor("\r\n\r\n")
    const [connection] = (p.server as unknown as { connections: Set<Connection> }).connections
    const origin = (connection as unknown as { origin: net.Socket }).origin
    const onClient = spy(connection!.client)
    const onOrigin = spy(origin)
    const sweep = () => p.server.keepalive.onDeadline(p.server.deadlines.now())
    sweep()
    expect([onClient, onOrigin]).toEqual([[], []])
    sweep()
    expect([onClient, onOrigin]).toEqual([[[true, 60_000]], [[true, 60_000]]])
    sweep()
    expect([onClient.length, onOrigin.length]).toEqual([1, 1])
    c.socket.end()
    await c.waitClose()
    await until("the connection to finish", () => p.server.liveConnections === 0)
  })
})
