/**
 * `npm run fuzz -- --coverage`: how often the property tests exercise each (state, trigger) pair of the
 * transition table (src/core/transitions.ts). Every call a test harness makes to a Postman is counted under
 * the state it was in and the table's name for the call; the report has one line per pair and ends with
 * `coverage: N of M reachable pairs reached at least 100 times`.
 *
 * A pair is reachable when the table has a row for it (the table is total, so every pair has one) that is
 * not marked `unreachable`: none is today, since every event and call can be delivered in every state.
 */
import { callObserver } from "../core/harness.ts"
import { states, transitions, triggers, triggersOf } from "../../src/core/transitions.ts"

export const threshold = 100

export type Counts = Map<string, number>

const key = (state: string, trigger: string) => `${state} x ${trigger}`

/** Count every harness call until the returned function is called; it returns the counts. */
export const countPairs = (): (() => Counts) => {
  const counts: Counts = new Map()
  callObserver.current = (state, trigger) => {
    const k = key(state, trigger)
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  return () => {
    callObserver.current = undefined
    return counts
  }
}

/** The pairs the table has a row for, state by state in the docs' order. */
export const reachablePairs = (): Array<{ readonly state: string; readonly trigger: string }> =>
  states.flatMap((state) =>
    triggers
      .filter((trigger) => transitions.some((t) => t.from === state && triggersOf(t).includes(trigger)))
      .map((trigger) => ({ state, trigger })),
  )

/** The report: one line per pair (count, state, trigger, and `LOW` under the threshold), then the summary line. */
export const report = (counts: Counts): { lines: string[]; reached: number; reachable: number } => {
  const pairs = reachablePairs()
  const lines = pairs.map(({ state, trigger }) => {
    const n = counts.get(key(state, trigger)) ?? 0
    return `${String(n).padStart(8)}  ${state.padEnd(12)}  ${trigger.padEnd(20)}${n < threshold ? "  LOW" : ""}`
  })
  const reached = pairs.filter(({ state, trigger }) => (counts.get(key(state, trigger)) ?? 0) >= threshold).length
  lines.push(`coverage: ${reached} of ${pairs.length} reachable pairs reached at least ${threshold} times`)
  return { lines, reached, reachable: pairs.length }
}
