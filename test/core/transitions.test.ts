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
import { describe } from "./harness.ts"
import { sampleTrigger, scenarios } from "./row-scenarios.ts"

/** "Write(client 414)" -> "Write(client)", "SetDeadline(head)" -> "SetDeadline": the table's notes are for readers. */
const normalize = (spec: string): string => {
  const m = /^(\w+)(?:\((\w+)( reusable)?[^)]*\))?$/.exec(spec)
  if (m === null) return spec
  const [, tag, side, reusable] = m
  if (tag === "SetDeadline" || side === undefined) return tag!
  return `${tag}(${side}${reusable ?? ""})`
}

const closeKind = (a: Extract<Action, { _tag: "Close" }>) => (a.reusable ? "reusable" : a.graceful ? "graceful" : "abrupt")

/** The row's columns as the actions of one step show them. */
export const checkStep = (row: Transition, step: ReadonlyArray<Action>): void => {
  const wantsDeadline = row.actions.some((a) => a.startsWith("SetDeadline"))
  expect(step.map(describe).filter((a) => wantsDeadline || a !== "SetDeadline")).toEqual(row.actions.map(normalize))
  const closes = step.filter((a): a is Extract<Action, { _tag: "Close" }> => a._tag === "Close")
  expect(closes.find((a) => a.side === "client") && closeKind(closes.find((a) => a.side === "client")!), "Close(client) flags").toBe(row.closeClient)
  expect(closes.find((a) => a.side === "origin") && closeKind(closes.find((a) => a.side === "origin")!), "Close(origin) flags").toBe(row.closeOrigin)
  const log = step.find((a): a is Extract<Action, { _tag: "Log" }> => a._tag === "Log")
  expect(log?.record.outcome, "log outcome").toBe(row.log)
}

group("transition table", () => {
  for (const row of transitions) {
    it(`${row.id}: ${row.from} --${row.event}${row.when ? ` [${row.when}]` : ""}--> ${row.to}`, () => {
      const scenario = scenarios[row.id]
      expect(scenario, `no scenario for row ${row.id}`).toBeDefined()
      if (scenario!.setup !== undefined) {
        for (const trigger of scenario!.events ?? triggersOf(row)) {
          const h = scenario!.setup()
          expect(h.postman.state, `setup of ${row.id}`).toBe(row.from)
          checkStep(row, sampleTrigger(h, trigger))
          expect(h.postman.state, trigger).toBe(row.to)
        }
        return
      }
      const { h, step } = scenario!.run!()
      checkStep(row, step)
      expect(h.postman.state).toBe(row.to)
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
