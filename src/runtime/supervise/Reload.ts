/**
 * Reload (SIGHUP): the new configuration is built and validated first, as a whole (the caller refuses a
 * file that changes a setting only a restart can apply, and judges the result by the start-up safety
 * rule); if that fails, the one reason is logged and nothing changes. Otherwise the roster's settings
 * change first, then every started worker (told to listen, Spawn.ts) gets `Reconfigure` (each request or
 * tunnel that starts afterwards is judged by the new settings, those under way finish under the old:
 * ProxyServer.reconfigure) and is waited for. A thread not started yet gets them before it listens: with
 * `Listen` when it was spawned before this reload (docs/reliability.md, F3), in its init when after.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"
import type { LiveSettings } from "../protocol.ts"
import { isStarted, type Roster } from "./Roster.ts"

/** What a reload changes: everything it changes (a reload is never applied in part). */
export interface ReloadPlan {
  readonly settings: LiveSettings
  readonly graceMs: number
}

/** Builds the configuration again, or says why it cannot be applied (invalid, unsafe, or needing a restart). */
export type Replan = () => Effect.Effect<ReloadPlan, { readonly message: string }>

/** How long a worker may take to answer `Reconfigure` before the reload reports it as not answering. */
const ANSWER_TIMEOUT = "5 seconds"

/**
 * What a reload did: how many workers use the new settings, how many were starting (they listen with
 * them: Spawn.ts), and what the others said.
 */
export interface ReloadOutcome {
  readonly applied: number
  readonly starting: number
  readonly errors: ReadonlyArray<string>
}

/** A reload, two ways in: SIGHUP (the configuration built again by `replan`), or a program's plan (the library's `reload`). */
export interface Reloads {
  /** SIGHUP: replan, then apply; every outcome is a log line. Without `replan`, SIGHUP is ignored. */
  readonly onSignal: Effect.Effect<void>
  /** Apply `plan` (validated by the caller); one reload at a time, with SIGHUP's too. */
  readonly apply: (plan: ReloadPlan) => Effect.Effect<ReloadOutcome>
}

/** One reload at a time (a SIGHUP during a reload waits for it). */
export const makeReload = (roster: Roster, replan: Replan | undefined): Effect.Effect<Reloads> =>
  Effect.map(Semaphore.make(1), (lock) => ({
    onSignal: Effect.gen(function* () {
      if (replan === undefined) return yield* Effect.logInfo("SIGHUP: nothing to reload")
      if (roster.shuttingDown) return yield* Effect.logInfo("SIGHUP ignored: shutting down")
      const planned = yield* Effect.result(replan())
      if (planned._tag === "Failure") {
        return yield* Effect.logError(`reload rejected, the running configuration stays: ${planned.failure.message}`)
      }
      yield* applyPlan(roster, planned.success)
    }).pipe(lock.withPermits(1)),
    apply: (plan) => applyPlan(roster, plan).pipe(lock.withPermits(1)),
  }))

/** The new settings to the roster (for later restarts and threads still starting) and to every started worker. */
const applyPlan = (roster: Roster, plan: ReloadPlan): Effect.Effect<ReloadOutcome> =>
  Effect.gen(function* () {
    // Before any worker is asked: a thread told to listen from now on is given these (Spawn.ts).
    roster.init = { ...roster.init, ...plan.settings }
    roster.settings = plan.settings
    roster.graceMs = plan.graceMs
    const outcome = yield* reconfigureWorkers(roster, plan.settings)
    if (outcome.errors.length > 0) yield* Effect.logError(`reload incomplete: ${outcome.errors.join("; ")}`)
    yield* Effect.logInfo(reloadedLine(outcome.applied, outcome.starting))
    return outcome
  })

/** The confirmation: how many workers use the new settings, those still starting counted (they start with them). */
export const reloadedLine = (applied: number, starting: number): string => {
  const n = applied + starting
  const use = `${n} worker${n === 1 ? " uses" : "s use"}`
  return `configuration reloaded: ${use} the new settings for new requests${starting > 0 ? ` (${starting} starting with them)` : ""}`
}

/**
 * `Reconfigure` to each started worker in turn, and its answer: how many applied it, how many are still
 * starting (they get the settings before they listen), and what the others said.
 */
const reconfigureWorkers = (roster: Roster, settings: LiveSettings) =>
  Effect.gen(function* () {
    const errors: Array<string> = []
    let applied = 0
    let starting = 0
    for (const s of roster.slots) {
      if (!isStarted(s)) {
        starting++
        continue
      }
      const answer = Deferred.makeUnsafe<string | undefined>()
      s.reconfigured = answer
      yield* s.handle.send({ _tag: "Reconfigure", settings }).pipe(Effect.ignore)
      const error = yield* Deferred.await(answer).pipe(Effect.timeoutOption(ANSWER_TIMEOUT))
      if (error._tag === "None") errors.push(`worker ${s.id} did not answer`)
      else if (error.value !== undefined) errors.push(`worker ${s.id}: ${error.value}`)
      else applied++
    }
    return { applied, starting, errors }
  })
