/**
 * One test per row of the transition table (src/core/transitions.ts, printed in docs/design.md §5):
 * drive a Postman into the row's `from` state, deliver its event under its condition, and check the
 * state it lands in, the exact action tags it emits, the flags of its `Close`s and its log outcome.
 * "Ignored" rows deliver each of their events and check that nothing changes. The table is total: a
 * (state, trigger) pair without a row fails the suite, and so does a row without a scenario.
 */
import { readFileSync } from "node:fs"
import { describe as group, expect, it } from "vitest"
import type { Action } from "../../src/core/actions.ts"
import { renderDesign } from "../../scripts/design-doc.ts"
import { states, type Transition, transitions, triggers, triggersOf } from "../../src/core/transitions.ts"
import type { PostmanState } from "../../src/core/postman.ts"
import { mismatch, triggerOf } from "./row-check.ts"
import { sampleTrigger, scenarios } from "./row-scenarios.ts"
import { defaultLimits } from "../../src/core/limits.ts"
import { Postman } from "../../src/core/postman.ts"
import type { Harness } from "./harness.ts"

/** The row's columns as the actions of one step show them. */
const checkStep = (row: Transition, trigger: string, from: PostmanState, to: PostmanState, step: ReadonlyArray<Action>): void => {
  expect(mismatch(row, trigger, from, to, step)).toBeUndefined()
}

/** The state a harness's Postman was in before its last call (replayed: the Postman keeps no history). */
const stateBefore = (h: Harness): PostmanState => {
  const { limits, via, auth } = h.options
  const p = new Postman({ limits: { ...defaultLimits, ...limits }, via, auth })
  for (const { now, what } of h.script.slice(0, -1)) {
    if (what === "start") p.start(now)
    else if (what === "shutdown") p.shutdown(now)
    else if (what === "abort") p.abort(now, "test")
    else p.handle(what, now)
  }
  return p.state
}

group("transition table", () => {
  for (const row of transitions) {
    it(`${row.id}: ${row.from} --${row.event}${row.when ? ` [${row.when}]` : ""}--> ${row.to}`, () => {
      const scenario = scenarios[row.id]
      expect(scenario, `no scenario for row ${row.id}`).toBeDefined()
      if (scenario!.setup !== undefined) {
        for (const trigger of scenario!.events ?? triggersOf(row)) {
          const h = scenario!.setup()
          const from = h.postman.state
          const step = sampleTrigger(h, trigger)
          // The state the event left the Postman in, read after it ran.
          checkStep(row, trigger, from, h.postman.state, step)
        }
        return
      }
      const { h, step } = scenario!.run!()
      const last = h.script.at(-1)!
      // The state before the step: replay all but the last call on a fresh Postman of the same options.
      checkStep(row, triggerOf(last.what), stateBefore(h), h.postman.state, step)
      scenario!.check?.(h)
    })
  }

  it("has no scenario without a row", () => {
    expect(Object.keys(scenarios).sort()).toEqual(transitions.map((t) => t.id).sort())
  })

  it("has unique row IDs", () => {
    expect(new Set(transitions.map((t) => t.id)).size).toBe(transitions.length)
  })

  it("is total: every (state, trigger) pair has a row", () => {
    const missing: string[] = []
    for (const state of states) {
      for (const trigger of triggers) {
        if (!transitions.some((t) => t.from === state && triggersOf(t).includes(trigger))) missing.push(`${state} x ${trigger}`)
      }
    }
    expect(missing).toEqual([])
  })

  it("names only known states and triggers", () => {
    for (const t of transitions) {
      expect(states, t.id).toContain(t.from)
      expect(states, t.id).toContain(t.to)
      for (const trigger of triggersOf(t)) expect(triggers, t.id).toContain(trigger)
    }
  })

  it("is printed unchanged in docs/design.md, with its diagram", () => {
    const doc = readFileSync(new URL("../../docs/design.md", import.meta.url), "utf8")
    expect(renderDesign(doc)).toBe(doc)
  })
})
