/**
 * Spawn: a worker slot's threads. Workers are spawned through Effect's `NodeWorker` / `WorkerPlatform`
 * (worker.ts answers with `NodeWorkerRunner`); `worker.run(handler)` starts the thread and fails when it
 * ends, so a slot is kept running by `run` + `retry(backoff)`: a worker that dies is logged and replaced,
 * and counted in the restarts. Each thread starts with the roster's current init, reusePort and listen
 * addresses, so a restart picks up the last reload and the port worker 0 bound.
 *
 * A thread listens only when told to: once its runner is up (`onSpawn`), it is sent `Listen`, with the
 * roster's settings when a reload came after it was spawned (a thread takes a while to load, and its init
 * is fixed when it is spawned: docs/reliability.md, F3). Reading the roster, marking the slot started and
 * queueing `Listen` happen in one synchronous step, so a reload either comes before it (and its settings
 * go with `Listen`) or after it (and finds the slot started: its `Reconfigure` is queued behind `Listen`).
 *
 * A run's messages go where they belong: Listening and ListenFailed to the first-listen verdict (or the
 * log), Stats to the figures, Drained and Reconfigured to whoever waits for them.
 */
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { WorkerPlatform } from "effect/workers/Worker"
import { isWorkerError } from "effect/workers/WorkerError"
import { Worker } from "node:worker_threads"
import { releaseWorker } from "../access/ConnectionLimits.ts"
import type { VerifierHub } from "../auth/VerifierHub.ts"
import { type FromWorker, type ListenAddress, START_FAILED, type ToWorker, type WorkerInit } from "../protocol.ts"
import type { Figures } from "./Figures.ts"
import type { Roster, Slot } from "./Roster.ts"

/**
 * Young-generation size of each worker's V8 heap (MB), far below V8's default (semi-spaces that may grow
 * to 32 MB): a burst of new connections, whose long-lived objects are copied through the young generation,
 * grows it as far as it may and the RSS stays, so a small one keeps idle tunnels cheap, for slightly more
 * time in collections (the figures, per size tried: docs/performance.md, "RSS per idle tunnel").
 */
export const WORKER_YOUNG_GENERATION_MB = 4

/** The first report of a worker run: Listening or ListenFailed. */
export type First =
  | { readonly ok: true; readonly addresses: ReadonlyArray<ListenAddress> }
  | { readonly ok: false; readonly code: string; readonly message: string }

/** A worker run that ended because the worker reported ListenFailed. */
export class WorkerListenFailed extends Data.TaggedError("WorkerListenFailed")<{
  /** The worker's error code (EADDRINUSE..., or START_FAILED). */
  readonly reason: string
  /** The worker's own message. */
  readonly detail: string
}> {}

const restartSchedule = Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("10 seconds")])

/** Starts the threads of the roster's slots and keeps them running. */
export class Spawner {
  private readonly roster: Roster
  private readonly figures: Figures
  private readonly platform: ReturnType<typeof NodeWorker.layer>

  /** `verifiers`: the process's bcrypt verifier thread (with --auth-file); each worker gets a port to it. */
  constructor(roster: Roster, figures: Figures, workerUrl: URL, verifiers: VerifierHub | undefined) {
    this.roster = roster
    this.figures = figures
    this.platform = NodeWorker.layer((id) => {
      const verifierPort = verifiers?.connect()
      const { init, reusePort, listen } = roster
      return new Worker(workerUrl, {
        workerData: { ...init, id, reusePort, listen, ...(verifierPort === undefined ? {} : { verifierPort }) } satisfies WorkerInit,
        transferList: verifierPort === undefined ? [] : [verifierPort],
        // Keep the threads' stdout/stderr in this process's streams (the access log).
        stdout: false,
        stderr: false,
        // A smaller young generation than V8's default: see WORKER_YOUNG_GENERATION_MB.
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      })
    })
  }

  /**
   * Worker 0's first thread: its Listening or ListenFailed is the verdict, given to `first` (FirstListen.ts)
   * instead of the log; the run goes on until the thread ends, and is not retried.
   */
  firstRun(slot: Slot, first: Deferred.Deferred<First>) {
    return this.runOnce(slot, first).pipe(Effect.provide(this.platform))
  }

  /** Keep one worker slot running: replace the thread when it dies, with backoff, until the shutdown. */
  keepRunning(slot: Slot): Effect.Effect<void> {
    return this.superviseSlot(slot).pipe(Effect.provide(this.platform))
  }

  /** Worker 0's first run is already going (FirstListen.ts): once it ends, the slot is supervised like the others. */
  keepRunningAfter(slot: Slot, firstRun: Fiber.Fiber<unknown, unknown>): Effect.Effect<void> {
    const roster = this.roster
    const superviseSlot = this.superviseSlot(slot)
    return Fiber.await(firstRun).pipe(
      Effect.flatMap((exit) =>
        roster.shuttingDown
          ? Effect.void
          : Effect.gen(function* () {
              roster.restarts++
              yield* Effect.logWarning(
                `worker ${slot.id} stopped: ${Exit.isFailure(exit) ? exitReason(exit) : "exited"}; starting a new one`,
              )
              yield* Effect.sleep("200 millis")
              slot.runs = 1
              if (!roster.shuttingDown) yield* superviseSlot
            }),
      ),
      Effect.provide(this.platform),
    )
  }

