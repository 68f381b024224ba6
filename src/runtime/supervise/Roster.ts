/**
 * The supervise/ folder owns the steps of the main thread's `supervise()` (src/runtime/supervisor.ts),
 * one module each, around the state they share (this file):
 *   Roster.ts       the worker slots and what a new thread starts with;
 *   Spawn.ts        a slot's thread: started, its messages handled, replaced when it dies;
 *   FirstListen.ts  worker 0's verdict: every worker with reusePort, exactly one without, or a listen error;
 *   Figures.ts      the counters: collected from the workers, summed, read by the stats line, /stats, /metrics;
 *   Reload.ts       SIGHUP: the new settings to every started worker, and their answers;
 *   Drain.ts        SIGINT/SIGTERM: Shutdown to every worker, and the wait for their Drained.
 * supervisor.ts composes them, owns the signals and the admin endpoint, and words nothing: failures
 * come back to it as data and it turns them into its tagged errors.
 *
 * May import: every runtime capability folder (timers/, observe/, access/, auth/, dial/, connection/) and
 * the top-level protocol.ts. Only the top-level supervisor.ts imports this folder.
 */
import * as Deferred from "effect/Deferred"
import type * as Fiber from "effect/Fiber"
import type { Worker as EffectWorker } from "effect/workers/Worker"
import type { WorkerMetricsSnapshot } from "../observe/Metrics.ts"
import { type WorkerStats, zeroStats } from "../observe/Stats.ts"
import type { FromWorker, ListenAddress, LiveSettings, ToWorker, WorkerInit } from "../protocol.ts"

/** One place for a worker: the thread running in it now (replaced when it dies) and its latest figures. */
export interface Slot {
  readonly id: number
  handle: EffectWorker<FromWorker, ToWorker> | undefined
  listening: boolean
  /** Completed when the thread reported Drained (with how many connections it closed) or ended (0). */
  drained: Deferred.Deferred<number>
  stats: WorkerStats
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** How many of this slot's threads have reported Listening. */
  runs: number
  /**
   * The current thread was told to `Listen` (Spawn.ts): from then on it answers `Reconfigure`, also while
   * its Listening is on its way, so a reload reaches it.
   */
  started: boolean
  /**
   * The settings of the last reload the current thread has (its init when it was spawned, or sent with
   * `Listen`); undefined: the start-up ones. `Listen` brings a thread whose settings are not the roster's
   * up to date.
   */
  settings: LiveSettings | undefined
  /** Set while a Reconfigure is unanswered: completed with the worker's error, if any. */
  reconfigured: Deferred.Deferred<string | undefined> | undefined
  /** Called at the next Stats message (a scrape waiting for fresh figures). */
  statsWaiters: Array<() => void>
  /** The current thread's latest /metrics figures (undefined until its first Stats). */
  metrics: WorkerMetricsSnapshot | undefined
}

export const newSlot = (id: number): Slot => ({
  id,
  handle: undefined,
  listening: false,
  drained: Deferred.makeUnsafe<number>(),
  stats: zeroStats,
  fiber: undefined,
  runs: 0,
  started: false,
  settings: undefined,
  reconfigured: undefined,
  statsWaiters: [],
  metrics: undefined,
})

/** The supervisor's state, shared by its steps: each field says which step changes it. */
export interface Roster {
  /** The slots of the workers that run (FirstListen.ts adds them once worker 0 listens). */
  readonly slots: Array<Slot>
  /** What new and restarted workers start with: the CLI's init, updated by each reload (Reload.ts). */
  init: Omit<WorkerInit, "id" | "reusePort">
  /** The settings of the last reload (merged into `init` too, Reload.ts); undefined until one. */
  settings: LiveSettings | undefined
  /** The drain's grace period: the configured one, updated by each reload. */
  graceMs: number
  /** False once worker 0 found no SO_REUSEPORT (FirstListen.ts): then exactly one worker runs. */
  reusePort: boolean
  /** Where workers listen: the configured addresses, then the ones worker 0 bound (port 0 resolved). */
  listen: ReadonlyArray<ListenAddress>
  /** Threads replaced after they stopped (Spawn.ts). */
  restarts: number
  /** Set once worker 0 listens: from then on a worker failure is logged and counted. */
  decided: boolean
  /** Set at the first SIGINT/SIGTERM (Drain.ts): no more restarts. */
  shuttingDown: boolean
}

export const makeRoster = (init: Roster["init"], graceMs: number): Roster => ({
  slots: [],
  init,
  settings: undefined,
  graceMs,
  reusePort: true,
  listen: init.listen,
  restarts: 0,
  decided: false,
  shuttingDown: false,
})

/** A listening worker is one that can be sent a message and will answer it; asked of each slot just before sending. */
export const isListening = (slot: Slot): slot is Slot & { handle: EffectWorker<FromWorker, ToWorker> } =>
  slot.handle !== undefined && slot.listening

/** A worker told to listen: it answers `Reconfigure`, whether its Listening has arrived yet or not (Reload.ts). */
export const isStarted = (slot: Slot): slot is Slot & { handle: EffectWorker<FromWorker, ToWorker> } =>
  slot.handle !== undefined && slot.started
