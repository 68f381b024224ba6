/**
 * The Happy Eyeballs race over real loopback sockets: 127.0.0.1 and ::1 only.
 */
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { CONNECTION_ATTEMPT_DELAY_MS, dial, dialOrder } from "../../../src/runtime/dial/HappyEyeballs.ts"
import type { Resolved } from "../../../src/runtime/dial/Resolver.ts"
import { closeServer, freePort, listen, until } from "../loopback.ts"

const v4 = (address: string): Resolved => ({ address, family: 4 })
const v6 = (address: string): Resolved => ({ address, family: 6 })

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

/** A server on 127.0.0.1 only, counting what it accepts. */
const origin = async () => {
  let accepted = 0
  const server = net.createServer((s) => {
    accepted++
    s.destroy()
  })
  const port = await listen(server)
  cleanups.push(() => closeServer(server))
  return { port, accepted: () => accepted }
}

/** Run a race; `opened` are the attempt sockets in order. */
const race = (addresses: ReadonlyArray<Resolved>, open: (a: Resolved) => net.Socket, delayMs?: number) => {
  const opened: Array<net.Socket> = []
  const result = new Promise<{ error: Error | undefined; socket: net.Socket | undefined }>((done) => {
    dial(
      addresses,
      (a) => {
        const s = open(a)
        opened.push(s)
        return s
      },
      (error, socket) => {
        if (socket !== undefined) cleanups.push(() => void socket.destroy())
        done({ error, socket })
      },
      delayMs,
    )
  })
  return { opened, result }
}

describe("dialOrder (RFC 8305 §4)", () => {
  it("alternates the families, starting with the first address's", () => {
    expect(dialOrder([v6("::1"), v6("::2"), v4("127.0.0.1"), v4("127.0.0.2"), v4("127.0.0.3")])).toEqual([
      v6("::1"),
      v4("127.0.0.1"),
      v6("::2"),
      v4("127.0.0.2"),
      v4("127.0.0.3"),
    ])
    expect(dialOrder([v4("127.0.0.1"), v6("::1")])).toEqual([v4("127.0.0.1"), v6("::1")])
    expect(dialOrder([v4("127.0.0.1"), v4("127.0.0.2")])).toEqual([v4("127.0.0.1"), v4("127.0.0.2")])
  })

  it("waits 250 ms before the next attempt by default", () => {
    expect(CONNECTION_ATTEMPT_DELAY_MS).toBe(250)
  })
})

describe("dial", () => {
  it("falls back to IPv4 at once when IPv6 is refused; the winner is connected and ours", async () => {
    const o = await origin()
    const { opened, result } = race([v6("::1"), v4("127.0.0.1")], (a) => net.connect({ host: a.address, port: o.port }))
    const { error, socket } = await result
    expect(error).toBeUndefined()
    expect(socket?.remoteAddress).toBe("127.0.0.1")
    expect(socket?.connecting).toBe(false)
    // The race's listeners are gone: only what the caller adds will be there.
    expect(socket?.listenerCount("connect")).toBe(0)
    expect(opened.length).toBe(2)
    expect(opened[0]!.destroyed).toBe(true)
  })

  it("starts the next address after the delay when the first hangs, and destroys the loser", async () => {
    const o = await origin()
    // The first "attempt" is a socket that never connects (no packet at all): only the delay moves on.
    const { opened, result } = race(
      [v6("::1"), v4("127.0.0.1")],
      (a) => (a.family === 6 ? new net.Socket() : net.connect({ host: a.address, port: o.port })),
      10,
    )
    const { error, socket } = await result
    expect(error).toBeUndefined()
    expect(socket).toBe(opened[1])
    expect(opened[0]!.destroyed).toBe(true)
  })

  it("reports the last error when every address fails", async () => {
    const port = await freePort()
    const { result } = race([v6("::1"), v4("127.0.0.1")], (a) => net.connect({ host: a.address, port }))
    const { error, socket } = await result
    expect(socket).toBeUndefined()
    expect((error as NodeJS.ErrnoException).code).toBe("ECONNREFUSED")
  })

  it("reports a failure to open (bad options) asynchronously, after trying the rest", async () => {
    let called = false
    const { result } = race([v4("127.0.0.1")], () => {
      throw new RangeError("port out of range")
    })
    const pending = result.then((r) => {
      called = true
      return r
    })
    expect(called).toBe(false)
    const { error } = await pending
    expect(error?.message).toBe("port out of range")
  })

  it("cancel destroys every attempt and never calls back", async () => {
    const sockets: Array<net.Socket> = []
    let calls = 0
    const dialing = dial(
      [v6("::1"), v4("127.0.0.1")],
      () => {
        const s = new net.Socket()
        sockets.push(s)
        return s
      },
      () => calls++,
      1,
    )
    await until("the second attempt to start (after 1 ms)", () => sockets.length === 2)
    dialing.cancel()
    await new Promise((r) => setImmediate(r))
    expect(sockets.length).toBe(2)
    expect(sockets.every((s) => s.destroyed)).toBe(true)
    expect(calls).toBe(0)
  })
})
