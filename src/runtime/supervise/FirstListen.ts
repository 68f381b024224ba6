/**
 * FirstListen: worker 0's first message decides how the workers run.
 *   `Listening`  -> all listen on the same addresses (port 0 resolved to the real port);
 *   `ListenFailed` with ENOTSUP (no SO_REUSEPORT on this platform) -> one notice line, and exactly
 *                   one worker runs, listening without reusePort;
 *   `ListenFailed` otherwise (EADDRINUSE, EACCES...), or a thread that ends without a word -> every
 *                   thread started is stopped and `FirstListenFailed` says why.
 * With fixed ports the other workers start at the same time as worker 0, since a thread takes a while
 * to load; with port 0 they wait for the port it bound.
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import { newSlot, type Roster, type Slot } from "./Roster.ts"
import { exitReason, type First, type Spawner } from "./Spawn.ts"

/** Error codes Node/libuv use when SO_REUSEPORT is not available (macOS, Windows: UV_ENOTSUP). */
export const REUSEPORT_UNSUPPORTED = new Set(["ENOTSUP", "EOPNOTSUPP", "ERR_SOCKET_REUSEPORT_UNSUPPORTED"])

/** Worker 0 could not listen, or could not start at all; no worker runs. */
export class FirstListenFailed extends Data.TaggedError("FirstListenFailed")<{
  /** The worker's error code (EADDRINUSE..., START_FAILED), or EXITED for a thread that ended without a word. */
  readonly reason: string
  /** The worker's own message. */
  readonly detail: string
}> {}

/**
 * Starts every worker in `scope`, keeping each slot running, and adds them to the roster once worker 0
 * listens (its bound addresses becoming the roster's). Succeeds with the number of workers that run.
 */
export const startWorkers = (
  roster: Roster,
  spawner: Spawner,
  scope: Scope.Scope,
  workers: number,
): Effect.Effect<number, FirstListenFailed> =>
  Effect.gen(function* () {
    const early: Array<Slot> = []
    const startOthers = (n: number) =>
      Effect.gen(function* () {
        for (let id = 1; id < n; id++) {
          const slot = newSlot(id)
          early.push(slot)
          slot.fiber = yield* spawner.keepRunning(slot).pipe(Effect.forkIn(scope))
        }
      })
    const stopAll = (slot0: Slot) =>
      Effect.gen(function* () {
        for (const s of early.splice(0)) if (s.fiber !== undefined) yield* Fiber.interrupt(s.fiber)
        if (slot0.fiber) yield* Fiber.interrupt(slot0.fiber)
      })

    const parallel = roster.listen.every((a) => a.port !== 0)
    if (parallel) yield* startOthers(workers)

    let { slot: slot0, verdict } = yield* startFirst(spawner, scope)
    if (!verdict.ok && REUSEPORT_UNSUPPORTED.has(verdict.code)) {
      yield* stopAll(slot0)
      roster.reusePort = false
      yield* Effect.logWarning(
        `this platform has no SO_REUSEPORT (${verdict.code}), so worker threads cannot share a port: running exactly 1 worker (asked for ${workers})`,
      )
      ;({ slot: slot0, verdict } = yield* startFirst(spawner, scope))
    }
    if (!verdict.ok) {
      yield* stopAll(slot0)
      return yield* Effect.fail(new FirstListenFailed({ reason: verdict.code, detail: verdict.message }))
    }
    // Later workers (and restarts) listen on the ports worker 0 actually bound (port 0 resolved).
    roster.listen = verdict.addresses
    roster.decided = true
    roster.slots.push(slot0)
    if (slot0.fiber !== undefined) slot0.fiber = yield* spawner.keepRunningAfter(slot0, slot0.fiber).pipe(Effect.forkIn(scope))

    const count = roster.reusePort ? workers : 1
    if (!parallel || !roster.reusePort) yield* startOthers(count)
    roster.slots.push(...early)
    return count
  })

/** Start worker 0 and wait for its verdict. Its slot keeps running (supervised) when it listens. */
const startFirst = (spawner: Spawner, scope: Scope.Scope) =>
  Effect.gen(function* () {
    const slot = newSlot(0)
    const first = yield* Deferred.make<First>()
    // The first run reports its verdict; if the thread dies before saying anything, that is a failure too.
    slot.fiber = yield* spawner.firstRun(slot, first).pipe(
      Effect.onExit((exit) =>
        Deferred.succeed(first, { ok: false, code: "EXITED", message: Exit.isFailure(exit) ? exitReason(exit) : "exited" }),
      ),
      Effect.forkIn(scope),
    )
    const verdict = yield* Deferred.await(first)
    return { slot, verdict }
  })
