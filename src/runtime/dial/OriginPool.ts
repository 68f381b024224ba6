/**
 * OriginPool: idle keep-alive connections to origins, per worker, keyed by the `host:port` of the
 * core's `Connect` (the name as the client wrote it, before DNS).
 *
 * The core releases an origin connection with `Close(origin, reusable)` when it sits at a message
 * boundary (complete request, delimited response, no `Connection: close`). Instead of destroying it,
 * the Connection hands it here; the next `Connect` to the same `host:port` from any client of this
 * worker takes it back and skips DNS and the TCP handshake. That is what makes many small requests
 * cheap: without it every request costs a connect and a close on both ends.
 *
 * Rules:
 * - An idle connection that the origin closes, resets, or sends anything on is dropped at once
 *   (bytes from an idle origin are not ours to interpret).
 * - A connection put in the pool is not handed out in the same turn of the event loop (a pipelined
 *   request, or another client's request read in the same batch of events): the loop must look at it
 *   in between, so that bytes the origin sent after its response, and that already wait in the kernel,
 *   are read while it idles, and spoil it, instead of being read as the next request's response. One
 *   turn is enough for bytes that arrived before the request that takes the connection: epoll reports
 *   sockets in the order they became readable. Bytes that arrive after it was handed out cannot be told
 *   from a response: the rule of the core that keeps no connection after a response that cannot have a
 *   body (docs/design.md §6.4) is what guards the common case of them.
 * - Idle connections expire after `idleMs` (default 2 s: shorter than common origin keep-alive
 *   timeouts, e.g. Node's 5 s, so we rarely reuse a connection the origin is about to close).
 *   A request can still meet a connection the origin closed a moment before: it gets a 502, as
 *   with any origin that closes without a response.
 * - At most `maxPerOrigin` (256) idle connections per key and `maxTotal` (1024) in all, so that a burst
 *   of concurrent clients to one origin keeps its connections; beyond that the oldest
 *   one of the key is destroyed.
 * - Every pooled socket is destroyed exactly once: on expiry, eviction, origin close, or `close()`.
 * It must never: hand out a socket that is destroyed, half-closed or has buffered unread data, or one in
 * the turn of the event loop it was put in.
 */
import type * as net from "node:net"
import type { Deadlines, Timed } from "../timers/Deadlines.ts"

export interface OriginPoolOptions {
  readonly idleMs: number
  readonly maxPerOrigin: number
  readonly maxTotal: number
}

export const defaultPoolOptions: OriginPoolOptions = { idleMs: 2_000, maxPerOrigin: 256, maxTotal: 1024 }

const kPooled = Symbol("hctunnel.pooled")
/** Set once the pool's listeners are on a socket: they stay (doing nothing while it is not pooled). */
const kWatched = Symbol("hctunnel.pool-watched")
interface PooledSocket extends net.Socket {
  [kPooled]?: Idle | undefined
  [kWatched]?: true
}

/** One idle connection in the pool; its deadline is the expiry. */
class Idle implements Timed {
  deadlineIndex = -1
  deadlineAt = 0
  readonly key: string
  readonly socket: PooledSocket
  /** The pool's turn when it was put in: not handed out before the turn changes. */
  readonly turn: number
  private readonly pool: OriginPool
  constructor(key: string, socket: PooledSocket, pool: OriginPool, turn: number) {
    this.key = key
    this.socket = socket
    this.pool = pool
    this.turn = turn
  }
  onDeadline(): void {
    this.pool.drop(this)
  }
}

function onIdleEvent(this: PooledSocket): void {
  this[kPooled]?.onDeadline()
}

/**
 * For sockets read through `onread` (which emit no 'data' event): bytes arrived on a socket that has no
 * owner. If it is pooled, the pool drops it; otherwise it is being torn down anyway.
 */
export const noticePooledData = (socket: net.Socket): void => {
  const idle = (socket as PooledSocket)[kPooled]
  if (idle !== undefined) idle.onDeadline()
  else socket.destroy()
}

