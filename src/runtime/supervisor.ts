/**
 * supervisor.ts: the main thread. Starts the worker threads, keeps them running, sums their
 * counters, and drives a graceful shutdown.
 *
 * Theory of operation: `supervise()` is the story, told in the order it happens; each step is a module of
 * supervise/ around the state they share (supervise/Roster.ts: the worker slots, what a new thread starts
 * with):
 * - the admin endpoint (`options.admin`, observe/AdminServer.ts) listens before the workers start, and
 *   closes with the scope, after the drain; /healthz is "starting" until every worker listens, "draining"
 *   from the first SIGINT/SIGTERM;
 * - the signals are installed, before any worker starts (unless `options.signals` is false: a library
 *   proxy, src/lib/startProxy.ts, installs nothing process-wide, and is driven through the
 *   `SupervisorControl` that `onReady` gets: stats, reload, stop);
 * - spawn (Spawn.ts): each worker slot runs a thread, replaced with backoff when it dies;
 * - the first-listen decision (FirstListen.ts): worker 0's first message decides whether every worker
 *   shares the ports with SO_REUSEPORT, exactly one runs without it (ENOTSUP: one notice line), or
 *   start-up fails with `ListenError` (EADDRINUSE, EACCES...), which the caller words before it exits 1;
 * - stats (Figures.ts): each worker pushes `Stats` every statsInterval; the sums feed the SIGUSR1 line,
 *   the debug line each statsInterval, and the admin endpoint's /stats and /metrics;
 * - reload (Reload.ts, SIGHUP, when `options.reload` is given): validated first, applied as a whole or
 *   not at all; then `Reconfigure` to every started worker; a thread still starting gets the settings with
 *   its `Listen` (Spawn.ts), later restarts start with them;
 * - drain (Drain.ts, the first SIGINT/SIGTERM): no more restarts; `Shutdown { graceMs }` to every worker;
 *   wait for every `Drained` (bounded by grace + margin; a second signal has every worker close what is
 *   still open at once); then the threads are closed. The returned effect succeeds when every worker
 *   reported Drained (`onCut` says how many connections they had to close) and fails with `DrainTimeout`
 *   when one did not in time, so the caller can choose the exit code.
 *
 * It never touches client sockets: the byte path lives entirely in the workers. It reports data
 * (addresses, `StatsSnapshot`s, tagged errors) through the hooks of `SupervisorOptions`; the CLI
 * (src/cli/wording.ts) words them. Only its own operational log lines (a worker replaced, a reload) are
 * written by it and its steps.
 */
import * as Deferred from "effect/Deferred"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { AllowList } from "./access/Allow.ts"
import { VerifierHub } from "./auth/VerifierHub.ts"
import type { Health } from "./observe/AdminServer.ts"
import type { StatsSnapshot } from "./observe/Stats.ts"
import type { ListenAddress, WorkerInit } from "./protocol.ts"
import { DRAIN_MARGIN_MS, drain } from "./supervise/Drain.ts"
import { Figures, printStats, tickStats } from "./supervise/Figures.ts"
import { startWorkers } from "./supervise/FirstListen.ts"
import { makeReload, type ReloadOutcome, type ReloadPlan } from "./supervise/Reload.ts"
import { makeRoster } from "./supervise/Roster.ts"
import { Spawner } from "./supervise/Spawn.ts"

export type { ReloadOutcome, ReloadPlan }

