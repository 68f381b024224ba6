/**
 * Metrics: what a worker counts for `/metrics`, declared once, kept as plain numbers.
 *
 * Owns the declarations (`COUNTERS`, `HISTOGRAMS`: name, help, bounded label values, bucket bounds),
 * the layout they imply (every counter series is one slot of a Float64Array, every histogram a run of
 * bucket slots plus a sum), the worker's `WorkerMetrics` (those arrays, incremented in place), and the
 * sums the main thread makes over workers. The supervisor ships the arrays with the `Stats` message
 * (protocol.ts) and `MetricsText.ts` writes them out.
 *
 * Rules:
 * - The hot path does array arithmetic only: a slot number is computed once, at module load, with
 *   `counterSlot(key, labels)` (or by small index arithmetic, see `requestSlot`); no string, no Map, no
 *   Effect, no allocation per request.
 * - Label values are closed lists written here: never a client address, a host name or a path.
 * - Times are observed in the core clock's milliseconds and shown in seconds; sizes in bytes.
 *
 * Adding a counter is one line in `COUNTERS` (name with `_total`, help text, and its labels with every
 * value they may take); then, where it happens:
 *     const DENIED_PRIVATE = counterSlot("destinationDenials", { rule: "private" })   // module level
 *     ctx.metrics?.count(DENIED_PRIVATE)                                                // per event
 * It appears in /metrics (summed over workers, kept across worker restarts) with no other change.
 */

/** Every label of a family with the values it may take, in the order they are laid out. */
export type LabelSpace = Readonly<Record<string, ReadonlyArray<string>>>

export interface CounterSpec {
  /** The Prometheus name, `hctunnel_..._total`. */
  readonly name: string
  readonly help: string
  readonly labels: LabelSpace
}

export interface HistogramSpec {
  /** The Prometheus name, `hctunnel_..._seconds`. */
  readonly name: string
  readonly help: string
  /** Upper bounds of the buckets in milliseconds, ascending (+Inf is implied). Shown in seconds. */
  readonly boundsMs: ReadonlyArray<number>
}

const counter = (name: string, help: string, labels: LabelSpace = {}): CounterSpec => ({ name, help, labels })

/** Request methods get a label of their own if they are one of these; any other method is "other". */
export const METHOD_CLASSES = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "other"] as const
/** The status class of the answer; "none" when the client got no status line (it went away first). */
export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"] as const
/** How an exchange ended (the access log's outcome, with `_` for `-`). */
export const OUTCOMES = ["ok", "client_error", "origin_error", "timeout", "aborted", "shutdown", "denied", "unauthenticated"] as const
/** Why dialling an origin failed (the core's ConnectFailure, plus the core's connect timeout). */
export const CONNECT_FAILURES = ["unresolved", "refused", "unreachable", "timeout", "error"] as const

/**
 * Every counter a worker keeps. Add new ones at the end (one line each); the order is the layout of the
 * array shipped to the main thread, which is built from this same table.
 */
export const COUNTERS = {
  connectionsRefused: counter("hctunnel_connections_refused_total", "Client connections refused, by reason", {
    reason: ["not_allowed", "shutting_down", "not_proxy_source", "proxy_header"],
  }),
  requests: counter("hctunnel_requests_total", "Requests and CONNECTs answered, by method class and status class", {
    method: METHOD_CLASSES,
    status: STATUS_CLASSES,
  }),
  outcomes: counter("hctunnel_request_outcomes_total", "Requests and tunnels finished, by how they ended", { outcome: OUTCOMES }),
  tunnelsClosed: counter(
    "hctunnel_tunnels_closed_total",
    "Tunnels (CONNECT, or an upgrade after 101) that were established and have ended",
  ),
  originConnectFailures: counter("hctunnel_origin_connect_failures_total", "Origin connections that could not be opened, by reason", {
    reason: CONNECT_FAILURES,
  }),
  originPoolLookups: counter(
    "hctunnel_origin_pool_lookups_total",
    "Origin connections asked for: reused from the pool (hit) or dialled (miss)",
    { result: ["hit", "miss"] },
  ),
  internalErrors: counter("hctunnel_internal_errors_total", "Connections released because of an internal error (a bug)"),
} as const satisfies Readonly<Record<string, CounterSpec>>

