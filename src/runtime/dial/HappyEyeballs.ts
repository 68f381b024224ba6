/**
 * HappyEyeballs: dial one of several addresses of a name, the first to connect wins (RFC 8305).
 *
 * Owns the race only: the order of the attempts (§4: families alternate, starting with the first
 * address's family, which the Resolver makes IPv6 when there is one), the Connection Attempt Delay
 * (§5: the next attempt starts when the previous one failed, or CONNECTION_ATTEMPT_DELAY_MS after it
 * started without connecting), and the end: the winner is handed over connected, with none of our
 * listeners left on it, and every other attempt is destroyed; or, when all failed, the last error.
 *
 * It never makes a socket itself: the caller's `open(address)` does (the Dialer asks its client, a
 * Connection, which builds origin sockets with its own options: read buffers, half-open, keepalive).
 * One address is a race of one. It never filters addresses either: a caller with a destination policy
 * filters the list first and dials what is left.
 *
 * It must never: call `done` twice, call it after `cancel`, or leave an attempt socket alive after
 * the race is over. The callbacks are closures per dial (once per origin connection, never per chunk).
 */
import type * as net from "node:net"
import type { Resolved } from "./Resolver.ts"

/** RFC 8305 §5 recommends 250 ms. */
export const CONNECTION_ATTEMPT_DELAY_MS = 250

/** The result of a race: a connected socket, or the error of the last attempt. */
export type DialDone = (error: Error | undefined, socket: net.Socket | undefined) => void

export interface Dialing {
  /** Stop the race: destroy every attempt; `done` will not be called. */
  readonly cancel: () => void
}

/** RFC 8305 §4: alternate the families, starting with the family of the first address. */
export const dialOrder = (addresses: ReadonlyArray<Resolved>): ReadonlyArray<Resolved> => {
  const first = addresses[0]
  if (first === undefined || addresses.length === 1) return addresses
  const preferred = addresses.filter((a) => a.family === first.family)
  const other = addresses.filter((a) => a.family !== first.family)
  if (other.length === 0) return addresses
  const out: Array<Resolved> = []
  for (let i = 0; i < Math.max(preferred.length, other.length); i++) {
    if (i < preferred.length) out.push(preferred[i]!)
    if (i < other.length) out.push(other[i]!)
  }
  return out
}

/**
 * Race connections to `addresses` (non-empty). `open(address)` starts one attempt and returns its
 * socket (it may throw: that attempt failed). `done` is called once, asynchronously.
 */
export const dial = (
  addresses: ReadonlyArray<Resolved>,
  open: (address: Resolved) => net.Socket,
  done: DialDone,
  delayMs: number = CONNECTION_ATTEMPT_DELAY_MS,
): Dialing => {
  const order = dialOrder(addresses)
  const attempts = new Set<net.Socket>()
  let next = 0
  let over = false
  // Made only when needed: an Error captures a stack trace, measurably costly once per dial.
  let lastError: Error | undefined
  let timer: ReturnType<typeof setTimeout> | undefined

  const stopTimer = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
  }

  const forget = (socket: net.Socket): void => {
    socket.removeListener("connect", onConnect)
    socket.removeListener("error", onError)
    attempts.delete(socket)
  }

  const end = (error: Error | undefined, winner: net.Socket | undefined): void => {
    over = true
    stopTimer()
    if (winner !== undefined) forget(winner)
    for (const socket of attempts) {
      forget(socket)
      socket.destroy()
    }
    done(error, winner)
  }

  /** Start the next attempt now; when none is left and nothing is running, the race is lost. */
  const startNext = (): void => {
    stopTimer()
    while (next < order.length) {
      const address = order[next++]!
      let socket: net.Socket
      try {
        socket = open(address)
      } catch (e) {
        lastError = e instanceof Error ? e : new Error(String(e))
        continue
      }
      attempts.add(socket)
      socket.on("connect", onConnect)
      socket.on("error", onError)
      if (next < order.length) timer = setTimeout(startNext, delayMs)
      return
    }
    if (attempts.size === 0) {
      // Every attempt failed (perhaps synchronously, inside `dial`): `done` is always asynchronous.
      process.nextTick(() => {
        if (!over) end(lastError ?? new Error("no address to dial"), undefined)
      })
    }
  }

  function onConnect(this: net.Socket): void {
    if (!over) end(undefined, this)
  }

  function onError(this: net.Socket, error: Error): void {
    // Node destroys a socket after its error: the attempt is over, the next starts at once (§5).
    forget(this)
    lastError = error
    if (!over) startNext()
  }

  startNext()
  return {
    cancel: () => {
      if (over) return
      over = true
      stopTimer()
      for (const socket of attempts) {
        forget(socket)
        socket.destroy()
      }
    },
  }
}