export class OriginPool {
  private readonly byKey = new Map<string, Idle[]>()
  private readonly deadlines: Deadlines
  private readonly options: OriginPoolOptions
  private total = 0
  private closed = false
  /**
   * Counts turns of the event loop in which something was put in (advanced by an immediate, after the
   * poll phase that read the events of that turn); `turnPending`: that immediate is scheduled.
   */
  private turn = 0
  private turnPending = false
  private readonly nextTurn = (): void => {
    this.turnPending = false
    this.turn++
  }
  /** Reuses, for stats. */
  hits = 0

  constructor(deadlines: Deadlines, options: OriginPoolOptions = defaultPoolOptions) {
    this.deadlines = deadlines
    this.options = options
  }

  get size(): number {
    return this.total
  }

  /** Keep `socket` (no listeners of its previous owner left on it) for a later `take(key)`. */
  put(key: string, socket: net.Socket): void {
    const s = socket as PooledSocket
    if (this.closed || s.destroyed || !s.readable || !s.writable || s.readableLength > 0) {
      s.destroy()
      return
    }
    let list = this.byKey.get(key)
    if (list === undefined) this.byKey.set(key, (list = []))
    if (list.length >= this.options.maxPerOrigin) this.drop(list[0]!)
    if (this.total >= this.options.maxTotal) this.dropOldest()
    const idle = new Idle(key, s, this, this.turn)
    if (!this.turnPending) {
      this.turnPending = true
      setImmediate(this.nextTurn)
    }
    s[kPooled] = idle
    if (s[kWatched] === undefined) {
      // Once per socket, not per put/take: a keep-alive connection goes in and out of the pool once per
      // request, and adding and removing listeners each time was a measurable part of a small request.
      s[kWatched] = true
      s.on("data", onIdleEvent)
      s.on("end", onIdleEvent)
      s.on("error", onIdleEvent)
      s.on("close", onIdleEvent)
    }
    s.resume() // so that an origin's FIN or stray bytes are noticed while idle
    list.push(idle)
    this.total++
    this.deadlines.set(idle, this.deadlines.now() + this.options.idleMs)
  }

  /**
   * The most recently pooled live connection for `key` that was not put in during this turn of the event
   * loop, detached from the pool, or undefined. It is still flowing (the taker pauses it if it must:
   * pausing here and resuming there would cost two system calls).
   */
  take(key: string): net.Socket | undefined {
    const list = this.byKey.get(key)
    if (list === undefined) return undefined
    // The newest are at the end: skip those of this turn (they stay), take the next one.
    for (let i = list.length - 1; i >= 0; i--) {
      const idle = list[i]!
      if (idle.turn === this.turn) continue
      list.splice(i, 1)
      this.detach(idle, list)
      const s = idle.socket
      if (!s.destroyed && s.readable && s.writable && s.readableLength === 0) {
        this.hits++
        return s
      }
      s.destroy()
    }
    return undefined
  }

  /** Destroy one pooled connection (expired, evicted, or the origin closed or spoke). */
  drop(idle: Idle): void {
    const list = this.byKey.get(idle.key)
    if (list === undefined) return
    const i = list.indexOf(idle)
    if (i < 0) return
    list.splice(i, 1)
    this.detach(idle, list)
    idle.socket.destroy() // an error after this meets the pool's (now idle) listener: it cannot crash the worker
  }

  /** Destroy every pooled connection and pool nothing more (worker shutdown). */
  close(): void {
    this.closed = true
    for (const list of [...this.byKey.values()]) for (const idle of [...list]) this.drop(idle)
  }

  private dropOldest(): void {
    let oldest: Idle | undefined
    for (const list of this.byKey.values()) {
      const first = list[0]
      if (first !== undefined && (oldest === undefined || first.deadlineAt < oldest.deadlineAt)) oldest = first
    }
    if (oldest !== undefined) this.drop(oldest)
  }

  private detach(idle: Idle, list: Idle[]): void {
    const s = idle.socket
    s[kPooled] = undefined // its listeners stay and do nothing from now on
    this.deadlines.cancel(idle)
    this.total--
    if (list.length === 0) this.byKey.delete(idle.key)
  }
}
