/**
 * Messages between the main thread (supervisor) and the worker threads.
 * Everything here crosses a structured clone: plain data only.
 */
import type { Limits } from "../core/limits.ts"

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
  /** The parent proxy (`--upstream`); absent: every destination is dialled directly. */
  readonly upstream?: { readonly host: string; readonly port: number; readonly authorization?: string }
  /** Destinations that skip the parent (`--no-upstream` entries, see Upstream.ts). */
  readonly noUpstream?: ReadonlyArray<string>
}

/** Counters a worker keeps; the main thread sums them over workers. */
export interface WorkerStats {
  readonly connectionsAccepted: number
  readonly connectionsLive: number
  readonly requests: number
  readonly tunnels: number
  readonly bytesFromClients: number
  readonly bytesFromOrigins: number
  readonly errors: number
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
}

export type FromWorker =
  | { readonly _tag: "Listening"; readonly id: number; readonly addresses: ReadonlyArray<ListenAddress> }
  | { readonly _tag: "ListenFailed"; readonly id: number; readonly code: string; readonly message: string }
  | { readonly _tag: "Stats"; readonly id: number; readonly stats: WorkerStats }
  | { readonly _tag: "Drained"; readonly id: number } // after Shutdown: every connection is closed

export type ToWorker =
  /** Stop accepting; let live connections finish; after graceMs close the rest; then reply Drained. */
  | { readonly _tag: "Shutdown"; readonly graceMs: number }
  | { readonly _tag: "ReportStats" }
