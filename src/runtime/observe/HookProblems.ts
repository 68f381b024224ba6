/**
 * HookProblems: what went wrong with an embedding program's hooks (docs/library.md), in the worker's log.
 *
 * A hook that fails usually fails for every request (a bug, a database down), so each hook writes at most
 * one error line per interval; the failures in between are counted and the count ends the next line.
 * The client's answer says only that the hook failed; the log says how (the error's first line).
 */
import type { AccessLog } from "./AccessLog.ts"

/** At most one line per hook per this long. */
export const HOOK_PROBLEM_INTERVAL_MS = 10_000

export class HookProblems {
  private readonly log: AccessLog
  private readonly now: () => number
  private readonly intervalMs: number
  private readonly last = new Map<string, { at: number; unlogged: number }>()

  constructor(log: AccessLog, now: () => number, intervalMs = HOOK_PROBLEM_INTERVAL_MS) {
    this.log = log
    this.now = now
    this.intervalMs = intervalMs
  }

  /** One failure of `hook` (its name, "route" or "authenticate"), described by `text`. */
  report(hook: string, text: string): void {
    const now = this.now()
    const entry = this.last.get(hook)
    if (entry !== undefined && now < entry.at + this.intervalMs) {
      entry.unlogged++
      return
    }
    const unlogged =
      entry === undefined || entry.unlogged === 0
        ? ""
        : ` (and ${entry.unlogged} more failure${entry.unlogged === 1 ? "" : "s"} of it since the last line)`
    this.last.set(hook, { at: now, unlogged: 0 })
    this.log.message("error", `${hook} hook: ${text}${unlogged}`)
  }
}