  private superviseSlot(slot: Slot) {
    const roster = this.roster
    return this.runOnce(slot, undefined).pipe(
      Effect.catch((e) => {
        if (roster.shuttingDown) return Effect.void
        // Before worker 0's verdict, a failure here is the same failure as worker 0's: no noise, no count.
        if (!roster.decided) return Effect.fail(e)
        const why =
          e._tag === "WorkerListenFailed"
            ? e.reason === START_FAILED
              ? `could not start (${e.detail})`
              : `cannot listen (${e.reason}: ${e.detail})`
            : exitReason(Exit.fail(e))
        roster.restarts++
        return Effect.logWarning(`worker ${slot.id} stopped: ${why}; starting a new one`).pipe(Effect.andThen(Effect.fail(e)))
      }),
      Effect.retry({ schedule: restartSchedule, while: () => !roster.shuttingDown }),
      Effect.catch(() => Effect.void),
    )
  }

  /** One run of one worker thread: spawn, handle its messages, fail when it ends. */
  private runOnce(slot: Slot, first: Deferred.Deferred<First> | undefined) {
    const { roster, figures } = this
    return Effect.gen(function* () {
      const platform = yield* WorkerPlatform
      const worker = yield* platform.spawn<FromWorker, ToWorker>(slot.id)
      slot.handle = worker
      slot.drained = Deferred.makeUnsafe<number>()
      // Taken before the thread reads the roster's init (in `run`): at worst one Listen too many carries settings.
      slot.settings = roster.settings
      slot.started = false
      const start = Effect.sync(() => {
        const settings = roster.settings
        const stale = settings !== slot.settings
        slot.settings = settings
        slot.started = true
        // Queued in this same step (Effect's worker holds it until the thread's runner is ready).
        Effect.runSyncExit(worker.send(stale && settings !== undefined ? { _tag: "Listen", settings } : { _tag: "Listen" }))
      })
      yield* worker.run((msg) => handleMessage(slot, first, figures, msg), { onSpawn: start })
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          figures.retire(slot)
          // The thread is gone: give back its share of the connection limits (ConnectionLimits.ts).
          if (roster.init.connectionLimits !== undefined) releaseWorker(roster.init.connectionLimits, slot.id)
          slot.listening = false
          slot.started = false
          slot.handle = undefined
          Deferred.doneUnsafe(slot.drained, Exit.succeed(0))
        }),
      ),
    )
  }
}

/** One message of a slot's thread; `first` is set during worker 0's first run, which reports its verdict there. */
const handleMessage = (
  slot: Slot,
  first: Deferred.Deferred<First> | undefined,
  figures: Figures,
  msg: FromWorker,
): Effect.Effect<void, WorkerListenFailed> => {
  switch (msg._tag) {
    case "Listening":
      slot.listening = true
      if (first !== undefined) return Deferred.succeed(first, { ok: true, addresses: msg.addresses }).pipe(Effect.asVoid)
      slot.runs++
      return slot.runs > 1 ? Effect.logInfo(`worker ${slot.id} replaced: listening again`) : Effect.logDebug(`worker ${slot.id} listening`)
    case "ListenFailed":
      if (first !== undefined) {
        return Deferred.succeed(first, { ok: false, code: msg.code, message: msg.message }).pipe(Effect.asVoid)
      }
      return Effect.fail(new WorkerListenFailed({ reason: msg.code, detail: msg.message }))
    case "Stats":
      figures.record(slot, msg)
      return Effect.void
    case "Drained":
      return Deferred.succeed(slot.drained, msg.cut ?? 0).pipe(Effect.asVoid)
    case "Reconfigured": {
      const waiting = slot.reconfigured
      slot.reconfigured = undefined
      return waiting === undefined ? Effect.void : Deferred.succeed(waiting, msg.error).pipe(Effect.asVoid)
    }
  }
}

/**
 * Why a worker's run ended, in one line: its exit code, or its error's first line; never a stack or a
 * printed Cause. A thread that died of an uncaught exception (Node's `error` event) is named by that
 * exception, `uncaught TypeError: ...`: Effect's worker error around it only says "An error event was
 * emitted" (docs/reliability.md, F5).
 */
export const exitReason = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "exited"
  const text = String(exit.cause)
  const m = /The worker has exited with code: -?\d+/.exec(text)
  if (m !== null) return m[0]
  const error = Cause.squash(exit.cause)
  if (isWorkerError(error) && error.reason._tag === "WorkerReceiveError" && error.reason.cause !== undefined) {
    return `uncaught ${describeThrown(error.reason.cause)}`
  }
  return firstLine(error instanceof Error ? error.message : String(error))
}

/** What a thread threw, in one line: `TypeError: message`, or the value itself when it is not an Error. */
const describeThrown = (thrown: unknown): string => {
  if (!(thrown instanceof Error)) return `exception: ${firstLine(String(thrown))}`
  return `${thrown.name || "Error"}: ${firstLine(thrown.message)}`
}

const firstLine = (text: string): string => text.split("\n")[0] ?? text
