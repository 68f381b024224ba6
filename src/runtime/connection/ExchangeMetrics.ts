/**
 * ExchangeMetrics: what one finished exchange (the core's `Log` action) adds to the worker's stats and
 * metrics.
 *
 * A Connection keeps one number for it between its `Connect` and its `Log`, the origin mark, so that an
 * idle tunnel carries one field, not two: > 0 (`DIALLING`) while the origin is being dialled, and still
 * when the core gave up on that dial (the exchange then ends as a timeout, counted as a connect timeout);
 * < 0: the origin's first bytes since the last finished exchange arrived at minus this time (core clock,
 * ms); 0: neither. The Connection resets it to 0 after every `Log`.
 */
import type { AccessRecord } from "../../core/actions.ts"
import { connectFailureSlot, counterSlot, outcomeSlot, requestSlot, type WorkerMetrics } from "../observe/Metrics.ts"
import type { MutableStats } from "../observe/Stats.ts"

/** The origin mark while a dial is in progress (any number > 0). */
export const DIALLING = 1

const TUNNEL_CLOSED = counterSlot("tunnelsClosed")
const CONNECT_TIMEOUT = connectFailureSlot("timeout")

/** Count a finished exchange `r`; `originMark` is the Connection's (see the module comment). */
export const countExchange = (stats: MutableStats, metrics: WorkerMetrics | undefined, r: AccessRecord, originMark: number): void => {
  if (r.kind === "tunnel") stats.tunnels++
  else stats.requests++
  // A 407 is the normal first step of a challenge, counted apart (authFailed), not as an error.
  if (r.outcome !== "ok" && r.outcome !== "shutdown" && r.outcome !== "unauthenticated") stats.errors++
  if (metrics !== undefined) measure(metrics, r, originMark)
}

const measure = (m: WorkerMetrics, r: AccessRecord, originMark: number): void => {
  m.count(requestSlot(r.method, r.status))
  m.count(outcomeSlot(r.outcome))
  if (r.kind === "http") {
    m.observe("requestDuration", r.endedAt - r.startedAt)
    const firstByteAt = -originMark
    if (firstByteAt > 0 && firstByteAt >= r.startedAt && r.status !== 0) m.observe("firstByte", firstByteAt - r.startedAt)
  } else if (r.status === 200 || r.status === 101) {
    // Established (a tunnel gets 200 once the origin is connected; an upgrade, 101).
    m.count(TUNNEL_CLOSED)
    m.observe("tunnelDuration", r.endedAt - r.startedAt)
  }
  // The exchange ended while its origin was still being dialled: the core gave up on the dial.
  if (originMark > 0 && r.outcome === "timeout") m.count(CONNECT_TIMEOUT)
}
