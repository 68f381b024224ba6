/**
 * The counters a worker keeps and the main thread sums: what `/stats`, the stats line and `/metrics` report
 * of connections, requests, bytes, DNS, denials and authentication.
 *
 * Plain data (it crosses the main <-> worker structured clone); imports nothing.
 */

/** Counters a worker keeps; the main thread sums them over workers. */
export interface WorkerStats {
  readonly connectionsAccepted: number
  readonly connectionsLive: number
  readonly requests: number
  readonly tunnels: number
  readonly bytesFromClients: number
  readonly bytesFromOrigins: number
  readonly errors: number
  /** DNS questions sent, lookups answered from the cache, lookups that failed (Resolver.ts DnsCounters). */
  readonly dnsQueries: number
  readonly dnsCacheHits: number
  readonly dnsFailures: number
  /** Requests and tunnels the destination policy denied (403), by what denied them (DestinationPolicy.ts DenialKind). */
  readonly deniedSelf: number
  readonly deniedRule: number
  readonly deniedRange: number
  readonly deniedPort: number
  /** Proxy authentication (runtime/Authenticator.ts): requests accepted, of them from the cache; refused (407), of them rate-limited; bcrypt runs. */
  readonly authOk: number
  readonly authCached: number
  readonly authFailed: number
  readonly authRateLimited: number
  readonly authVerifications: number
}

/** All counters at zero: the start of a worker's stats and of the supervisor's sums. */
export const zeroStats: WorkerStats = {
  connectionsAccepted: 0,
  connectionsLive: 0,
  requests: 0,
  tunnels: 0,
  bytesFromClients: 0,
  bytesFromOrigins: 0,
  errors: 0,
  dnsQueries: 0,
  dnsCacheHits: 0,
  dnsFailures: 0,
  deniedSelf: 0,
  deniedRule: 0,
  deniedRange: 0,
  deniedPort: 0,
  authOk: 0,
  authCached: 0,
  authFailed: 0,
  authRateLimited: 0,
  authVerifications: 0,
}

/** Counters of one worker, updated in place (summed by the main thread). */
export type MutableStats = { -readonly [K in keyof WorkerStats]: WorkerStats[K] }

export const emptyStats = (): MutableStats => ({ ...zeroStats })

/** Every counter of `a` plus the same one of `b` (the counters are the keys of zeroStats). */
export const addStats = (a: WorkerStats, b: WorkerStats): WorkerStats => {
  const sum = { ...zeroStats }
  for (const key of Object.keys(zeroStats) as Array<keyof WorkerStats>) sum[key] = a[key] + b[key]
  return sum
}

/** The whole process at one moment: what the stats line, `/stats` and the CLI's final line print. */
export interface StatsSnapshot {
  readonly pid: number
  readonly uptimeMs: number
  /** CPU time of the whole process (all threads), user + system, in ms. */
  readonly cpuUserMs: number
  readonly cpuSystemMs: number
  readonly rssBytes: number
  readonly workers: number
  readonly workersRunning: number
  readonly restarts: number
  readonly totals: WorkerStats
}
