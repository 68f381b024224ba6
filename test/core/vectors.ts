/** Shared by the vector replay test and the vector generator: JSON <-> events and actions. */
import type { Action } from "../../src/core/actions.ts"
import type { Event } from "../../src/core/events.ts"
import type { Limits } from "../../src/core/limits.ts"
import { latin1, text } from "./harness.ts"

export type JsonEvent = Record<string, unknown> & { readonly _tag: string }
export type Step =
  | { readonly now: number; readonly call: "start" | "shutdown" | "abort"; readonly expect: ReadonlyArray<JsonAction> }
  | { readonly now: number; readonly event: JsonEvent; readonly expect: ReadonlyArray<JsonAction> }
export type JsonAction = Record<string, unknown> & { readonly _tag: string }

export interface Vector {
  readonly name: string
  readonly description: string
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