/** What the supervisor needs; a subset of the CLI configuration, plus the output hooks. */
export interface SupervisorOptions {
  /** The init every worker gets; `id`, `reusePort` and the resolved `listen` are set per spawn. */
  readonly init: Omit<WorkerInit, "id" | "reusePort">
  readonly workers: number
  readonly graceMs: number
  /**
   * Called once when every worker listens, with the bound addresses, the number of workers, and the admin
   * endpoint's bound address (port 0 resolved) when it is on.
   */
  readonly onReady: (
    addresses: ReadonlyArray<ListenAddress>,
    workers: number,
    admin: ListenAddress | undefined,
    control: SupervisorControl,
  ) => Effect.Effect<void>
  /** Prints the SIGUSR1 stats line (always shown, whatever the log level). */
  readonly printStats: (line: StatsSnapshot) => Effect.Effect<void>
  /** Every statsInterval: the current figures (the CLI logs them at debug level). */
  readonly onStatsTick?: (stats: StatsSnapshot) => Effect.Effect<void>
  /** The first SIGINT/SIGTERM: live connections get `graceMs` to finish. */
  readonly onStopping?: (graceMs: number) => Effect.Effect<void>
  /**
   * The workers closed connections that were still open: at the end of the grace period (`signal` false,
   * called only when `cut` > 0), or at once on a second SIGINT/SIGTERM (`signal` true, always called).
   */
  readonly onCut?: (cut: number, signal: boolean) => Effect.Effect<void>
  /** Every worker is closed: the final figures. */
  readonly onStopped?: (final: StatsSnapshot) => Effect.Effect<void>
  /** The worker module; default `./worker.ts` or `./worker.js` beside this file. */
  readonly workerUrl?: URL
  /**
   * Builds the configuration again (SIGHUP): the settings workers switch to and the new grace period.
   * Fails with a message when the new configuration cannot be applied as a whole (invalid, unsafe, or it
   * changes a setting only a restart applies): the running one stays. Without it, SIGHUP is ignored.
   */
  readonly reload?: () => Effect.Effect<ReloadPlan, { readonly message: string }>
  /**
   * Install SIGHUP/SIGUSR1/SIGINT/SIGTERM handlers (default true). The library passes false: a program may
   * run several proxies and owns its signals; it drives each one through its `SupervisorControl`.
   */
  readonly signals?: boolean
  /**
   * The admin endpoint (AdminServer.ts), when `--admin` is given: its address, who may use it, and how
   * GET /stats presents the figures.
   */
  readonly admin?:
    | {
        readonly address: ListenAddress
        readonly allow: ReadonlyArray<string>
        readonly statsFigures: (stats: StatsSnapshot) => Record<string, number>
      }
    | undefined
}

/**
 * What a program may do to a running proxy without signals (given to `onReady`; the library's handle,
 * src/lib/startProxy.ts, is made of it). Each does what its signal does.
 */
export interface SupervisorControl {
  /** SIGUSR1's figures: every worker asked for fresh counters (briefly waited for), then summed. */
  readonly stats: Effect.Effect<StatsSnapshot>
  /** SIGHUP's steps with a plan the caller built and validated; one reload at a time. */
  readonly reload: (plan: ReloadPlan) => Effect.Effect<ReloadOutcome>
  /**
   * SIGTERM: start the drain, live connections getting `graceMs` (default: the configured grace) to
   * finish; a second call is the second signal (stop waiting). `supervise` then returns.
   */
  readonly stop: (graceMs?: number) => Effect.Effect<void>
}

/**
 * The proxy (a worker) or the admin endpoint cannot listen: port in use, no permission, not this
 * machine's address, or a worker that could not start at all.
 */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly endpoint: "proxy" | "admin"
  /** The system's error code (EADDRINUSE, EACCES...), or START_FAILED / EXITED for a worker that never listened. */
  readonly reason: string
  /** The system's (or the worker's) own message. */
  readonly detail: string
  /** The addresses it was asked to listen on. */
  readonly addresses: ReadonlyArray<ListenAddress>
}> {}

/**
 * Some workers did not report Drained within grace + margin (or within the margin after a second signal):
 * their threads were stopped, and their connections with them.
 */
export class DrainTimeout extends Data.TaggedError("DrainTimeout")<{
  readonly graceMs: number
  readonly marginMs: number
  readonly afterSecondSignal: boolean
}> {}

