/**
 * Messages between the main thread (supervisor) and the worker threads.
 * Everything here crosses a structured clone: plain data only.
 */
import type { MessagePort } from "node:worker_threads"
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
  /** Proxy authentication: the htpasswd file (bcrypt entries) every request must match; absent: off. */
  readonly authFile?: string
  /** With authFile: this worker's port to the process's bcrypt verifier thread (runtime/VerifierHub.ts), transferred. */
  readonly verifierPort?: MessagePort
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
  authOk: 0,
  authCached: 0,
  authFailed: 0,
  authRateLimited: 0,
  authVerifications: 0,
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
