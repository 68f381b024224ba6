/**
 * Drain (the first SIGINT/SIGTERM): no more restarts; `Shutdown { graceMs }` to every listening worker
 * (a thread still starting is stopped); then wait for every `Drained`, at most the grace period plus a
 * margin. Live connections are the workers' business: each closes what is still open when its grace
 * period ends, then reports Drained with how many it closed. A second signal cuts the grace period short:
 * `Shutdown { graceMs: 0 }` to every worker, which closes what is open at once, and a wait of the margin.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { isListening, type Roster } from "./Roster.ts"

/** How long past the grace period (or the second signal) the supervisor waits for a worker's Drained before giving up on it. */
export const DRAIN_MARGIN_MS = 3000

/** How a drain ended. `cut`: the connections the workers closed because they were still open. */
export type DrainOutcome =
  /** Every worker reported Drained in time; `cut` were still open at the end of the grace period. */
  | { readonly _tag: "Drained"; readonly cut: number }
  /** A second signal: every worker closed what was still open at once (`cut`) and reported Drained. */
  | { readonly _tag: "CutShort"; readonly cut: number }
  /** Some worker did not report Drained in time (after the second signal, when `afterSecondSignal`). */
  | { readonly _tag: "Overran"; readonly afterSecondSignal: boolean }

/** Starts the shutdown and waits for it; `forceStop` completes at the second signal. */
export const drain = (
  roster: Roster,
  forceStop: Deferred.Deferred<void>,
  onStopping: ((graceMs: number) => Effect.Effect<void>) | undefined,
): Effect.Effect<DrainOutcome> =>
  Effect.gen(function* () {
    roster.shuttingDown = true
    if (onStopping !== undefined) yield* onStopping(roster.graceMs)
    for (const s of roster.slots) {
      if (isListening(s)) yield* s.handle.send({ _tag: "Shutdown", graceMs: roster.graceMs }).pipe(Effect.ignore)
      else if (s.fiber !== undefined) yield* Fiber.interrupt(s.fiber)
    }
    const allDrained = Effect.forEach(roster.slots, (s) => Deferred.await(s.drained)).pipe(
      Effect.map((cuts) => cuts.reduce((a, b) => a + b, 0)),
    )
    const first = yield* Effect.raceFirst(
      allDrained.pipe(Effect.map((cut) => ({ _tag: "Drained", cut }) as const)),
      Deferred.await(forceStop).pipe(Effect.as({ _tag: "SecondSignal" } as const)),
    ).pipe(Effect.timeoutOption(roster.graceMs + DRAIN_MARGIN_MS))
    if (Option.isNone(first)) return { _tag: "Overran", afterSecondSignal: false }
    if (first.value._tag === "Drained") return first.value
    for (const s of roster.slots) {
      if (isListening(s)) yield* s.handle.send({ _tag: "Shutdown", graceMs: 0 }).pipe(Effect.ignore)
    }
    const after = yield* allDrained.pipe(Effect.timeoutOption(DRAIN_MARGIN_MS))
    return Option.isNone(after) ? { _tag: "Overran", afterSecondSignal: true } : { _tag: "CutShort", cut: after.value }
  })
