/**
 * The per-request cost of what /metrics adds to a worker's hot path, next to Effect's metrics doing the
 * same work. Ad hoc: `node bench/metrics-cost.ts` (numbers vary with the machine; compare the rows).
 *
 * One "request" is what Connection.measure does for a plain HTTP exchange: two counter increments
 * (requests by method/status class, outcome), two histogram observations (duration, first byte), plus
 * the pool lookup and the connect-time observation of Connection.connect/originConnect.
 */
import { Context, Effect, Metric } from "effect"
import { connectFailureSlot, counterSlot, outcomeSlot, requestSlot, WorkerMetrics } from "../src/runtime/observe/Metrics.ts"

const N = 2_000_000
const methods = ["GET", "POST", "GET", "HEAD", "PUT", "GET", "BREW", "GET"]
const statuses = [200, 404, 200, 502, 301, 200, 0, 204]
void connectFailureSlot

const time = (label: string, f: () => void, iterations = N): void => {
  f() // warm up
  const t0 = performance.now()
  f()
  const ns = ((performance.now() - t0) * 1e6) / iterations
  console.log(`${label.padEnd(52)} ${ns.toFixed(1)} ns/request`)
}

const POOL_HIT = counterSlot("originPoolLookups", { result: "hit" })
const m = new WorkerMetrics()
time("nothing (the loop itself)", () => {
  let x = 0
  for (let i = 0; i < N; i++) x += methods[i & 7]!.length + statuses[i & 7]!
  if (x === 42) console.log(x)
})
time("WorkerMetrics: 3 counts + 3 observations", () => {
  for (let i = 0; i < N; i++) {
    m.count(POOL_HIT)
    m.count(requestSlot(methods[i & 7]!, statuses[i & 7]!))
    m.count(outcomeSlot("ok"))
    m.observe("originConnect", (i & 15) * 0.3)
    m.observe("requestDuration", (i & 63) * 1.7)
    m.observe("firstByte", (i & 63) * 1.1)
  }
})

// Effect's metrics: the same three counters (with attributes) and three histograms, updated through
// Effect.runSync (the hot path is not an Effect, so each update would have to be run like this).
const requests = Metric.counter("requests_total", { incremental: true })
const pool = Metric.counter("pool_total", { incremental: true })
const outcomes = Metric.counter("outcomes_total", { incremental: true })
const bounds = { boundaries: [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000] }
const duration = Metric.histogram("duration", bounds)
const firstByte = Metric.histogram("first_byte", bounds)
const connect = Metric.histogram("connect", bounds)
const tagged = methods.map((method, i) => Metric.withAttributes(requests, { method, status: `${Math.floor(statuses[i]! / 100)}xx` }))
const poolHit = Metric.withAttributes(pool, { result: "hit" })
const ok = Metric.withAttributes(outcomes, { outcome: "ok" })
time(
  "effect Metric: the same, one Effect.runSync per request",
  () => {
    for (let i = 0; i < N / 10; i++) {
      Effect.runSync(
        Effect.all(
          [
            Metric.update(poolHit, 1),
            Metric.update(tagged[i & 7]!, 1),
            Metric.update(ok, 1),
            Metric.update(connect, (i & 15) * 0.3),
            Metric.update(duration, (i & 63) * 1.7),
            Metric.update(firstByte, (i & 63) * 1.1),
          ],
          { discard: true },
        ),
      )
    }
  },
  N / 10,
)

// The same updates without running an Effect: `updateUnsafe` with a context (the closest Effect's metrics
// come to a plain increment).
const context = Context.empty()
time(
  "effect Metric: the same through updateUnsafe",
  () => {
    for (let i = 0; i < N / 10; i++) {
      poolHit.updateUnsafe(1, context)
      tagged[i & 7]!.updateUnsafe(1, context)
      ok.updateUnsafe(1, context)
      connect.updateUnsafe((i & 15) * 0.3, context)
      duration.updateUnsafe((i & 63) * 1.7, context)
      firstByte.updateUnsafe((i & 63) * 1.1, context)
    }
  },
  N / 10,
)
