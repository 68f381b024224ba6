/**
 * The observe/ folder owns what an operator sees: the access log and diagnostics (this file), the
 * workers' counters (Stats.ts, Metrics.ts), their Prometheus text (Exposition.ts, MetricsText.ts) and
 * the admin endpoint (AdminServer.ts). Everything else reports into it, so it knows none of them: what it
 * needs from another capability (who may use the admin endpoint) is handed to it. May import: timers/,
 * src/core's types.
 *
 * AccessLog: one line per `Log` action, plus the worker's own diagnostics, written to stdout.
 *
 * Owns the line formats and the batching. Text lines read
 *   `[user@]client method target status bytesFromClient/bytesFromOrigin durationMs outcome [detail]`
 * and JSON lines are one object per line with the same fields (plus `time`, `worker`, `kind`).
 * Lines are buffered and written with ONE `write` per event-loop turn (`setImmediate`), so a burst of
 * finished requests costs one write. In a worker thread `process.stdout` is forwarded to the main thread
 * by a `postMessage` per write, a large share of a worker's CPU when tunnels come and go fast (docs/
 * performance.md, "New tunnel per request: the profile"): there lines are batched for WORKER_BATCH_MS
 * instead (or until BATCH_BYTES are pending), so a line is written at most that late.
 * Access lines have level "info": they are written when logLevel is "debug" or "info".
 *
 * It must never throw into the socket adapter, and never hold more than one batch's worth of lines.
 */
import { isMainThread } from "node:worker_threads"
import type { AccessRecord } from "../../core/actions.ts"

/** How long a worker thread writing to its (forwarded) stdout collects lines before one write. */
export const WORKER_BATCH_MS = 20
/** Pending text that is written at once, whatever the batching. */
export const BATCH_BYTES = 64 * 1024

export type LogLevel = "debug" | "info" | "warn" | "error" | "none"
export type LogFormat = "text" | "json"

const rank: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3, none: 4 }

export interface AccessLogOptions {
  readonly format: LogFormat
  readonly level: LogLevel
  /** Worker id, added to JSON lines and diagnostics. */
  readonly worker?: number
  /** Where batched text goes; default `process.stdout.write`. */
  readonly write?: (chunk: string) => void
  /**
   * Collect lines this long before writing them (0: until the end of the event-loop turn). Default:
   * WORKER_BATCH_MS in a worker thread writing to process.stdout, else 0.
   */
  readonly batchMs?: number
}

/** Replace control characters (and, for text, spaces) so a field cannot break or split the line. */
const clean = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, "?")
const field = (s: string): string => (s === "" ? "-" : clean(s).replace(/ /g, "%20"))

export const formatText = (client: string, r: AccessRecord): string => {
  const ms = Math.max(0, Math.round(r.endedAt - r.startedAt))
  const detail = r.detail === undefined || r.detail === "" ? "" : ` ${clean(r.detail)}`
  // An authenticated user is written before the client address, as in a URL: `alice@127.0.0.1:33824`.
  const who = r.user === undefined ? "" : `${field(r.user).replace(/@/g, "%40")}@`
  return `${who}${field(client)} ${field(r.method)} ${field(r.target)} ${r.status} ${r.bytesFromClient}/${r.bytesFromOrigin} ${ms}ms ${r.outcome}${detail}\n`
}

export const formatJson = (client: string, r: AccessRecord, worker: number | undefined, time: string): string =>
  JSON.stringify({
    time,
    ...(worker === undefined ? {} : { worker }),
    client,
    kind: r.kind,
    method: r.method,
    target: r.target,
    status: r.status,
    bytesFromClient: r.bytesFromClient,
    bytesFromOrigin: r.bytesFromOrigin,
    durationMs: Math.max(0, Math.round(r.endedAt - r.startedAt)),
    outcome: r.outcome,
    ...(r.detail === undefined ? {} : { detail: r.detail }),
    ...(r.user === undefined ? {} : { user: r.user }),
  }) + "\n"

export class AccessLog {
  private format: LogFormat
  private level: number
  private readonly worker: number | undefined
  private readonly out: (chunk: string) => void
  private pending = ""
  private scheduled: ReturnType<typeof setImmediate> | ReturnType<typeof setTimeout> | undefined = undefined
  private readonly batchMs: number
  /** False when access lines are filtered out: callers may skip building anything. */
  accessEnabled: boolean

  constructor(options: AccessLogOptions) {
    this.format = options.format
    this.level = rank[options.level]
    this.worker = options.worker
    this.out = options.write ?? ((chunk) => void process.stdout.write(chunk))
    this.batchMs = options.batchMs ?? (options.write === undefined && !isMainThread ? WORKER_BATCH_MS : 0)
    this.accessEnabled = this.level <= rank.info
  }

  /** Switch format and level (a configuration reload); lines already buffered keep their form. */
  configure(format: LogFormat, level: LogLevel): void {
    this.format = format
    this.level = rank[level]
    this.accessEnabled = this.level <= rank.info
  }

  /** Log one finished request or tunnel of `client` ("ip:port"). */
  access(client: string, record: AccessRecord): void {
    if (!this.accessEnabled) return
    this.push(this.format === "json" ? formatJson(client, record, this.worker, new Date().toISOString()) : formatText(client, record))
  }

  /** A diagnostic line of the worker itself. */
  message(level: Exclude<LogLevel, "none">, text: string): void {
    if (rank[level] < this.level) return
    const who = this.worker === undefined ? "" : `worker ${this.worker}: `
    this.push(
      this.format === "json"
        ? JSON.stringify({
            time: new Date().toISOString(),
            level,
            ...(this.worker === undefined ? {} : { worker: this.worker }),
            message: text,
          }) + "\n"
        : `${level.toUpperCase()} ${who}${clean(text)}\n`,
    )
  }

  /** Write whatever is buffered now (at shutdown). */
  flush(): void {
    if (this.scheduled !== undefined) {
      if (this.batchMs > 0) clearTimeout(this.scheduled as ReturnType<typeof setTimeout>)
      else clearImmediate(this.scheduled as ReturnType<typeof setImmediate>)
      this.scheduled = undefined
    }
    if (this.pending === "") return
    const chunk = this.pending
    this.pending = ""
    try {
      this.out(chunk)
    } catch {
      // stdout gone (EPIPE after the main thread closed it): logging must not take the proxy down.
    }
  }

  private readonly onTurn = (): void => {
    this.scheduled = undefined
    this.flush()
  }

  private push(line: string): void {
    this.pending += line
    if (this.pending.length >= BATCH_BYTES) this.flush()
    else if (this.scheduled === undefined)
      this.scheduled = this.batchMs > 0 ? setTimeout(this.onTurn, this.batchMs) : setImmediate(this.onTurn)
  }
}