/** Where worker.ts is: `.ts` beside this file in development (`node src/cli.ts`), `.js` in dist. */
export const defaultWorkerUrl = (): URL => new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url)

/** How long the threads, the admin endpoint and the verifier thread get to close after the drain. */
const CLOSE_TIMEOUT_MS = 6000

/**
 * Runs the workers until SIGINT/SIGTERM (or until `stop` completes, for tests), then drains them.
 * Fails with ListenError if the first worker (or the admin endpoint) cannot listen, DrainTimeout if draining overran.
 */
export const supervise = (options: SupervisorOptions, stop?: Deferred.Deferred<void>): Effect.Effect<void, ListenError | DrainTimeout> =>
  Effect.gen(function* () {
    const roster = makeRoster(options.init, options.graceMs)
    const figures = new Figures(roster)
    const scope = yield* Scope.make()
    // Always there, since a reload may turn proxy authentication on; its thread starts at the first verification.
    const verifiers = yield* startVerifierHub(scope)
    const spawner = new Spawner(roster, figures, options.workerUrl ?? defaultWorkerUrl(), verifiers)

    const shutdownRequested = stop ?? (yield* Deferred.make<void>())
    const forceStop = yield* Deferred.make<void>()
    let ready = false
    const health = (): Health => (Deferred.isDoneUnsafe(shutdownRequested) ? "draining" : ready ? "serving" : "starting")
    const adminAddress = options.admin === undefined ? undefined : yield* listenAdmin(options.admin, figures, health, scope)
    // Every worker starts after this: each takes the admin socket for one of its own (never a destination).
    if (adminAddress !== undefined) roster.init = { ...roster.init, adminAddress }
    const reloads = yield* makeReload(roster, options.reload)
    const requestStop = () => {
      if (Deferred.isDoneUnsafe(shutdownRequested)) Deferred.doneUnsafe(forceStop, Exit.void)
      else Deferred.doneUnsafe(shutdownRequested, Exit.void)
    }
    if (options.signals !== false) {
      yield* installSignals({ hup: reloads.onSignal, usr1: printStats(figures, options.printStats), stop: requestStop }, scope)
    }
    // The control's effects run where the caller runs them, with this supervisor's services (its logger).
    const context = yield* Effect.context<never>()
    const control: SupervisorControl = {
      stats: figures.refresh().pipe(
        Effect.map(() => figures.snapshot()),
        Effect.provideContext(context),
      ),
      reload: (plan) => reloads.apply(plan).pipe(Effect.provideContext(context)),
      stop: (graceMs) =>
        Effect.sync(() => {
          if (graceMs !== undefined && !Deferred.isDoneUnsafe(shutdownRequested)) roster.graceMs = graceMs
          requestStop()
        }),
    }

    const count = yield* startWorkers(roster, spawner, scope, options.workers).pipe(
      Effect.catchTag("FirstListenFailed", (e) =>
        Scope.close(scope, Exit.void).pipe(
          Effect.andThen(Effect.fail(new ListenError({ endpoint: "proxy", reason: e.reason, detail: e.detail, addresses: roster.listen }))),
        ),
      ),
    )
    // Wait (briefly) until every worker listens, so the start-up line is true when printed.
    yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => roster.slots.every((s) => s.listening), times: 500 }))
    ready = true
    yield* options.onReady(roster.listen, count, adminAddress, control)
    if (options.onStatsTick !== undefined) yield* tickStats(figures, options.init.statsIntervalMs, options.onStatsTick, scope)

    yield* Deferred.await(shutdownRequested)
    const outcome = yield* drain(roster, forceStop, options.onStopping)
    const final = figures.snapshot()
    yield* Scope.close(scope, Exit.void).pipe(Effect.timeoutOption(CLOSE_TIMEOUT_MS))
    if (options.onCut !== undefined && outcome._tag !== "Overran" && (outcome._tag === "CutShort" || outcome.cut > 0))
      yield* options.onCut(outcome.cut, outcome._tag === "CutShort")
    if (options.onStopped !== undefined) yield* options.onStopped(final)
    if (outcome._tag === "Overran") {
      return yield* Effect.fail(
        new DrainTimeout({ graceMs: roster.graceMs, marginMs: DRAIN_MARGIN_MS, afterSecondSignal: outcome.afterSecondSignal }),
      )
    }
  })

