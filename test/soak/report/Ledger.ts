/**
 * Ledger: what every operation saw, and when the faults happened.
 *
 * An operation ends in exactly one of: `ok` (everything as expected), `corrupted` (bytes that arrived
 * differ from the bytes sent: never excused), `unexpected` (any other deviation: a status, a header, a
 * close, a hang), or `excused` (the connection was lost while a worker thread was being ended on purpose:
 * the one fault that may break connections in flight; the bytes that did arrive must still be right), or
 * `known` (an unexpected deviation that matches a product bug already found and not fixed yet: known.ts).
 *
 * The fault windows say which answers were correct when: the configuration a connection may have been
 * accepted under (reloads), whether a user existed (users file), whether DNS answered. A window opens when
 * the fault is injected and closes once its effect is confirmed (a log line) plus the documented lag.
 */
import { KNOWN } from "./known.ts"

export type Verdict = "ok" | "unexpected" | "corrupted" | "excused" | "known"

/** Thrown by an operation: what it saw that it should not have. */
export class Unexpected extends Error {}
export class Corrupted extends Error {}
/** The connection went away early (a reset, a close, a timeout): excused inside a worker-kill window. */
export class Lost extends Error {}

export type ConfigName = "a" | "b"

interface Window {
  readonly start: number
  end: number
}

interface Reload {
  readonly sent: number
  confirmed: number
  readonly to: ConfigName
}

interface Problem {
  readonly at: number
  readonly kind: string
  readonly verdict: Verdict
  readonly detail: string
}

const now = (): number => performance.now()

export class Ledger {
  readonly t0 = now()
  requests = 0
  tunnels = 0
  bytesVerified = 0
  corrupted = 0
  unexpected = 0
  excused = 0
  known = 0
  /** Lookups of the soak's own names answered 502 while the DNS server was silent (the fault bit). */
  dnsMisses = 0
  faults = 0
  reloads = 0
  rejectedReloads = 0
  /** Per operation kind: counts by verdict. */
  readonly kinds = new Map<string, Record<Verdict, number>>()
  /** The first problems in full (the rest are counted). */
  readonly problems: Array<Problem> = []
  /** Notes of faults as they happened, for the report. */
  readonly events: Array<{ at: number; what: string }> = []

  private readonly kills: Array<Window> = []
  private readonly dnsSilences: Array<Window> = []
  private readonly reloadLog: Array<Reload> = []
  private firstConfig: ConfigName = "a"
  /** carol's presence in the users file: when each version was written, and when every worker had read it. */
  private readonly carolLog: Array<{ at: number; confirmed: number; present: boolean }> = []
  private carolStart = false

  /** Milliseconds since the soak began. */
  elapsed(t = now()): number {
    return t - this.t0
  }

  note(what: string): void {
    this.events.push({ at: this.elapsed(), what })
    console.log(`[${(this.elapsed() / 1000).toFixed(1).padStart(6)} s] fault: ${what}`)
  }

  record(kind: string, given: Verdict, detail = ""): void {
    const verdict = given === "unexpected" && KNOWN.some((k) => k.applies(kind, detail)) ? "known" : given
    let k = this.kinds.get(kind)
    if (k === undefined) this.kinds.set(kind, (k = { ok: 0, unexpected: 0, corrupted: 0, excused: 0, known: 0 }))
    k[verdict]++
    if (verdict === "unexpected") this.unexpected++
    if (verdict === "corrupted") this.corrupted++
    if (verdict === "excused") this.excused++
    if (verdict === "known") this.known++
    if (verdict !== "ok" && this.problems.length < 200) {
      this.problems.push({ at: this.elapsed(), kind, verdict, detail })
      // The first ones as they happen: with the fault notes around them they tell the story.
      if (this.problems.length <= 30) console.log(`[${(this.elapsed() / 1000).toFixed(1).padStart(6)} s] ${verdict} ${kind}: ${detail}`)
    }
  }

