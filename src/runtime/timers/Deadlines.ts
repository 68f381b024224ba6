/**
 * The timers/ folder owns time in a worker: when something is due, and calling it back then. Every other
 * runtime folder arms its deadlines here, so it sits at the bottom. May import: nothing of the runtime
 * (src/core is not needed either).
 *
 * Deadlines: the ONE timer structure of a worker thread.
 *
 * Owns every pending deadline of every connection of the worker: an intrusive binary min-heap keyed
 * by time (each entry stores its own heap index, so set and cancel are O(log n) without lazy
 * tombstones), driven by a single `setTimeout` that is re-armed only when the earliest deadline moves
 * earlier than the armed time. Moving a deadline later (the common case: an idle deadline pushed back
 * on every chunk) is a sift-down and never touches the timer; when the timer fires early relative to
 * the heap it just re-arms.
 *
 * The clock is monotonic milliseconds (`performance.now()`); the same value is handed to the expired
 * entry so the runtime can pass it on as `now` to the Postman.
 *
 * A callback that throws does not cost the others their turn: every entry due in a batch is called back,
 * and the error is reported (`onError`) or, without a reporter, thrown once the batch is done.
 *
 * It must never: create a timer per entry, call back into an entry while it is still in the heap, or
 * call back an entry whose deadline was set again (or cancelled) by an earlier callback of the same batch.
 */

/** Something with at most one pending deadline. The fields belong to the heap: initialise them with `Deadlines.idle`. */
export interface Timed {
  /** Position in the heap; negative when no deadline is pending (-1, or DUE while its batch is delivered). */
  deadlineIndex: number
  /** The pending deadline (meaningless when `deadlineIndex` is -1). */
  deadlineAt: number
  /** Called once when the clock reached `deadlineAt`; the entry is already out of the heap. */
  onDeadline(now: number): void
}

/** A pure min-heap of `Timed` entries; no clock, no timer. */
export class DeadlineHeap {
  private readonly items: Array<Timed> = []

  get size(): number {
    return this.items.length
  }

  /** The earliest entry, if any. */
  peek(): Timed | undefined {
    return this.items[0]
  }

  /** Insert `entry` at `at`, or move it there if it is already pending. */
  set(entry: Timed, at: number): void {
    const i = entry.deadlineIndex
    if (i < 0) {
      entry.deadlineAt = at
      entry.deadlineIndex = this.items.length
      this.items.push(entry)
      this.up(entry.deadlineIndex)
      return
    }
    const before = entry.deadlineAt
    entry.deadlineAt = at
    if (at < before) this.up(i)
    else if (at > before) this.down(i)
  }

  /** Remove `entry` if it is pending; no-op otherwise. */
  cancel(entry: Timed): void {
    const i = entry.deadlineIndex
    if (i < 0) return
    const last = this.items.pop() as Timed
    entry.deadlineIndex = -1
    if (last === entry) return
    this.items[i] = last
    last.deadlineIndex = i
    this.up(i)
    this.down(last.deadlineIndex)
  }

  /** Remove and return the earliest entry if its deadline is at or before `now`. */
  popExpired(now: number): Timed | undefined {
    const top = this.items[0]
    if (top === undefined || top.deadlineAt > now) return undefined
    this.cancel(top)
    return top
  }

  private up(i: number): void {
    const items = this.items
    const entry = items[i] as Timed
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = items[p] as Timed
      if (parent.deadlineAt <= entry.deadlineAt) break
      items[i] = parent
      parent.deadlineIndex = i
      i = p
    }
    items[i] = entry
    entry.deadlineIndex = i
  }

  private down(i: number): void {
    const items = this.items
    const n = items.length
    const entry = items[i] as Timed
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      let child = items[l] as Timed
      if (r < n) {
        const right = items[r] as Timed
        if (right.deadlineAt < child.deadlineAt) {
          c = r
          child = right
        }
      }
      if (child.deadlineAt >= entry.deadlineAt) break
      items[i] = child
      child.deadlineIndex = i
      i = c
    }
    items[i] = entry
    entry.deadlineIndex = i
  }
}

const MAX_DELAY = 2_147_483_647
/** The index of an entry taken out of the heap for the batch being delivered, until its turn comes. */
const DUE = -2

export interface DeadlinesOptions {
  /** Monotonic milliseconds; default `performance.now()`. */
  readonly clock?: () => number
  /**
   * Told of each callback that threw, once every entry due in its batch has been called back. Without
   * it, the batch's first error is thrown then.
   */
  readonly onError?: (error: unknown) => void
}

/** A DeadlineHeap driven by one re-armed `setTimeout`. */
export class Deadlines {
  /** Field values for a `Timed` with nothing pending. */
  static readonly idle = { deadlineIndex: -1, deadlineAt: 0 } as const

  private readonly heap = new DeadlineHeap()
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  /** The time the timer is armed for (Infinity when disarmed). */
  private armedAt = Number.POSITIVE_INFINITY
  private readonly expired: Array<Timed> = []
  readonly now: () => number
  private readonly onError: ((error: unknown) => void) | undefined

  constructor(options: DeadlinesOptions = {}) {
    this.now = options.clock ?? (() => performance.now())
    this.onError = options.onError
  }

  get size(): number {
    return this.heap.size
  }

  set(entry: Timed, at: number): void {
    this.heap.set(entry, at)
    if (at < this.armedAt) this.arm(at)
  }

  cancel(entry: Timed): void {
    if (entry.deadlineIndex === DUE) entry.deadlineIndex = -1 // its batch is being delivered: skip it
    this.heap.cancel(entry)
    if (this.heap.size === 0) this.disarm()
  }

  /** Stop the timer; pending entries stay in the heap (used at worker exit). */
  stop(): void {
    this.disarm()
  }

  /** Deliver every deadline that expired by `now` (exposed for tests; the timer calls it). */
  fire(now: number = this.now()): void {
    const batch = this.expired
    for (let e = this.heap.popExpired(now); e !== undefined; e = this.heap.popExpired(now)) {
      e.deadlineIndex = DUE
      batch.push(e)
    }
    // Entries set again while this batch runs wait for the next turn of the timer, so a callback that
    // keeps setting a deadline in the past cannot starve the event loop.
    let errors: Array<unknown> | undefined
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i] as Timed
      if (entry.deadlineIndex !== DUE) continue // set again or cancelled by an earlier callback
      entry.deadlineIndex = -1
      try {
        entry.onDeadline(now)
      } catch (error) {
        ;(errors ??= []).push(error)
      }
    }
    batch.length = 0
    this.rearm()
    // Reported once the batch is done, so the heap and the timer are in order whatever the reporter does.
    if (errors === undefined) return
    if (this.onError === undefined) throw errors[0]
    for (const error of errors) this.onError(error)
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    this.armedAt = Number.POSITIVE_INFINITY
    this.fire(this.now())
  }

  private rearm(): void {
    const top = this.heap.peek()
    if (top === undefined) this.disarm()
    else if (top.deadlineAt < this.armedAt || this.timer === undefined) this.arm(top.deadlineAt)
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    // setTimeout caps delays at 2^31-1 ms; a later deadline just re-arms when the timer fires.
    const delay = Math.min(MAX_DELAY, Math.max(0, Math.ceil(at - this.now())))
    this.armedAt = at
    this.timer = setTimeout(this.onTimer, delay)
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.armedAt = Number.POSITIVE_INFINITY
  }
}
