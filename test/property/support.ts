/**
 * Support for the property tests: byte helpers, segmentation, and a "runtime" that feeds events to a
 * Harness the way the real runtime would (marking the origin socket open/closed on Connected,
 * ConnectFailed and Errored(origin), and only when that makes sense, so nonsense events stay nonsense).
 *
 * Plain TypeScript importing only fast-check-free code: shared by the vitest files and by fuzz.ts.
 */
import type { Action } from "../../src/core/actions.ts"
import type { ConnectFailure, Event, Side } from "../../src/core/events.ts"
import { concat, Harness, latin1, text } from "../core/harness.ts"

export { concat, Harness, latin1, text }

/** Cut `bytes` into pieces whose sizes cycle through `sizes` (each >= 1); an empty input gives no piece. */
export const segment = (bytes: Uint8Array, sizes: ReadonlyArray<number>): Uint8Array[] => {
  const out: Uint8Array[] = []
  let at = 0
  let k = 0
  while (at < bytes.length) {
    const size = Math.max(1, sizes.length === 0 ? bytes.length : (sizes[k++ % sizes.length] ?? 1))
    out.push(bytes.subarray(at, Math.min(bytes.length, at + size)))
    at += size
  }
  return out
}

/** Throw with the first differing offset when two byte strings differ. */
export const expectBytes = (what: string, actual: Uint8Array, expected: Uint8Array): void => {
  const n = Math.min(actual.length, expected.length)
  let i = 0
  while (i < n && actual[i] === expected[i]) i++
  if (i === n && actual.length === expected.length) return
  const around = (b: Uint8Array) => JSON.stringify(text(b.subarray(Math.max(0, i - 16), i + 16)))
  throw new Error(
    `${what}: ${actual.length} bytes, expected ${expected.length}; first difference at ${i}: got ${around(actual)}, expected ${around(expected)}`,
  )
}

export const expectEqual = <T>(what: string, actual: T, expected: T): void => {
  const a = JSON.stringify(actual)
  const e = JSON.stringify(expected)
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`)
}

export const check = (condition: boolean, message: string): void => {
  if (!condition) throw new Error(message)
}

export const writesTo = (actions: ReadonlyArray<Action>, side: Side): Uint8Array =>
  concat(actions.flatMap((a) => (a._tag === "Write" && a.side === side ? [a.bytes] : [])))

export const count = (actions: ReadonlyArray<Action>, pred: (a: Action) => boolean): number => actions.filter(pred).length

/** The status line of the first response written to the client, or 0. */
export const firstStatus = (h: Harness): number => {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(h.clientText())
  return m === null ? 0 : Number(m[1])
}

/** The runtime's side of origin events: keep the harness's socket model in step, only when it is sensible. */
export const deliver = (h: Harness, event: Event): ReadonlyArray<Action> => {
  switch (event._tag) {
    case "Connected":
      if (h.origin === "connecting") h.markOrigin("open")
      break
    case "ConnectFailed":
      if (h.origin === "connecting") h.markOrigin("closed")
      break
    case "Errored":
      if (event.side === "origin" && (h.origin === "connecting" || h.origin === "open")) h.markOrigin("errored")
      break
    default:
      break
  }
  return h.send(event)
}

export const received = (side: Side, bytes: Uint8Array): Event => ({ _tag: "Received", side, bytes })
export const ended = (side: Side): Event => ({ _tag: "Ended", side })
export const errored = (side: Side, message = "ECONNRESET"): Event => ({ _tag: "Errored", side, message })
export const blocked = (side: Side): Event => ({ _tag: "Blocked", side })
export const drained = (side: Side): Event => ({ _tag: "Drained", side })
export const connectFailed = (reason: ConnectFailure): Event => ({ _tag: "ConnectFailed", reason, message: reason })
export const connected: Event = { _tag: "Connected" }
export const timeout: Event = { _tag: "Timeout" }

/**
 * A normalized trace of actions: consecutive Writes to the same side merged (their split is the only
 * thing segmentation may change, docs/design.md §7.2), everything else kept as JSON-friendly records.
 */
export const normalize = (actions: ReadonlyArray<Action>, options: { readonly logBytesFromClient?: boolean } = {}): unknown[] => {
  const out: Array<Record<string, unknown>> = []
  for (const a of actions) {
    if (a._tag === "Write") {
      const last = out[out.length - 1]
      if (last !== undefined && last["_tag"] === "Write" && last["side"] === a.side) {
        last["bytes"] = (last["bytes"] as string) + text(a.bytes)
        continue
      }
      out.push({ _tag: "Write", side: a.side, bytes: text(a.bytes) })
      continue
    }
    if (a._tag === "Log" && options.logBytesFromClient === false) {
      const { bytesFromClient: _, ...record } = a.record
      out.push({ _tag: "Log", record })
      continue
    }
    out.push({ ...a } as Record<string, unknown>)
  }
  return out
}