export type CounterKey = keyof typeof COUNTERS

const REQUEST_BOUNDS_MS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000]
const CONNECT_BOUNDS_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
const TUNNEL_BOUNDS_MS = [100, 1000, 10_000, 60_000, 300_000, 1_800_000, 3_600_000, 14_400_000]

/** Every histogram a worker keeps. Add new ones at the end. */
export const HISTOGRAMS = {
  requestDuration: {
    name: "hctunnel_request_duration_seconds",
    help: "Plain HTTP exchanges: from the request's first byte to the end of the response",
    boundsMs: REQUEST_BOUNDS_MS,
  },
  originConnect: {
    name: "hctunnel_origin_connect_duration_seconds",
    help: "Opening a new origin connection: DNS lookup and TCP handshake (pooled connections are not counted)",
    boundsMs: CONNECT_BOUNDS_MS,
  },
  firstByte: {
    name: "hctunnel_time_to_first_byte_seconds",
    help: "Plain HTTP exchanges: from the request's first byte to the origin's first response byte",
    boundsMs: REQUEST_BOUNDS_MS,
  },
  tunnelDuration: {
    name: "hctunnel_tunnel_duration_seconds",
    help: "CONNECT tunnels and upgraded connections (WebSocket): lifetime once established",
    boundsMs: TUNNEL_BOUNDS_MS,
  },
} as const satisfies Readonly<Record<string, HistogramSpec>>

export type HistogramKey = keyof typeof HISTOGRAMS

// -------------------------------------------------------------------------------------------------
// Layout

const seriesCount = (labels: LabelSpace): number => {
  let n = 1
  for (const k in labels) n *= (labels[k] as ReadonlyArray<string>).length
  return n
}

/** First slot of each counter family; a family takes one slot per combination of label values. */
export const COUNTER_OFFSETS = {} as Record<CounterKey, number>
/** Total number of counter slots. */
export const COUNTER_SLOTS: number = (() => {
  let at = 0
  for (const key of Object.keys(COUNTERS) as Array<CounterKey>) {
    COUNTER_OFFSETS[key] = at
    at += seriesCount(COUNTERS[key].labels)
  }
  return at
})()

/** First slot of each histogram: its buckets (bounds + 1 for +Inf), then the sum of observations (ms). */
export const HISTOGRAM_OFFSETS = {} as Record<HistogramKey, number>
export const HISTOGRAM_SLOTS: number = (() => {
  let at = 0
  for (const key of Object.keys(HISTOGRAMS) as Array<HistogramKey>) {
    HISTOGRAM_OFFSETS[key] = at
    at += HISTOGRAMS[key].boundsMs.length + 2
  }
  return at
})()

/**
 * The slot of one series of a counter family: `labels` gives a value for every label of the family.
 * Call it once (module level); it throws on an unknown key, label or value, so a typo fails at start-up.
 */
export const counterSlot = (key: CounterKey, labels: Readonly<Record<string, string>> = {}): number => {
  const space: LabelSpace = COUNTERS[key].labels
  let index = 0
  for (const name in space) {
    const values = space[name] as ReadonlyArray<string>
    const v = labels[name]
    const i = v === undefined ? -1 : values.indexOf(v)
    if (i < 0) throw new Error(`counter ${key}: label ${name}=${String(v)} is not one of ${values.join(", ")}`)
    index = index * values.length + i
  }
  for (const name in labels) if (!(name in space)) throw new Error(`counter ${key} has no label ${name}`)
  return COUNTER_OFFSETS[key] + index
}

/** Every series of a counter family: its label values and its slot (for the exposition). */
export const counterSeries = (
  key: CounterKey,
): ReadonlyArray<{ readonly labels: Readonly<Record<string, string>>; readonly slot: number }> => {
  const space: LabelSpace = COUNTERS[key].labels
  let combos: Array<Record<string, string>> = [{}]
  for (const name in space) {
    const next: Array<Record<string, string>> = []
    for (const c of combos) for (const v of space[name] as ReadonlyArray<string>) next.push({ ...c, [name]: v })
    combos = next
  }
  return combos.map((labels) => ({ labels, slot: counterSlot(key, labels) }))
}

