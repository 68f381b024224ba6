/**
 * KeepaliveArmer: TCP keepalive goes on only for sockets that are still open `armAfterMs` after they
 * were watched, in order, once each; closed sockets are skipped. Real loopback sockets, a test clock.
 */
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { Deadlines } from "../../src/runtime/Deadlines.ts"
import { KeepaliveArmer } from "../../src/runtime/KeepaliveArmer.ts"
import { closeServer, listen } from "./loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** `n` connected client sockets, each recording its setKeepAlive calls. */
const sockets = async (n: number) => {
  const accepted: Array<net.Socket> = []
  const server = net.createServer((s) => accepted.push(s))
  const port = await listen(server)
  const clients = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => resolve(s))
    })),
  )
  cleanups.push(async () => {
    clients.forEach((s) => s.destroy())
    accepted.forEach((s) => s.destroy())
    await closeServer(server)
  })
  return clients.map((socket) => {
    const calls: Array<[boolean | undefined, number | undefined]> = []
    const original = socket.setKeepAlive.bind(socket)
    socket.setKeepAlive = ((enable?: boolean, delay?: number) => {
      calls.push([enable, delay])
      return original(enable, delay)
    }) as typeof socket.setKeepAlive
    return { socket, calls }
  })
}

const setup = () => {
  let now = 1_000
  const deadlines = new Deadlines({ clock: () => now })
  cleanups.push(() => deadlines.stop())
  const armer = new KeepaliveArmer(deadlines, { delayMs: 60_000, armAfterMs: 10_000 })
  return { armer, deadlines, advance: (ms: number) => deadlines.fire((now += ms)) }
}

describe("KeepaliveArmer", () => {
  it("arms a socket once it has been open armAfterMs, with the probe delay, and only once", async () => {
    const { armer, advance } = setup()
    const [a] = await sockets(1)
    armer.watch(a!.socket)
    advance(9_999)
    expect(a!.calls).toEqual([])
    advance(1)
    expect(a!.calls).toEqual([[true, 60_000]])
    expect(armer.armed).toBe(1)
    expect(armer.waiting).toBe(0)
    advance(60_000)
    expect(a!.calls).toHaveLength(1)
  })

  it("arms in arrival order, each at its own age, and skips sockets closed meanwhile", async () => {
    const { armer, advance } = setup()
    const [a, b, c] = await sockets(3)
    armer.watch(a!.socket)
    advance(4_000)
    armer.watch(b!.socket)
    armer.watch(c!.socket)
    c!.socket.destroy()
    advance(6_000) // a is 10 s old
    expect([a!.calls.length, b!.calls.length]).toEqual([1, 0])
    expect(armer.waiting).toBe(2)
    advance(4_000) // b is 10 s old; c is gone
    expect([a!.calls.length, b!.calls.length, c!.calls.length]).toEqual([1, 1, 0])
    expect(armer.armed).toBe(2)
    expect(armer.waiting).toBe(0)
  })

  it("under steady arrivals holds only what is not yet due, and never arms a closed socket", async () => {
    const { armer, advance } = setup()
    const [a] = await sockets(1)
    for (let i = 0; i < 3_000; i++) {
      armer.watch(a!.socket)
      advance(5)
    }
    expect(armer.waiting).toBe(1_999) // watched in the last 10 s
    a!.socket.destroy()
    advance(20_000)
    // Only the entries that came due while it was open armed it (one per 5 ms after the first 10 s).
    expect(a!.calls.length).toBe(armer.armed)
    expect(armer.armed).toBe(3_000 - 10_000 / 5 + 1)
    expect(armer.waiting).toBe(0)
  })
})
