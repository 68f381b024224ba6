/**
 * KeepaliveArmer: turns TCP keepalive probes on for the sockets that live long enough to need them.
 *
 * Keepalive probes find a peer that vanished without a FIN or RST (a laptop closed, a NAT that forgot
 * the flow) after `delayMs` of silence (60 s), well before the idle timeout would. Turning them on costs
 * four setsockopt calls per socket (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT): measured
 * ~7 µs of CPU each socket here, about 6 % of the proxy's CPU for a short-lived tunnel, which needs two
 * sockets and would close long before a probe could be sent. So a socket is armed once it has been open
 * `armAfterMs` (10 s, up to a second more): its first probe then goes out at most that much later than if
 * it had been armed at birth (the kernel counts the idle time from the moment keepalive is switched on).
 *
 * Sockets wait in arrival order (which is also their arming order) in a queue that one deadline of the
 * worker's `Deadlines` drains: no timer per socket, O(1) per socket. The queue holds them weakly: at
 * thousands of short tunnels a second, ten seconds of closed sockets kept alive would cost hundreds of MB.
 * It must never: arm a destroyed socket, keep a socket from being collected, or hold an entry longer than
 * `armAfterMs` plus DRAIN_EVERY_MS.
 */
import type * as net from "node:net"
import type { Deadlines, Timed } from "./Deadlines.ts"

export interface KeepaliveOptions {
  /** Silence before the first probe (TCP_KEEPIDLE). */
  readonly delayMs: number
  /** Age at which a socket is armed. */
  readonly armAfterMs: number
}

export const defaultKeepalive: KeepaliveOptions = { delayMs: 60_000, armAfterMs: 10_000 }

/**
 * The queue is drained at most once per this many ms: each socket has its own due time, and waking for
 * each (every millisecond under thousands of new connections a second) cost more than the arming saves.
 */
const DRAIN_EVERY_MS = 1_000

export class KeepaliveArmer implements Timed {
  deadlineIndex = -1
  deadlineAt = 0

  private readonly deadlines: Deadlines
  private readonly options: KeepaliveOptions
  /** Waiting sockets and the time each is due, in order; `head` is the first not yet handled. */
  private sockets: Array<WeakRef<net.Socket> | undefined> = []
  private due: Array<number> = []
  private head = 0
  /** Sockets armed so far (for tests and stats). */
  armed = 0

  constructor(deadlines: Deadlines, options: KeepaliveOptions = defaultKeepalive) {
    this.deadlines = deadlines
    this.options = options
  }

  /** Sockets waiting to be armed. */
  get waiting(): number {
    return this.sockets.length - this.head
  }

  /** Arm `socket` once it has been open `armAfterMs` (if it is still open then). */
  watch(socket: net.Socket): void {
    const at = this.deadlines.now() + this.options.armAfterMs
    this.sockets.push(new WeakRef(socket))
    this.due.push(at)
    if (this.deadlineIndex < 0) this.deadlines.set(this, at)
  }

  onDeadline(now: number): void {
    const { sockets, due } = this
    let i = this.head
    for (; i < sockets.length && (due[i] as number) <= now; i++) {
      const socket = sockets[i]?.deref()
      sockets[i] = undefined
      if (socket !== undefined && !socket.destroyed) {
        socket.setKeepAlive(true, this.options.delayMs)
        this.armed++
      }
    }
    if (i === sockets.length) {
      this.sockets = []
      this.due = []
      this.head = 0
      return
    }
    // Compact once the handled prefix is most of the arrays, so that they stay bounded under steady load.
    if (i > 1024 && i * 2 > sockets.length) {
      this.sockets = sockets.slice(i)
      this.due = due.slice(i)
      i = 0
    }
    this.head = i
    this.deadlines.set(this, Math.max(this.due[i] as number, now + DRAIN_EVERY_MS))
  }

  /** Forget every waiting socket (worker exit). */
  stop(): void {
    this.deadlines.cancel(this)
    this.sockets = []
    this.due = []
    this.head = 0
  }
}