// -------------------------------------------------------------------------------------------------
// Classes of the hot path's values

const METHOD_INDEX: Readonly<Record<string, number>> = Object.fromEntries(METHOD_CLASSES.map((m, i) => [m, i]))
const OTHER_METHOD = METHOD_CLASSES.length - 1
const NO_STATUS = STATUS_CLASSES.length - 1
const REQUESTS_AT = COUNTER_OFFSETS.requests

/** The slot of `hctunnel_requests_total{method, status}` for a method and a status code (0: none sent). */
export const requestSlot = (method: string, status: number): number => {
  const m = METHOD_INDEX[method] ?? OTHER_METHOD
  const s = status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : NO_STATUS
  return REQUESTS_AT + m * STATUS_CLASSES.length + s
}

const OUTCOME_SLOTS: Readonly<Record<string, number>> = Object.fromEntries(
  OUTCOMES.map((o) => [o.replace(/_/g, "-"), counterSlot("outcomes", { outcome: o })]),
)
/** The slot of `hctunnel_request_outcomes_total{outcome}` for the access log's outcome ("origin-error"...). */
export const outcomeSlot = (outcome: string): number => OUTCOME_SLOTS[outcome] ?? (OUTCOME_SLOTS["aborted"] as number)

const CONNECT_FAILURE_SLOTS: Readonly<Record<string, number>> = Object.fromEntries(
  CONNECT_FAILURES.map((r) => [r, counterSlot("originConnectFailures", { reason: r })]),
)
/** The slot of `hctunnel_origin_connect_failures_total{reason}` for a ConnectFailure (or "timeout"). */
export const connectFailureSlot = (reason: string): number => CONNECT_FAILURE_SLOTS[reason] ?? (CONNECT_FAILURE_SLOTS["error"] as number)

// -------------------------------------------------------------------------------------------------
// The worker's figures

/** What a worker ships with each `Stats` message. Plain data (structured clone copies the arrays). */
export interface WorkerMetricsSnapshot {
  readonly counters: Float64Array
  readonly histograms: Float64Array
  /** Gauges of this worker now. */
  readonly tunnelsOpen: number
  /** Event-loop delay since the worker's previous report, in seconds (monitorEventLoopDelay). */
  readonly loopDelay: { readonly p50: number; readonly p99: number; readonly max: number }
}

export class WorkerMetrics {
  readonly counters = new Float64Array(COUNTER_SLOTS)
  readonly histograms = new Float64Array(HISTOGRAM_SLOTS)

  /** Add `by` (default 1) to the counter series at `slot` (from `counterSlot`). */
  count(slot: number, by = 1): void {
    this.counters[slot] = (this.counters[slot] as number) + by
  }

  /** Record one observation of `ms` milliseconds in the histogram `key`. */
  observe(key: HistogramKey, ms: number): void {
    const bounds = HISTOGRAMS[key].boundsMs
    const at = HISTOGRAM_OFFSETS[key]
    let i = 0
    while (i < bounds.length && ms > (bounds[i] as number)) i++
    const h = this.histograms
    h[at + i] = (h[at + i] as number) + 1
    h[at + bounds.length + 1] = (h[at + bounds.length + 1] as number) + ms
  }
}

/** An all-zero snapshot: the start of the main thread's sums. */
export const zeroMetrics = (): WorkerMetricsSnapshot => ({
  counters: new Float64Array(COUNTER_SLOTS),
  histograms: new Float64Array(HISTOGRAM_SLOTS),
  tunnelsOpen: 0,
  loopDelay: { p50: 0, p99: 0, max: 0 },
})

/** `into += from`, counters and histograms (a worker of another build with other lengths adds what fits). */
export const addMetricsInto = (into: WorkerMetricsSnapshot, from: WorkerMetricsSnapshot): void => {
  const n = Math.min(into.counters.length, from.counters.length)
  for (let i = 0; i < n; i++) into.counters[i] = (into.counters[i] as number) + (from.counters[i] as number)
  const m = Math.min(into.histograms.length, from.histograms.length)
  for (let i = 0; i < m; i++) into.histograms[i] = (into.histograms[i] as number) + (from.histograms[i] as number)
}
