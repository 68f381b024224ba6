/**
 * MetricsText: the body of GET /metrics, from the supervisor's figures.
 *
 * Owns which families /metrics shows and how each figure maps to one: the stats-line totals
 * (connections, bytes, workers), the declared counters and histograms of Metrics.ts (every one of
 * them, with no list to keep here), the gauges and per-worker event-loop delay, and the process's CPU
 * and memory under Prometheus' standard `process_*` names. Main thread only; no state, no IO.
 */
import { Exposition } from "./Exposition.ts"
import {
  COUNTER_OFFSETS,
  COUNTERS,
  type CounterKey,
  counterSeries,
  HISTOGRAM_OFFSETS,
  HISTOGRAMS,
  type HistogramKey,
  type WorkerMetricsSnapshot,
} from "./Metrics.ts"
import type { StatsSnapshot } from "./Stats.ts"

export interface MetricsInput {
  readonly stats: StatsSnapshot
  /** Counters and histograms summed over every worker that ever ran; gauges of the running ones. */
  readonly totals: WorkerMetricsSnapshot
  /** The running workers' own figures (event-loop delay). */
  readonly workers: ReadonlyArray<{ readonly id: number; readonly metrics: WorkerMetricsSnapshot }>
}

export const formatMetrics = ({ stats, totals, workers }: MetricsInput): string => {
  const t = stats.totals
  const x = new Exposition()
    .counter("hctunnel_connections_accepted_total", "Client connections accepted by the listeners (refused ones included)", [
      [undefined, t.connectionsAccepted],
    ])
    .gauge("hctunnel_connections_open", "Client connections open now", [[undefined, t.connectionsLive]])
    .counter("hctunnel_bytes_total", "Bytes read from clients and from origins", [
      [{ direction: "from_client" }, t.bytesFromClients],
      [{ direction: "from_origin" }, t.bytesFromOrigins],
    ])
    .counter("hctunnel_tunnels_opened_total", "Tunnels (CONNECT, or an upgrade after 101) established", [
      [undefined, (totals.counters[COUNTER_OFFSETS.tunnelsClosed] as number) + totals.tunnelsOpen],
    ])
    .gauge("hctunnel_tunnels_open", "Tunnels (CONNECT, or an upgrade after 101) relaying now", [[undefined, totals.tunnelsOpen]])
    .counter("hctunnel_destinations_denied_total", "Requests and CONNECTs the destination policy denied (403), by what denied them", [
      [{ kind: "self" }, t.deniedSelf],
      [{ kind: "rule" }, t.deniedRule],
      [{ kind: "range" }, t.deniedRange],
      [{ kind: "port" }, t.deniedPort],
    ])
    .counter(
      "hctunnel_auth_results_total",
      "Proxy authentication verdicts (with --auth-file): accepted (cached or verified) or refused with 407 (rate-limited or not)",
      [
        [{ result: "ok_cached" }, t.authCached],
        [{ result: "ok_verified" }, t.authOk - t.authCached],
        [{ result: "refused_rate_limited" }, t.authRateLimited],
        [{ result: "refused" }, t.authFailed - t.authRateLimited],
      ],
    )
    .counter("hctunnel_auth_verifications_total", "bcrypt verifications run (cache misses)", [[undefined, t.authVerifications]])
    .counter("hctunnel_dns_queries_total", "DNS questions sent (A and AAAA count one each)", [[undefined, t.dnsQueries]])
    .counter("hctunnel_dns_cache_hits_total", "Name lookups answered from the resolver's cache", [[undefined, t.dnsCacheHits]])
    .counter("hctunnel_dns_failures_total", "Name lookups that failed (no such name, no answer, timeout)", [[undefined, t.dnsFailures]])

  for (const key of Object.keys(COUNTERS) as Array<CounterKey>) {
    const spec = COUNTERS[key]
    x.counter(
      spec.name,
      spec.help,
      counterSeries(key).map((s) => [s.labels, totals.counters[s.slot] ?? 0] as const),
    )
  }
  for (const key of Object.keys(HISTOGRAMS) as Array<HistogramKey>) {
    const spec = HISTOGRAMS[key]
    const at = HISTOGRAM_OFFSETS[key]
    const n = spec.boundsMs.length
    x.histogram(
      spec.name,
      spec.help,
      spec.boundsMs.map((ms) => ms / 1000),
      [{ counts: totals.histograms.subarray(at, at + n + 1), sum: (totals.histograms[at + n + 1] ?? 0) / 1000 }],
    )
  }

  const delay = (pick: (d: WorkerMetricsSnapshot["loopDelay"]) => number) =>
    workers.map((w) => [{ worker: String(w.id) }, pick(w.metrics.loopDelay)] as const)
  return x
    .gauge(
      "hctunnel_worker_event_loop_delay_p50_seconds",
      "Median event-loop delay of each worker since its previous report",
      delay((d) => d.p50),
    )
    .gauge(
      "hctunnel_worker_event_loop_delay_p99_seconds",
      "99th percentile event-loop delay of each worker since its previous report",
      delay((d) => d.p99),
    )
    .gauge(
      "hctunnel_worker_event_loop_delay_max_seconds",
      "Longest event-loop delay of each worker since its previous report",
      delay((d) => d.max),
    )
    .counter("hctunnel_worker_restarts_total", "Worker threads replaced after they stopped", [[undefined, stats.restarts]])
    .gauge("hctunnel_workers", "Worker threads configured", [[undefined, stats.workers]])
    .gauge("hctunnel_workers_running", "Worker threads listening now", [[undefined, stats.workersRunning]])
    .counter("process_cpu_seconds_total", "CPU time of the process (all threads), user and system", [
      [undefined, (stats.cpuUserMs + stats.cpuSystemMs) / 1000],
    ])
    .gauge("process_resident_memory_bytes", "Resident set size of the process", [[undefined, stats.rssBytes]])
    .gauge("process_start_time_seconds", "When the process started, in seconds since the Unix epoch", [
      [undefined, Math.round((Date.now() - stats.uptimeMs) / 1000)],
    ])
    .text()
}
