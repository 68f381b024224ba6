/** Shared by the vector replay test and the vector generator: JSON <-> events and actions. */
import type { Action } from "../../src/core/actions.ts"
import type { Event } from "../../src/core/events.ts"
import type { Limits } from "../../src/core/limits.ts"
import { latin1, text } from "./harness.ts"

export type JsonEvent = Record<string, unknown> & { readonly _tag: string }
/** `rows`: the row of the transition table this step exercises (its from/to states, action tags, flags and outcome). */
export type Step =
  | {
      readonly now: number
      readonly call: "start" | "shutdown" | "abort"
      readonly rows?: ReadonlyArray<string>
      readonly expect: ReadonlyArray<JsonAction>
    }
  | { readonly now: number; readonly event: JsonEvent; readonly rows?: ReadonlyArray<string>; readonly expect: ReadonlyArray<JsonAction> }
export type JsonAction = Record<string, unknown> & { readonly _tag: string }

export interface Vector {
  readonly name: string
  readonly description: string
  /** Every row of the transition table some step exercises. */
  readonly rows?: ReadonlyArray<string>
  readonly limits: Partial<Limits>
  readonly via: string
  /** Proxy authentication required (PostmanOptions.auth); absent: false. */
  readonly auth?: boolean
  readonly steps: ReadonlyArray<Step>
}

export const eventFromJson = (e: JsonEvent): Event =>
  (e._tag === "Received" ? { ...e, bytes: latin1(String(e["bytes"])) } : e) as unknown as Event

export const eventToJson = (e: Event): JsonEvent =>
  e._tag === "Received" ? { _tag: e._tag, side: e.side, bytes: text(e.bytes) } : { ...e }

export const actionToJson = (a: Action): JsonAction => {
  if (a._tag === "Write") return { _tag: "Write", side: a.side, bytes: text(a.bytes) }
  // JSON has no undefined: a request without credentials is written as null.
  if (a._tag === "Authenticate") return { _tag: "Authenticate", credentials: a.credentials ?? null }
  if (a._tag === "Log") {
    const { detail: _detail, ...record } = a.record
    return { _tag: "Log", record }
  }
  return { ...a }
}

/**
 * A vector as a person reads it: one step per line (its time, its call or event, its rows), then one
 * expected action per line under it. Still plain JSON, so any language can load it.
 */
export const formatVector = (v: Vector): string => {
  const { steps, ...meta } = v
  const lines = ["{"]
  for (const [key, value] of Object.entries(meta)) lines.push(`  ${JSON.stringify(key)}: ${JSON.stringify(value)},`)
  lines.push(`  "steps": [`)
  steps.forEach((step, i) => {
    const { expect, ...head } = step
    const opening = JSON.stringify(head).slice(0, -1)
    const actions = expect.map((a) => `      ${JSON.stringify(a)}`).join(",\n")
    const close = i === steps.length - 1 ? "" : ","
    lines.push(expect.length === 0 ? `    ${opening}, "expect": []}${close}` : `    ${opening}, "expect": [\n${actions}\n    ]}${close}`)
  })
  lines.push("  ]", "}")
  return lines.join("\n") + "\n"
}
