/**
 * HookCall: one call of a function an embedding program gave hctunnel (a hook: docs/library.md), answered
 * exactly once: with its value, with what it threw, or with the news that it did not answer in time.
 *
 * A hook may return a value or a promise. A value is answered at once, during the call (no timer, no
 * promise: a synchronous hook costs a function call). A promise gets a deadline on the worker's Deadlines
 * (no timer of its own); whichever comes first, its settlement or the deadline, is the answer, and the
 * other is dropped. `cancel()` drops both (the connection that asked is gone). A hook can never throw into
 * the caller: its exceptions, rejections and odd values become answers.
 */
import type { Deadlines, Timed } from "./Deadlines.ts"

/** How long a hook may take to answer by default (`--hook-timeout`). */
export const DEFAULT_HOOK_TIMEOUT_MS = 5_000

export type HookOutcome<T> =
  | { readonly ok: true; readonly value: T }
  /** `timedOut`: no answer within the timeout (`error` is undefined); else what the hook threw or rejected with. */
  | { readonly ok: false; readonly timedOut: boolean; readonly error: unknown }

/** A call whose promise has not settled yet. */
export interface PendingHook {
  /** Forget the call: neither its settlement nor its deadline will be answered. */
  cancel(): void
}

/** Where a pending call keeps its deadline. */
export interface HookTiming {
  readonly deadlines: Deadlines
  readonly timeoutMs: number
}

class Pending<T> implements Timed, PendingHook {
  deadlineIndex = -1
  deadlineAt = 0
  private over = false
  private readonly deadlines: Deadlines
  private readonly answer: (outcome: HookOutcome<T>) => void

  constructor(deadlines: Deadlines, answer: (outcome: HookOutcome<T>) => void) {
    this.deadlines = deadlines
    this.answer = answer
  }

  /** Answered or cancelled. */
  get done(): boolean {
    return this.over
  }

  settle(outcome: HookOutcome<T>): void {
    if (this.over) return
    this.over = true
    this.deadlines.cancel(this)
    this.answer(outcome)
  }

  onDeadline(): void {
    if (this.over) return
    this.over = true
    this.answer({ ok: false, timedOut: true, error: undefined })
  }

  cancel(): void {
    this.over = true
    this.deadlines.cancel(this)
  }
}

/**
 * Call `hook(arg)` and give `answer` its outcome once. Returns undefined when the answer was given
 * during the call (a plain value, or a throw), else the pending call.
 */
export const callHook = <A, T>(
  hook: (arg: A) => T | PromiseLike<T>,
  arg: A,
  timing: HookTiming,
  answer: (outcome: HookOutcome<T>) => void,
): PendingHook | undefined => {
  let result: T | PromiseLike<T>
  let then: unknown
  try {
    result = hook(arg)
    // Read once: a getter on the answer is the hook's code too, and may throw.
    then = typeof result === "object" && result !== null ? (result as { then?: unknown }).then : undefined
  } catch (error) {
    answer({ ok: false, timedOut: false, error })
    return undefined
  }
  if (typeof then !== "function") {
    answer({ ok: true, value: result as T })
    return undefined
  }
  const pending = new Pending<T>(timing.deadlines, answer)
  timing.deadlines.set(pending, timing.deadlines.now() + timing.timeoutMs)
  try {
    ;(then as PromiseLike<T>["then"]).call(
      result,
      (value) => pending.settle({ ok: true, value }),
      (error: unknown) => pending.settle({ ok: false, timedOut: false, error }),
    )
  } catch (error) {
    pending.settle({ ok: false, timedOut: false, error })
  }
  // A thenable that called back during `then` was answered already, like a plain value.
  return pending.done ? undefined : pending
}

/** What a hook threw, in one line for the log (never a stack). */
export const describeHookError = (error: unknown): string => {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : typeof error === "string" ? error : safeJson(error)
  return text.split("\n")[0] ?? text
}

const safeJson = (value: unknown): string => {
  try {
    return String(JSON.stringify(value) ?? value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}
