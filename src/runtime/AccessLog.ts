/**
 * AccessLog: one line per `Log` action, plus the worker's own diagnostics, written to stdout.
 *
 * Owns the line formats and the batching. Text lines read
 *   `[user@]client method target status bytesFromClient/bytesFromOrigin durationMs outcome [detail]`
 * and JSON lines are one object per line with the same fields (plus `time`, `worker`, `kind`).
 * Lines are buffered and written with ONE `write` per event-loop turn (`setImmediate`), so a burst of
 * finished requests costs one write; in a worker thread `process.stdout` is forwarded to the main thread.
 * Access lines have level "info": they are written when logLevel is "debug" or "info".
 *
 * It must never throw into the socket adapter, and never hold more than one turn's worth of lines.
 */
import type { AccessRecord } from "../core/actions.ts"

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
  private readonly format: LogFormat
  private readonly level: number
  private readonly worker: number | undefined
  private readonly out: (chunk: string) => void
  private pending = ""
  private scheduled: ReturnType<typeof setImmediate> | undefined = undefined
  /** False when access lines are filtered out: callers may skip building anything. */
  readonly accessEnabled: boolean

  constructor(options: AccessLogOptions) {
    this.format = options.format
    this.level = rank[options.level]
    this.worker = options.worker
    this.out = options.write ?? ((chunk) => void process.stdout.write(chunk))
    this.accessEnabled = this.level <= rank.info
  }

  /** Log one finished request or tunnel of `client` ("ip:port"). */
  access(client: string, record: AccessRecord): void {
    if (!this.accessEnabled) return
    this.push(
      this.format === "json"
        ? formatJson(client, record, this.worker, new Date().toISOString())
        : formatText(client, record),
    )
  }

  /** A diagnostic line of the worker itself. */
  message(level: Exclude<LogLevel, "none">, text: string): void {
    if (rank[level] < this.level) return
    const who = this.worker === undefined ? "" : `worker ${this.worker}: `
    this.push(
      this.format === "json"
        ? JSON.stringify({ time: new Date().toISOString(), level, ...(this.worker === undefined ? {} : { worker: this.worker }), message: text }) + "\n"
        : `${level.toUpperCase()} ${who}${clean(text)}\n`,
    )
  }

  /** Write whatever is buffered now (at shutdown). */
  flush(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled)
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
    if (this.scheduled === undefined) this.scheduled = setImmediate(this.onTurn)
  }
}