  /**
   * Runs one operation and records its verdict: what it throws decides (nothing: ok). A `Lost` is excused
   * when the operation overlapped a worker-kill window; a hang never is (a cut connection fails at once).
   * `where` says what the operation was doing, for the message of a hang.
   */
  async op(kind: string, timeoutMs: number, run: (signal: AbortSignal) => Promise<void>, where: () => string = () => ""): Promise<Verdict> {
    const start = now()
    const abort = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort()
        reject(new Unexpected(`no end after ${timeoutMs} ms (hung${where() === "" ? "" : ` while ${where()}`})`))
      }, timeoutMs)
    })
    let verdict: Verdict = "ok"
    let detail = ""
    try {
      await Promise.race([run(abort.signal), timeout])
    } catch (e) {
      detail = e instanceof Error ? e.message : String(e)
      if (e instanceof Corrupted) verdict = "corrupted"
      else if (e instanceof Lost && this.overlapsKill(start, now())) verdict = "excused"
      else verdict = "unexpected"
      if (!(e instanceof Corrupted || e instanceof Lost || e instanceof Unexpected)) detail = `error: ${detail}`
    } finally {
      clearTimeout(timer)
      abort.abort()
    }
    this.record(kind, verdict, detail)
    return verdict
  }

  // --- worker kills ---
  killStarted(): Window {
    const w = { start: now() - 1000, end: Number.POSITIVE_INFINITY }
    this.kills.push(w)
    return w
  }
  overlapsKill(start: number, end: number): boolean {
    return this.kills.some((w) => start <= w.end && end >= w.start)
  }

  // --- DNS silence ---
  dnsSilent(): Window {
    const w = { start: now(), end: Number.POSITIVE_INFINITY }
    this.dnsSilences.push(w)
    return w
  }
  /** Whether a name lookup between start and end may have met the silent server (or its cached failure). */
  mayMissDns(start: number, end: number): boolean {
    return this.dnsSilences.some((w) => start <= w.end && end >= w.start)
  }

  // --- reloads ---
  startConfig(c: ConfigName): void {
    this.firstConfig = c
  }
  reloadSent(to: ConfigName): Reload {
    const r = { sent: now(), confirmed: Number.POSITIVE_INFINITY, to }
    this.reloadLog.push(r)
    return r
  }
  /** The configurations a connection opened at `opened` and answered at `answered` may have been accepted under. */
  configsFor(opened: number, answered: number): Set<ConfigName> {
    const out = new Set<ConfigName>()
    let current = this.firstConfig
    let t = Number.NEGATIVE_INFINITY
    for (const r of this.reloadLog) {
      // `current` holds over [t, r.sent]; either holds over [r.sent, r.confirmed].
      if (opened <= r.sent && answered >= t) out.add(current)
      if (opened <= r.confirmed && answered >= r.sent) {
        out.add(current)
        out.add(r.to)
      }
      current = r.to
      t = r.confirmed
    }
    if (answered >= t) out.add(current)
    return out
  }
  /** The configuration new connections get now (once the last reload is confirmed). */
  get latestConfig(): ConfigName {
    return this.reloadLog.at(-1)?.to ?? this.firstConfig
  }

  // --- the users file ---
  carolInitially(present: boolean): void {
    this.carolStart = present
  }
  carolWritten(present: boolean): { confirmed: number } {
    const c = { at: now(), confirmed: Number.POSITIVE_INFINITY, present }
    this.carolLog.push(c)
    return c
  }
  /** Whether carol may be present / absent for a request sent at `start` and answered at `end`. */
  carolStates(start: number, end: number): Set<boolean> {
    const out = new Set<boolean>()
    let current = this.carolStart
    let t = Number.NEGATIVE_INFINITY
    for (const c of this.carolLog) {
      if (start <= c.at && end >= t) out.add(current)
      if (start <= c.confirmed && end >= c.at) {
        out.add(current)
        out.add(c.present)
      }
      current = c.present
      t = c.confirmed
    }
    if (end >= t) out.add(current)
    return out
  }
}
