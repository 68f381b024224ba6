/**
 * Does one step of a Postman match a row of the transition table? Shared by the row tests
 * (test/core/transitions.test.ts) and the vector replay (test/core/vectors.test.ts), which checks every
 * step a vector says exercises a row. A step matches when it starts in the row's state, on one of the
 * row's triggers, and ends in the row's state with the row's action tags, `Close` flags and log outcome.
 */
import type { Action } from "../../src/core/actions.ts"
import type { Event } from "../../src/core/events.ts"
import type { PostmanState } from "../../src/core/postman.ts"
import { type Transition, triggersOf } from "../../src/core/transitions.ts"
import { describe, triggerName } from "./harness.ts"

/** "Write(client 414)" -> "Write(client)", "SetDeadline(head)" -> "SetDeadline": the table's notes are for readers. */
export const normalize = (spec: string): string => {
  const m = /^(\w+)(?:\((\w+)( reusable| pinned)?[^)]*\))?$/.exec(spec)
  if (m === null) return spec
  const [, tag, side, kept] = m
  if (tag === "SetDeadline" || side === undefined) return tag!
  return `${tag}(${side}${kept ?? ""})`
}

/** The table's name for what happened: `Received(client)`, `Timeout`, `shutdown()`. */
export const triggerOf = (what: Event | "start" | "shutdown" | "abort"): string => (what === "start" ? "start()" : triggerName(what))

/** Action tags as the table compares them: consecutive writes to one side are one entry, deadlines only when asked. */
const tags = (described: ReadonlyArray<string>, withDeadlines: boolean): string =>
  described
    .filter((a) => withDeadlines || a !== "SetDeadline")
    .filter((a, i, all) => !(a.startsWith("Write(") && all[i - 1] === a))
    .join(", ")

const closeKind = (a: Extract<Action, { _tag: "Close" }>) =>
  a.reusable ? "reusable" : a.pinned === true ? "pinned" : a.graceful ? "graceful" : "abrupt"

/** Why the step does not match the row, or undefined when it does. */
export const mismatch = (
  row: Transition,
  trigger: string,
  from: PostmanState,
  to: PostmanState,
  step: ReadonlyArray<Action>,
): string | undefined => {
  if (from !== row.from) return `starts in ${from}, the row in ${row.from}`
  if (!triggersOf(row).includes(trigger)) return `${trigger} is not the row's event (${row.event})`
  if (to !== row.to) return `ends in ${to}, the row in ${row.to}`
  const wantsDeadline = row.actions.some((a) => a.startsWith("SetDeadline"))
  const got = tags(step.map(describe), wantsDeadline)
  const want = tags(row.actions.map(normalize), wantsDeadline)
  if (got !== want) return `actions [${got}], the row has [${want}]`
  for (const side of ["client", "origin"] as const) {
    const close = step.find((a): a is Extract<Action, { _tag: "Close" }> => a._tag === "Close" && a.side === side)
    const kind = close === undefined ? undefined : closeKind(close)
    const wanted = side === "client" ? row.closeClient : row.closeOrigin
    if (kind !== wanted) return `Close(${side}) is ${kind ?? "absent"}, the row says ${wanted ?? "none"}`
  }
  const log = step.find((a): a is Extract<Action, { _tag: "Log" }> => a._tag === "Log")
  if (log?.record.outcome !== row.log) return `log outcome ${log?.record.outcome ?? "absent"}, the row says ${row.log ?? "none"}`
  return undefined
}

/**
 * Why the step does not match this chain of rows, or undefined when it does. One event can carry a
 * Postman through several rows (a chunk holding a whole response: F6 then F9): the rows must follow
 * each other (each ends where the next starts), all on the step's trigger, and their actions, in order,
 * are the step's.
 */
export const chainMismatch = (
  rows: ReadonlyArray<Transition>,
  trigger: string,
  from: PostmanState,
  to: PostmanState,
  step: ReadonlyArray<Action>,
): string | undefined => {
  if (rows.length === 1) return mismatch(rows[0]!, trigger, from, to, step)
  if (rows.length === 0) return "no rows"
  let at = from
  let backlog = false
  for (const row of rows) {
    if (row.from !== at) return `${row.id} starts in ${row.from}, not in ${at}`
    // Back in AwaitingHead, the queued client bytes are read at once: rows on Received(client).
    const on = backlog ? "Received(client)" : trigger
    if (!triggersOf(row).includes(on) && !triggersOf(row).includes(trigger)) return `${on} is not the event of ${row.id} (${row.event})`
    if (row.to === "AwaitingHead" && row.from !== "AwaitingHead") backlog = true
    at = row.to
  }
  if (at !== to) return `the rows end in ${at}, the step in ${to}`
  const wantsDeadline = rows.some((r) => r.actions.some((a) => a.startsWith("SetDeadline")))
  const got = tags(step.map(describe), wantsDeadline)
  const want = tags(
    rows.flatMap((r) => r.actions.map(normalize)),
    wantsDeadline,
  )
  if (got !== want) return `actions [${got}], the rows have [${want}]`
  return undefined
}
