/**
 * Messages between the main thread (supervisor) and the worker threads.
 * Everything here crosses a structured clone: plain data only.
 */
import type { MessagePort } from "node:worker_threads"
import type { Limits } from "../core/limits.ts"
import type { WorkerMetricsSnapshot } from "./observe/Metrics.ts"
import type { ConnectionLimitsInit } from "./access/ConnectionLimits.ts"
import type { WorkerStats } from "./observe/Stats.ts"

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
  /**
   * The admin endpoint's address as bound (the supervisor's, when --admin is on): a socket of this
   * process, so the destination policy denies it as "self", like the proxy's own listeners.
   */
  readonly adminAddress?: ListenAddress
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
  /** Measure the event-loop delay for /metrics (on with --admin; perf_hooks costs RSS in every thread). */
  readonly eventLoopDelay?: boolean
  /**
   * --max-connections and --max-connections-per-client, and the SharedArrayBuffer that holds the counts
   * of all workers (src/runtime/access/ConnectionLimits.ts). Absent: the worker makes its own with the defaults.
   */
  readonly connectionLimits?: ConnectionLimitsInit
  /** The parent proxy (`--upstream`); absent: every destination is dialled directly. */
  readonly upstream?: { readonly host: string; readonly port: number; readonly authorization?: string }
  /** Destinations that skip the parent (`--no-upstream` entries, see Upstream.ts). */
  readonly noUpstream?: ReadonlyArray<string>
  /** Proxy authentication: the htpasswd file (bcrypt entries) every request must match; absent or undefined: off. */
  readonly authFile?: string | undefined
  /**
   * This worker's port to the process's bcrypt verifier thread (runtime/VerifierHub.ts), transferred; given
   * with or without authFile, since a reload may turn authentication on. Absent: the worker makes its own.
   */
  readonly verifierPort?: MessagePort
  /**
   * An embedding program's hooks (docs/library.md): the URL of the module every worker imports (Hooks.ts)
   * before it listens, and how long each call may take. Absent: no hooks.
   */
  readonly hooks?: string
  readonly hookTimeoutMs?: number
}

/**
 * The settings a worker can switch to while it runs (SIGHUP): each request or tunnel that starts
 * afterwards is judged by them; exchanges under way finish under the old ones (ProxyServer.reconfigure).
 */
export type LiveSettings = Pick<WorkerInit, "limits" | "via" | "allow" | "logFormat" | "logLevel" | "allowTo" | "denyTo"> & {
  /** Always present, so that a reload which removes it turns authentication off. */
  readonly authFile: string | undefined
}

export type FromWorker =
  | { readonly _tag: "Listening"; readonly id: number; readonly addresses: ReadonlyArray<ListenAddress> }
  | { readonly _tag: "ListenFailed"; readonly id: number; readonly code: string; readonly message: string }
  | { readonly _tag: "Stats"; readonly id: number; readonly stats: WorkerStats; readonly metrics?: WorkerMetricsSnapshot }
  /** After Shutdown: every connection is closed; `cut` of them were aborted (open at the end of the grace period). */
  | { readonly _tag: "Drained"; readonly id: number; readonly cut?: number }
  /** After Reconfigure: the new settings apply to every request and tunnel that starts now (or why they could not). */
  | { readonly _tag: "Reconfigured"; readonly id: number; readonly error?: string }

/**
 * The `code` of a `ListenFailed` sent by a worker that could not be set up at all (before listening): its
 * `message` is the reason, for a person (the supervisor prints it as it is, not as a listen failure).
 */
export const START_FAILED = "ESTARTFAILED"

export type ToWorker =
  /**
   * Listen now, then report Listening (or ListenFailed): the first message of a thread, sent once its runner
   * is up. `settings`: those of a reload that came after the thread was spawned (its `workerData` holds older
   * ones); they apply before the first connection is accepted. Absent: the thread's init is current.
   */
  | { readonly _tag: "Listen"; readonly settings?: LiveSettings }
  /**
   * Stop accepting; let live connections finish; after graceMs close the rest; then reply Drained. A second
   * Shutdown may shorten the grace period (graceMs 0: close the rest now), never extend it.
   */
  | { readonly _tag: "Shutdown"; readonly graceMs: number }
  | { readonly _tag: "ReportStats" }
  /** Use these settings for every request and tunnel that starts from now on (a configuration reload). */
  | { readonly _tag: "Reconfigure"; readonly settings: LiveSettings }
