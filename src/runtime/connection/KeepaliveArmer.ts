/**
 * KeepaliveArmer: turns TCP keepalive probes on for the connections that live long enough to need them.
 *
 * Keepalive probes find a peer that vanished without a FIN or RST (a laptop closed, a NAT that forgot
 * the flow) after `delayMs` of silence (60 s), well before the idle timeout would. Turning them on costs
 * four setsockopt calls per socket (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), a visible
 * share of the CPU of a short-lived tunnel, which needs two sockets and closes long before a probe could be
 * sent (docs/performance.md, "New tunnel per request"). So the worker sweeps its connections every
 * `sweepMs` (10 s) and each connection arms its sockets at the second sweep it sees, i.e. once it is
 * 10 to 20 s old: its first probe goes out at most that much later than if it had been armed at birth
 * (the kernel counts the idle time from the moment keepalive is switched on).
 *
 * It keeps nothing per connection (the connection counts its own sweeps, see `Connection.keepaliveSweep`),
 * and one deadline of the worker's `Deadlines`, set only while there are connections: a queue of new
 * sockets with their due times cost memory per idle tunnel (docs/performance.md, "RSS per idle tunnel").
 * It must never: arm a socket twice for the same connection, or keep the timer running with no connection.
 */
import type { Deadlines, Timed } from "../timers/Deadlines.ts"

export interface KeepaliveOptions {
  /** Silence before the first probe (TCP_KEEPIDLE). */
  readonly delayMs: number
  /** Interval of the sweep; a connection is armed at its second sweep. */
  readonly sweepMs: number
}

export const defaultKeepalive: KeepaliveOptions = { delayMs: 60_000, sweepMs: 10_000 }

/** What the sweep asks of a connection. */
export interface Aging {
  /** One sweep went by; arm the sockets (with `delayMs`) at the second. */
  keepaliveSweep(delayMs: number): void
}

export class KeepaliveArmer implements Timed {
  deadlineIndex = -1
  deadlineAt = 0

  private readonly deadlines: Deadlines
  private readonly connections: Iterable<Aging>
  readonly options: KeepaliveOptions

  constructor(deadlines: Deadlines, connections: Iterable<Aging>, options: KeepaliveOptions = defaultKeepalive) {
    this.deadlines = deadlines
    this.connections = connections
    this.options = options
  }

  /** A connection was added: make sure a sweep is coming. */
  wake(): void {
    if (this.deadlineIndex < 0) this.deadlines.set(this, this.deadlines.now() + this.options.sweepMs)
  }

  onDeadline(now: number): void {
    let any = false
    for (const connection of this.connections) {
      connection.keepaliveSweep(this.options.delayMs)
      any = true
    }
    if (any) this.deadlines.set(this, now + this.options.sweepMs)
  }

  /** No more sweeps (worker exit). */
  stop(): void {
    this.deadlines.cancel(this)
  }
}
