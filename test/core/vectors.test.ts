/**
 * Replays every conformance vector in test/vectors (and test/vectors/rows) against the reference
 * Postman: exactly as written, then again with each `Received` split into 1-byte events. Every step
 * that names rows of the transition table must run through exactly those rows, and every row of the
 * table must be named by some vector.
 */
import { readdirSync, readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import type { Action } from "../../src/core/actions.ts"
import type { Event } from "../../src/core/events.ts"
import { defaultLimits } from "../../src/core/limits.ts"
import { Postman } from "../../src/core/postman.ts"
import { transitions } from "../../src/core/transitions.ts"
import { chainMismatch, triggerOf } from "./row-check.ts"
import { actionToJson, eventFromJson, type JsonAction, type Step, type Vector } from "./vectors.ts"

const root = new URL("../vectors/", import.meta.url)
const files = readdirSync(root, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".json"))
  .sort()
const vectors = files.map((file) => ({ file, vector: JSON.parse(readFileSync(new URL(file, root), "utf8")) as Vector }))

const postmanFor = (vector: Vector) =>
  new Postman({ limits: { ...defaultLimits, ...vector.limits }, via: vector.via, auth: vector.auth === true })

const perform = (postman: Postman, step: Step, event?: Event): ReadonlyArray<Action> =>
  "call" in step
    ? step.call === "start"
      ? postman.start(step.now)
      : step.call === "shutdown"
        ? postman.shutdown(step.now)
        : postman.abort(step.now, "vector")
    : postman.handle(event ?? eventFromJson(step.event), step.now)

/** Log records are compared on the fields the vector lists (detail is prose). */
const comparable = (actions: ReadonlyArray<JsonAction>, expected: ReadonlyArray<JsonAction>): JsonAction[] => {
  const wanted = expected.find((a) => a._tag === "Log")?.["record"] as Record<string, unknown> | undefined
  return actions.map((have) => {
    if (have._tag !== "Log" || wanted === undefined) return have
    const record = have["record"] as Record<string, unknown>
    return { _tag: "Log", record: Object.fromEntries(Object.keys(wanted).map((k) => [k, record[k]])) }
  })
}

/** What must not depend on segmentation: consecutive writes to one side joined, deadlines left out. */
const joined = (actions: ReadonlyArray<JsonAction>): JsonAction[] => {
  const out: JsonAction[] = []
  for (const a of actions) {
    if (a._tag === "SetDeadline") continue
    const last = out.at(-1)
    if (a._tag === "Write" && last?._tag === "Write" && last["side"] === a["side"]) {
      out[out.length - 1] = { ...last, bytes: String(last["bytes"]) + String(a["bytes"]) }
    } else out.push(a)
  }
  return out
}

describe("conformance vectors", () => {
  it("exist", () => {
    expect(files.length).toBeGreaterThanOrEqual(transitions.length)
  })

  for (const { file, vector } of vectors) {
    it(`${file}: ${vector.name}`, () => {
      const postman = postmanFor(vector)
      vector.steps.forEach((step, index) => {
        const from = postman.state
        const actions = perform(postman, step)
        expect(comparable(actions.map(actionToJson), step.expect), `step ${index}`).toEqual(step.expect)
        if (step.rows !== undefined) {
          const rows = step.rows.map((id) => transitions.find((t) => t.id === id))
          expect(
            rows.every((r) => r !== undefined),
            `step ${index} names unknown rows ${step.rows.join(" ")}`,
          ).toBe(true)
          const trigger = "call" in step ? `${step.call}()` : triggerOf(eventFromJson(step.event))
          expect(
            chainMismatch(rows as never, trigger, from, postman.state, actions),
            `step ${index}: rows ${step.rows.join("+")}`,
          ).toBeUndefined()
        }
      })
    })

    it(`${file}: the same with every Received split into 1-byte events`, () => {
      const postman = postmanFor(vector)
      vector.steps.forEach((step, index) => {
        let actions: Action[] = []
        if (!("call" in step) && step.event._tag === "Received") {
          const event = eventFromJson(step.event) as Extract<Event, { _tag: "Received" }>
          for (let i = 0; i < event.bytes.length; i++) {
            actions = actions.concat(perform(postman, step, { ...event, bytes: event.bytes.subarray(i, i + 1) }))
          }
        } else actions = [...perform(postman, step)]
        expect(joined(comparable(actions.map(actionToJson), step.expect)), `step ${index}`).toEqual(joined(step.expect))
      })
    })
  }

  it("name every row of the transition table", () => {
    const named = new Set(vectors.flatMap(({ vector }) => vector.steps.flatMap((step) => step.rows ?? [])))
    expect(transitions.map((t) => t.id).filter((id) => !named.has(id))).toEqual([])
  })

  it("list in `rows` exactly the rows their steps name", () => {
    for (const { file, vector } of vectors) {
      const named = new Set(vector.steps.flatMap((step) => step.rows ?? []))
      expect(new Set(vector.rows ?? []), file).toEqual(named)
    }
  })
})
