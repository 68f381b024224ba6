/**
 * Drain (the first SIGINT/SIGTERM): no more restarts; `Shutdown { graceMs }` to every listening worker
 * (a thread still starting is stopped); then wait for every `Drained`, at most the grace period plus a
 * margin, or until a second signal says to stop waiting. Live connections are the workers' business:
 * each closes what is still open when its grace period ends, then reports Drained.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { isListening, type Roster } from "./Roster.ts"

/** How long past the grace period the supervisor waits for a worker's Drained before giving up on it. */
const DRAIN_MARGIN_MS = 3000

/**
 * Starts the shutdown and waits for it: succeeds with true when every worker reported Drained, false
 * when the wait overran or `forceStop` (a second signal) cut it short.
 */
export const drain = (
  roster: Roster,
  forceStop: Deferred.Deferred<void>,
  onStopping: ((graceMs: number) => Effect.Effect<void>) | undefined,
): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    roster.shuttingDown = true
    if (onStopping !== undefined) yield* onStopping(roster.graceMs)
    for (const s of roster.slots) {
      if (isListening(s)) yield* s.handle.send({ _tag: "Shutdown", graceMs: roster.graceMs }).pipe(Effect.ignore)
      else if (s.fiber !== undefined) yield* Fiber.interrupt(s.fiber)
    }
    const allDrained = Effect.forEach(roster.slots, (s) => Deferred.await(s.drained), { discard: true })
    return yield* Effect.raceFirst(allDrained.pipe(Effect.as(true)), Deferred.await(forceStop).pipe(Effect.as(false))).pipe(
      Effect.timeoutOption(roster.graceMs + DRAIN_MARGIN_MS),
      Effect.map((o) => o._tag === "Some" && o.value),
    )
  })