/** Proxy authentication: one bcrypt verifier thread for the process (each worker gets a port to it), closed with the scope. */
const startVerifierHub = (scope: Scope.Scope) =>
  Effect.gen(function* () {
    const logError = Effect.runForkWith(yield* Effect.context<never>())
    const hub = new VerifierHub({ onError: (error) => void logError(Effect.logError(`proxy authentication: ${error.message}`)) })
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => hub.close()),
    )
    return hub
  })

/**
 * The admin endpoint listens before any worker starts, so a bad --admin fails fast (and closes the scope);
 * it is closed with the scope, after the drain: it answers (503) through the whole grace period.
 */
const listenAdmin = (
  admin: NonNullable<SupervisorOptions["admin"]>,
  figures: Figures,
  health: () => Health,
  scope: Scope.Closeable,
): Effect.Effect<ListenAddress, ListenError> =>
  Effect.gen(function* () {
    // Loaded only when asked for (chunks of their own in dist/): node:http, and even the /metrics formatter's
    // few KB inside main.js, make the main thread's RSS larger (docs/performance.md, "The admin endpoint's cost").
    const [{ AdminListenError, AdminServer }, { formatMetrics }] = yield* Effect.promise(() =>
      Promise.all([import("./observe/AdminServer.ts"), import("./observe/MetricsText.ts")]),
    )
    const runPromise = Effect.runPromiseWith(yield* Effect.context<never>())
    const server = new AdminServer({
      address: admin.address,
      allow: AllowList.parse(admin.allow),
      sources: {
        health,
        stats: () => runPromise(figures.refresh().pipe(Effect.map(() => admin.statsFigures(figures.snapshot())))),
        metrics: () => runPromise(figures.refresh().pipe(Effect.map(() => formatMetrics(figures.metricsInput())))),
      },
    })
    const address = yield* Effect.tryPromise({
      try: () => server.listen(),
      catch: (e) =>
        new ListenError({
          endpoint: "admin",
          reason: e instanceof AdminListenError ? e.reason : "EUNKNOWN",
          detail: e instanceof AdminListenError ? e.detail : String(e),
          addresses: [admin.address],
        }),
    }).pipe(Effect.tapError(() => Scope.close(scope, Exit.void)))
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => server.close()),
    )
    return address
  })

/**
 * Installs the signal handlers until the scope closes, before any worker starts (so a SIGUSR1 right after
 * the start-up line never reaches Node's default handler, the inspector): SIGHUP reloads, SIGUSR1 prints
 * stats; the first SIGINT/SIGTERM requests the shutdown (started once start-up completes), a second one
 * cuts it short.
 */
const installSignals = (
  on: { readonly hup: Effect.Effect<void>; readonly usr1: Effect.Effect<void>; readonly stop: () => void },
  scope: Scope.Scope,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const onHup = () => {
      runFork(on.hup)
    }
    const onUsr1 = () => {
      runFork(on.usr1)
    }
    const onStop = on.stop
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        process.on("SIGHUP", onHup)
        process.on("SIGUSR1", onUsr1)
        process.on("SIGINT", onStop)
        process.on("SIGTERM", onStop)
      }),
      () =>
        Effect.sync(() => {
          process.off("SIGHUP", onHup)
          process.off("SIGUSR1", onUsr1)
          process.off("SIGINT", onStop)
          process.off("SIGTERM", onStop)
        }),
    ).pipe(Scope.provide(scope))
  })
