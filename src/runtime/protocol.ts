/**
 * Messages between the main thread (supervisor) and the worker threads.
 * Everything here crosses a structured clone: plain data only.
 */
import type { MessagePort } from "node:worker_threads"
import type { Limits } from "../core/limits.ts"
import type { WorkerMetricsSnapshot } from "./Metrics.ts"
import type { ConnectionLimitsInit } from "./ConnectionLimits.ts"

export interface ListenAddress {
  readonly host: string // "127.0.0.1", "::1", "0.0.0.0"...
  readonly port: number
}

/** What a worker needs to start; passed as `workerData`. */
export interface WorkerInit {
  readonly id: number
  readonly listen: ReadonlyArray<ListenAddress>
  /** False when the platform has no reusePort: then exactly one worker runs and listens without it. */
  readonly reusePort: boolean
  readonly limits: Limits
  readonly via: string
  /** Client addresses allowed to use the proxy, as CIDR strings ("127.0.0.0/8", "::1/128"). */
  readonly allow: ReadonlyArray<string>
  readonly logFormat: "text" | "json"
  readonly logLevel: "debug" | "info" | "warn" | "error" | "none"
  /** Test hook: static name -> address map used instead of DNS for those names (never used by default). */
  readonly hosts: Readonly<Record<string, string>>
  /** How often the worker pushes a Stats message, in ms. */
  readonly statsIntervalMs: number
  /** DNS servers ("IP" or "IP:PORT", "[v6]:PORT") the worker asks; empty or absent: the system's (resolv.conf). */
  readonly dnsServers?: ReadonlyArray<string>
  /** Destination rules (`--allow-to`, `--deny-to`), as written; see DestinationPolicy.ts. Absent: none. */
  readonly allowTo?: ReadonlyArray<string>
  readonly denyTo?: ReadonlyArray<string>
  /**
   * Load balancers whose connections start with a PROXY protocol header, as CIDR strings; absent or
   * empty: no PROXY protocol. When set, connections from any other source are closed.
   */
  readonly proxyProtocolFrom?: ReadonlyArray<string>
  /** Measure the event-loop delay for /metrics (on with --admin; perf_hooks costs ~1 MB of RSS per thread). */
  readonly eventLoopDelay?: boolean
  /**
   * --max-connections and --max-connections-per-client, and the SharedArrayBuffer that holds the counts
   * of all workers (src/runtime/ConnectionLimits.ts). Absent: the worker makes its own with the defaults.
   */
  readonly connectionLimits?: ConnectionLimitsInit
  /** The parent proxy (`--upstream`); absent: every destination is dialled directly. */
  readonly upstream?: { readonly host: string; readonly port: number; readonly authorization?: string }
  /** Destinations that skip the parent (`--no-upstream` entries, see Upstream.ts). */
  readonly noUpstream?: ReadonlyArray<string>
  /** Proxy authentication: the htpasswd file (bcrypt entries) every request must match; absent: off. */
  readonly authFile?: string
  /** With authFile: this worker's port to the process's bcrypt verifier thread (runtime/VerifierHub.ts), transferred. */
  readonly verifierPort?: MessagePort
}

/**
 * The settings a worker can switch to while it runs (SIGHUP): connections accepted afterwards use them,
 * connections already open finish under the settings they started with.
 */
export type LiveSettings = Pick<WorkerInit, "limits" | "via" | "allow" | "logFormat" | "logLevel" | "allowTo" | "denyTo">

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

export type FromWorker =
  | { readonly _tag: "Listening"; readonly id: number; readonly addresses: ReadonlyArray<ListenAddress> }
  | { readonly _tag: "ListenFailed"; readonly id: number; readonly code: string; readonly message: string }
  | { readonly _tag: "Stats"; readonly id: number; readonly stats: WorkerStats; readonly metrics?: WorkerMetricsSnapshot }
  | { readonly _tag: "Drained"; readonly id: number } // after Shutdown: every connection is closed
  /** After Reconfigure: the new settings apply to new connections (or why they could not). */
  | { readonly _tag: "Reconfigured"; readonly id: number; readonly error?: string }

/**
 * The `code` of a `ListenFailed` sent by a worker that could not be set up at all (before listening): its
 * `message` is the reason, for a person (the supervisor prints it as it is, not as a listen failure).
 */
export const START_FAILED = "ESTARTFAILED"

export type ToWorker =
  /** Stop accepting; let live connections finish; after graceMs close the rest; then reply Drained. */
  | { readonly _tag: "Shutdown"; readonly graceMs: number }
  | { readonly _tag: "ReportStats" }
  /** Use these settings for connections accepted from now on (a configuration reload). */
  | { readonly _tag: "Reconfigure"; readonly settings: LiveSettings }
