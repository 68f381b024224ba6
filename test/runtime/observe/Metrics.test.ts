/**
 * Metrics.ts (the declared counters and histograms, their layout, the worker's arrays) and
 * Exposition.ts (the Prometheus text format), without a process: slots, label checks, buckets, sums,
 * escaping, and that every declared family follows Prometheus' naming rules.
 */
import { describe, expect, it } from "vitest"
import { Exposition, formatValue } from "../../../src/runtime/observe/Exposition.ts"
import {
  addMetricsInto,
  COUNTER_OFFSETS,
  COUNTER_SLOTS,
  COUNTERS,
  counterSeries,
  counterSlot,
  connectFailureSlot,
  HISTOGRAM_OFFSETS,
  HISTOGRAMS,
  outcomeSlot,
  requestSlot,
  WorkerMetrics,
  zeroMetrics,
} from "../../../src/runtime/observe/Metrics.ts"

describe("Metrics declarations", () => {
  it("every family is named by Prometheus conventions, with bounded label values", () => {
    for (const spec of Object.values(COUNTERS)) {
      expect(spec.name).toMatch(/^hctunnel_[a-z0-9_]+_total$/)
      expect(spec.help.length).toBeGreaterThan(10)
      for (const [label, values] of Object.entries(spec.labels)) {
        expect(label).toMatch(/^[a-z_]+$/)
        expect(values.length).toBeGreaterThan(0)
        expect(values.length).toBeLessThanOrEqual(10)
      }
    }
    for (const spec of Object.values(HISTOGRAMS)) {
      expect(spec.name).toMatch(/^hctunnel_[a-z0-9_]+_seconds$/)
      expect([...spec.boundsMs].sort((a, b) => a - b)).toEqual(spec.boundsMs)
    }
    const names = [...Object.values(COUNTERS), ...Object.values(HISTOGRAMS)].map((s) => s.name)
    expect(new Set(names).size).toBe(names.length)
  })

  it("every series has a slot of its own, and the slots fill the array exactly", () => {
    const seen = new Set<number>()
    for (const key of Object.keys(COUNTERS) as Array<keyof typeof COUNTERS>) {
      for (const s of counterSeries(key)) {
        expect(seen.has(s.slot)).toBe(false)
        seen.add(s.slot)
      }
    }
    expect(seen.size).toBe(COUNTER_SLOTS)
    expect(Math.min(...seen)).toBe(0)
    expect(Math.max(...seen)).toBe(COUNTER_SLOTS - 1)
  })

  it("counterSlot refuses unknown labels and values (a typo fails at start-up)", () => {
    expect(() => counterSlot("connectionsRefused", { reason: "bored" })).toThrow(/reason=bored is not one of not_allowed/)
    expect(() => counterSlot("connectionsRefused", {})).toThrow(/reason=undefined/)
    expect(() => counterSlot("internalErrors", { kind: "x" })).toThrow(/has no label kind/)
    expect(counterSlot("internalErrors")).toBe(COUNTER_OFFSETS.internalErrors)
  })

  it("requestSlot classes methods and statuses like counterSlot names them", () => {
    expect(requestSlot("GET", 200)).toBe(counterSlot("requests", { method: "GET", status: "2xx" }))
    expect(requestSlot("CONNECT", 502)).toBe(counterSlot("requests", { method: "CONNECT", status: "5xx" }))
    expect(requestSlot("BREW", 418)).toBe(counterSlot("requests", { method: "other", status: "4xx" }))
    expect(requestSlot("get", 101)).toBe(counterSlot("requests", { method: "other", status: "1xx" }))
    expect(requestSlot("POST", 0)).toBe(counterSlot("requests", { method: "POST", status: "none" }))
    expect(requestSlot("PUT", 999)).toBe(counterSlot("requests", { method: "PUT", status: "none" }))
    expect(outcomeSlot("origin-error")).toBe(counterSlot("outcomes", { outcome: "origin_error" }))
    expect(connectFailureSlot("refused")).toBe(counterSlot("originConnectFailures", { reason: "refused" }))
  })
})

describe("WorkerMetrics", () => {
  it("observe puts a value in the first bucket whose bound is >= it (le), and sums", () => {
    const m = new WorkerMetrics()
    const at = HISTOGRAM_OFFSETS.originConnect
    const bounds = HISTOGRAMS.originConnect.boundsMs
    m.observe("originConnect", 0.5) // == first bound: first bucket
    m.observe("originConnect", 0.75)
    m.observe("originConnect", 1e9) // above every bound: +Inf
    expect(m.histograms[at]).toBe(1)
    expect(m.histograms[at + 1]).toBe(1)
    expect(m.histograms[at + bounds.length]).toBe(1)
    expect(m.histograms[at + bounds.length + 1]).toBe(0.5 + 0.75 + 1e9)
  })

  it("sums of snapshots add slot by slot", () => {
    const a = new WorkerMetrics()
    const b = new WorkerMetrics()
    a.count(requestSlot("GET", 200))
    b.count(requestSlot("GET", 200), 2)
    b.observe("requestDuration", 3)
    const total = zeroMetrics()
    addMetricsInto(total, { ...zeroMetrics(), counters: a.counters, histograms: a.histograms })
    addMetricsInto(total, { ...zeroMetrics(), counters: b.counters, histograms: b.histograms })
    expect(total.counters[requestSlot("GET", 200)]).toBe(3)
    expect(total.histograms[HISTOGRAM_OFFSETS.requestDuration + HISTOGRAMS.requestDuration.boundsMs.length + 1]).toBe(3)
  })
})

describe("Exposition", () => {
  it("writes HELP and TYPE, escapes label values and help, and cumulates histogram buckets", () => {
    const text = new Exposition()
      .counter("x_total", "Help with \\ and\nnewline", [[{ a: 'q"\\\n' }, 3]])
      .gauge("g", "A gauge", [[undefined, 0.25]])
      .histogram("h_seconds", "A histogram", [0.1, 1], [{ counts: [2, 0, 1], sum: 5.5 }])
      .text()
    expect(text).toBe(
      [
        "# HELP x_total Help with \\\\ and\\nnewline",
        "# TYPE x_total counter",
        'x_total{a="q\\"\\\\\\n"} 3',
        "# HELP g A gauge",
        "# TYPE g gauge",
        "g 0.25",
        "# HELP h_seconds A histogram",
        "# TYPE h_seconds histogram",
        'h_seconds_bucket{le="0.1"} 2',
        'h_seconds_bucket{le="1"} 2',
        'h_seconds_bucket{le="+Inf"} 3',
        "h_seconds_sum 5.5",
        "h_seconds_count 3",
        "",
      ].join("\n"),
    )
  })

  it("formats values as Prometheus reads them", () => {
    expect(formatValue(2 ** 53)).toBe("9007199254740992")
    expect(formatValue(1e21)).toBe("1e+21")
    expect(formatValue(Infinity)).toBe("+Inf")
    expect(formatValue(Number.NaN)).toBe("NaN")
    expect(formatValue(0.001)).toBe("0.001")
  })
})
