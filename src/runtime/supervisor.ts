/**
 * supervisor.ts: the main thread. Starts the worker threads, keeps them running, sums their
 * counters, and drives a graceful shutdown.
 *
 * Theory of operation:
 * - Workers are spawned through Effect's `NodeWorker` / `WorkerPlatform` (worker.ts answers with
 *   `NodeWorkerRunner`). `worker.run(handler)` starts the thread and fails when it ends, so each worker
 *   slot is a fiber `run` + `retry(backoff)`: a worker that dies is logged and replaced.
 * - Worker 0's first message decides how the workers run (with fixed ports the others start at the
 *   same time, since a thread takes a while to load; with port 0 they wait for the port it bound):
 *     `Listening`  -> all listen on the same addresses (port 0 resolved to the real port);
 *     `ListenFailed` with ENOTSUP (no SO_REUSEPORT on this platform) -> one notice line, and exactly
 *                     one worker runs, listening without reusePort;
 *     `ListenFailed` otherwise (EADDRINUSE, EACCES...) -> `ListenError`, the caller words it and exits 1.
 * - Stats: each worker pushes `Stats` every statsInterval; the supervisor keeps the latest per worker
 *   plus the totals of workers that died, prints one line on SIGUSR1, and logs it at debug level.
 *   SIGUSR1 and the admin endpoint's /stats and /metrics first ask every worker for fresh figures
 *   (`ReportStats`), waiting at most FRESH_STATS_MS.
 * - Admin endpoint (`options.admin`, AdminServer.ts): listens before the workers start and closes with
 *   the scope, after the drain; /healthz is "starting" until every worker listens, "draining" from the
 *   first SIGINT/SIGTERM.
 * - Reload (SIGHUP, when `options.reload` is given): the new configuration is built and validated first;
 *   if it fails, the error is logged and nothing changes. Otherwise every listening worker gets
 *   `Reconfigure` (new connections use the new settings, open ones finish under the old), later
 *   restarts start with it, and settings that only a restart can change are named in a warning.
 * - Shutdown (first SIGINT/SIGTERM): no more restarts; `Shutdown { graceMs }` to every listening
 *   worker; wait for every `Drained` (bounded by grace + margin); then close the threads. A second
 *   signal stops waiting. The returned effect succeeds on a clean drain and fails with
 *   `DrainTimeout` otherwise, so the caller can choose the exit code.
 *
 * It never touches client sockets: the byte path lives entirely in the workers. It reports data
 * (addresses, `StatsSnapshot`s, tagged errors) through the hooks of `SupervisorOptions`; the CLI
 * (src/cli/wording.ts) words them. Only its own operational log lines (a worker replaced, a reload) are
 * written here.
 */
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Semaphore from "effect/Semaphore"
import * as Scope from "effect/Scope"
import { WorkerPlatform, type Worker as EffectWorker } from "effect/workers/Worker"
import { Worker } from "node:worker_threads"
import type { Health } from "./observe/AdminServer.ts"
import { addMetricsInto, COUNTER_OFFSETS, type WorkerMetricsSnapshot, zeroMetrics } from "./observe/Metrics.ts"
import { type FromWorker, type ListenAddress, type LiveSettings, START_FAILED, type ToWorker, type WorkerInit } from "./protocol.ts"
import { addStats, type StatsSnapshot, type WorkerStats, zeroStats } from "./observe/Stats.ts"
import { releaseWorker } from "./access/ConnectionLimits.ts"
import { VerifierHub } from "./auth/VerifierHub.ts"
import { AllowList } from "./access/Allow.ts"

/**
 * Young-generation size of each worker's V8 heap (MB), far below V8's default (semi-spaces that may
 * grow to 32 MB). A burst of new connections (each leaves a few KB of long-lived objects, copied through
 * the young generation) grows it as far as it may, and the RSS stays. Measured with the bundled build
 * (docs/performance.md), RSS per idle tunnel in the 10k-tunnel bench: 9.9 KB at 48 MB, 7.3 at 24, 6.05–6.4
 * at 8, 5.8–5.9 at 4. Its price is more, smaller collections where requests allocate: with --trace-gc
 * over the quick small-request and new-tunnel workloads, 4 MB spent 1,095 ms in scavenges and 56 ms in
 * mark-compacts against 966 and 32 ms at 24 MB, ~1 % of the ~15 CPU-s the proxy used; bulk transfers
 * allocate nothing per chunk and showed no difference (alternating A/B runs). The 4 MB trial that once cost
 * ~45 % more CPU per byte was made while every read still allocated a Node Buffer.
 */
export const WORKER_YOUNG_GENERATION_MB = 4

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
  readonly onReady: (addresses: ReadonlyArray<ListenAddress>, workers: number, admin: ListenAddress | undefined) => Effect.Effect<void>
  /** Prints the SIGUSR1 stats line (always shown, whatever the log level). */
  readonly printStats: (line: StatsSnapshot) => Effect.Effect<void>
  /** Every statsInterval: the current figures (the CLI logs them at debug level). */
  readonly onStatsTick?: (stats: StatsSnapshot) => Effect.Effect<void>
  /** The first SIGINT/SIGTERM: live connections get `graceMs` to finish. */
  readonly onStopping?: (graceMs: number) => Effect.Effect<void>
  /** Every worker is closed: the final figures. */
  readonly onStopped?: (final: StatsSnapshot) => Effect.Effect<void>
  /** The worker module; default `./worker.ts` or `./worker.js` beside this file. */
  readonly workerUrl?: URL
  /**
   * Builds the configuration again (SIGHUP): the settings workers switch to, the new grace period, and
   * the names of changed settings that need a restart. Fails with a message when the new configuration
   * is invalid (the running one stays). Without it, SIGHUP is ignored.
   */
  readonly reload?: () => Effect.Effect<ReloadPlan, { readonly message: string }>
  /** Install SIGINT/SIGTERM/SIGUSR1 handlers (default true; tests pass false and use `stop`). */
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

/** What a reload changes. */
export interface ReloadPlan {
  readonly settings: LiveSettings
  readonly graceMs: number
  /** Settings that changed but cannot change while running (listen, workers...), by flag name. */
  readonly needsRestart: ReadonlyArray<string>
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

/** Some workers did not report Drained within grace + margin; their connections were closed. */
export class DrainTimeout extends Data.TaggedError("DrainTimeout")<{
  readonly graceMs: number
}> {}

/** Where worker.ts is: `.ts` beside this file in development (`node src/cli.ts`), `.js` in dist. */
export const defaultWorkerUrl = (): URL => new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url)

/** Error codes Node/libuv use when SO_REUSEPORT is not available (macOS, Windows: UV_ENOTSUP). */
export const REUSEPORT_UNSUPPORTED = new Set(["ENOTSUP", "EOPNOTSUPP", "ERR_SOCKET_REUSEPORT_UNSUPPORTED"])

interface Slot {
  readonly id: number
  handle: EffectWorker<FromWorker, ToWorker> | undefined
  listening: boolean
  drained: Deferred.Deferred<void>
  stats: WorkerStats
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** How many of this slot's threads have reported Listening. */
  runs: number
  /** Set while a Reconfigure is unanswered: completed with the worker's error, if any. */
  reconfigured: Deferred.Deferred<string | undefined> | undefined
  /** Called at the next Stats message (a scrape waiting for fresh figures). */
  statsWaiters: Array<() => void>
  /** The current thread's latest /metrics figures (undefined until its first Stats). */
  metrics: WorkerMetricsSnapshot | undefined
}

/** A worker run that ended because the worker reported ListenFailed. */
class WorkerListenFailed extends Data.TaggedError("WorkerListenFailed")<{
  /** The worker's error code (EADDRINUSE..., or START_FAILED). */
  readonly reason: string
  /** The worker's own message. */
  readonly detail: string
}> {}

/** How long a scrape of /metrics or /stats waits for the workers' fresh counters before using the last ones. */
const FRESH_STATS_MS = 250

const restartSchedule = Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("10 seconds")])

/**
 * Runs the workers until SIGINT/SIGTERM (or until `stop` completes, for tests), then drains them.
 * Fails with ListenError if the first worker cannot listen, DrainTimeout if draining overran.
 */
export const supervise = (options: SupervisorOptions, stop?: Deferred.Deferred<void>): Effect.Effect<void, ListenError | DrainTimeout> =>
  Effect.gen(function* () {
    const startedAt = Date.now()
    const workerUrl = options.workerUrl ?? defaultWorkerUrl()
    let reusePort = true
    let listen: ReadonlyArray<ListenAddress> = options.init.listen
    let shuttingDown = false
    /** Set once worker 0 listens: from then on a worker failure is logged and counted. */
    let decided = false
    let restarts = 0
    /** What new and restarted workers start with: the init, updated by each reload. */
    let currentInit = options.init
    let graceMs = options.graceMs
    let retired: WorkerStats = zeroStats
    /** The counters and histograms of worker threads that ended (so /metrics never goes backwards). */
    const retiredMetrics = zeroMetrics()
    const slots: Array<Slot> = []

    // Proxy authentication: one bcrypt verifier thread for the process; each worker gets a port to it.
    const logError = Effect.runForkWith(yield* Effect.context<never>())
    const verifiers =
      options.init.authFile === undefined
        ? undefined
        : new VerifierHub({ onError: (error) => void logError(Effect.logError(`proxy authentication: ${error.message}`)) })
    const spawner = (id: number) => {
      const verifierPort = verifiers?.connect()
      return new Worker(workerUrl, {
        workerData: { ...currentInit, id, reusePort, listen, ...(verifierPort === undefined ? {} : { verifierPort }) } satisfies WorkerInit,
        transferList: verifierPort === undefined ? [] : [verifierPort],
        // Keep the threads' stdout/stderr in this process's streams (the access log).
        stdout: false,
        stderr: false,
        // A smaller young generation than V8's default: see WORKER_YOUNG_GENERATION_MB.
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      })
    }

    const platformLayer = NodeWorker.layer(spawner)
    const scope = yield* Scope.make()
    if (verifiers !== undefined)
      yield* Scope.addFinalizer(
        scope,
        Effect.sync(() => verifiers.close()),
      )

    const snapshot = (): StatsSnapshot => {
      const cpu = process.cpuUsage()
      let totals = retired
      for (const s of slots) totals = addStats(totals, s.stats)
      return {
        pid: process.pid,
        uptimeMs: Date.now() - startedAt,
        cpuUserMs: Math.round(cpu.user / 1000),
        cpuSystemMs: Math.round(cpu.system / 1000),
        rssBytes: process.memoryUsage.rss(),
        workers: slots.length,
        workersRunning: slots.filter((s) => s.listening).length,
        restarts,
        totals,
      }
    }

    const metricsInput = () => {
      const totals = zeroMetrics()
      addMetricsInto(totals, retiredMetrics)
      let tunnelsOpen = 0
      const workers: Array<{ id: number; metrics: WorkerMetricsSnapshot }> = []
      for (const s of slots) {
        if (s.metrics === undefined) continue
        addMetricsInto(totals, s.metrics)
        tunnelsOpen += s.metrics.tunnelsOpen
        if (s.listening) workers.push({ id: s.id, metrics: s.metrics })
      }
      return { stats: snapshot(), totals: { ...totals, tunnelsOpen }, workers }
    }

    /** The first report of a worker run: Listening or ListenFailed. */
    type First =
      | { readonly ok: true; readonly addresses: ReadonlyArray<ListenAddress> }
      | { readonly ok: false; readonly code: string; readonly message: string }

    /** One run of one worker thread: spawn, handle its messages, fail when it ends. */
    const runOnce = (slot: Slot, first: Deferred.Deferred<First> | undefined) =>
      Effect.gen(function* () {
        const platform = yield* WorkerPlatform
        const worker = yield* platform.spawn<FromWorker, ToWorker>(slot.id)
        slot.handle = worker
        slot.drained = Deferred.makeUnsafe<void>()
        yield* worker.run((msg): Effect.Effect<void, WorkerListenFailed> => {
          switch (msg._tag) {
            case "Listening":
              slot.listening = true
              if (first !== undefined) return Deferred.succeed(first, { ok: true, addresses: msg.addresses }).pipe(Effect.asVoid)
              slot.runs++
              return slot.runs > 1
                ? Effect.logInfo(`worker ${slot.id} replaced: listening again`)
                : Effect.logDebug(`worker ${slot.id} listening`)
            case "ListenFailed":
              if (first !== undefined) {
                return Deferred.succeed(first, { ok: false, code: msg.code, message: msg.message }).pipe(Effect.asVoid)
              }
              return Effect.fail(new WorkerListenFailed({ reason: msg.code, detail: msg.message }))
            case "Stats":
              slot.stats = msg.stats
              if (msg.metrics !== undefined) slot.metrics = msg.metrics
              for (const wake of slot.statsWaiters.splice(0)) wake()
              return Effect.void
            case "Drained":
              return Deferred.succeed(slot.drained, undefined).pipe(Effect.asVoid)
            case "Reconfigured": {
              const waiting = slot.reconfigured
              slot.reconfigured = undefined
              return waiting === undefined ? Effect.void : Deferred.succeed(waiting, msg.error).pipe(Effect.asVoid)
            }
          }
        })
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            // The thread is gone: keep what it counted, forget its live connections.
            retired = addStats(retired, { ...slot.stats, connectionsLive: 0 })
            // ...and give back its share of the connection limits (ConnectionLimits.ts).
            if (options.init.connectionLimits !== undefined) releaseWorker(options.init.connectionLimits, slot.id)
            slot.stats = zeroStats
            if (slot.metrics !== undefined) {
              addMetricsInto(retiredMetrics, slot.metrics)
              // Its tunnels ended with it: counted as closed, so that opened = closed + open stays monotonic.
              const closedAt = COUNTER_OFFSETS.tunnelsClosed
              retiredMetrics.counters[closedAt] = (retiredMetrics.counters[closedAt] as number) + slot.metrics.tunnelsOpen
              slot.metrics = undefined
            }
            slot.listening = false
            slot.handle = undefined
            Deferred.doneUnsafe(slot.drained, Exit.void)
          }),
        ),
      )

    /** Keep one worker slot running: replace the thread when it dies, with backoff. */
    const superviseSlot = (slot: Slot) =>
      runOnce(slot, undefined).pipe(
        Effect.catch((e) => {
          if (shuttingDown) return Effect.void
          // Before worker 0's verdict, a failure here is the same failure as worker 0's: no noise, no count.
          if (!decided) return Effect.fail(e)
          const why =
            e._tag === "WorkerListenFailed"
              ? e.reason === START_FAILED
                ? `could not start (${e.detail})`
                : `cannot listen (${e.reason}: ${e.detail})`
              : exitReason(Exit.fail(e))
          restarts++
          return Effect.logWarning(`worker ${slot.id} stopped: ${why}; starting a new one`).pipe(Effect.andThen(Effect.fail(e)))
        }),
        Effect.retry({ schedule: restartSchedule, while: () => !shuttingDown }),
        Effect.catch(() => Effect.void),
      )

    const newSlot = (id: number): Slot => ({
      id,
      handle: undefined,
      listening: false,
      drained: Deferred.makeUnsafe<void>(),
      stats: zeroStats,
      fiber: undefined,
      runs: 0,
      reconfigured: undefined,
      statsWaiters: [],
      metrics: undefined,
    })

    const provide = <A, E>(eff: Effect.Effect<A, E, WorkerPlatform | import("effect/workers/Worker").Spawner>) =>
      Effect.provide(eff, platformLayer)

    /** Start worker 0 and wait for its verdict. Its slot keeps running (supervised) when it listens. */
    const startFirst = Effect.gen(function* () {
      const slot = newSlot(0)
      const first = yield* Deferred.make<First>()
      // The first run reports its verdict; if the thread dies before saying anything, that is a failure too.
      const fiber = yield* runOnce(slot, first).pipe(
        provide,
        Effect.onExit((exit) =>
          Deferred.succeed(first, { ok: false, code: "EXITED", message: Exit.isFailure(exit) ? exitReason(exit) : "exited" }),
        ),
        Effect.forkIn(scope),
      )
      slot.fiber = fiber
      const verdict = yield* Deferred.await(first)
      return { slot, verdict }
    })

    // Signals, installed before any worker starts (so a SIGUSR1 right after the start-up line never reaches
    // Node's default handler, the inspector): SIGUSR1 prints stats; the first SIGINT/SIGTERM starts the
    // shutdown (after start-up completes), a second one cuts it short.
    const shutdownRequested = stop ?? (yield* Deferred.make<void>())
    const forceStop = yield* Deferred.make<void>()
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const onUsr1 = () => {
      runFork(reportStats)
    }
    const onHup = () => {
      runFork(reload)
    }
    const onStop = () => {
      if (Deferred.isDoneUnsafe(shutdownRequested)) Deferred.doneUnsafe(forceStop, Exit.void)
      else Deferred.doneUnsafe(shutdownRequested, Exit.void)
    }
    const reportStats = Effect.gen(function* () {
      yield* refreshStats
      yield* options.printStats(snapshot())
    })
    /** One reload at a time: a SIGHUP during a reload waits for it. */
    const reloadLock = yield* Semaphore.make(1)
    const reload = Effect.gen(function* () {
      if (options.reload === undefined) return yield* Effect.logInfo("SIGHUP: nothing to reload")
      if (shuttingDown) return yield* Effect.logInfo("SIGHUP ignored: shutting down")
      const planned = yield* Effect.result(options.reload())
      if (planned._tag === "Failure") {
        return yield* Effect.logError(`reload rejected, the running configuration stays: ${planned.failure.message}`)
      }
      const plan = planned.success
      for (const name of plan.needsRestart) {
        yield* Effect.logWarning(`reload: ${name} changed, but it only takes effect after a restart`)
      }
      currentInit = { ...currentInit, ...plan.settings }
      graceMs = plan.graceMs
      const errors: Array<string> = []
      let applied = 0
      for (const s of slots) {
        if (s.handle === undefined || !s.listening) continue // a worker starting now gets currentInit
        const answer = Deferred.makeUnsafe<string | undefined>()
        s.reconfigured = answer
        yield* s.handle.send({ _tag: "Reconfigure", settings: plan.settings }).pipe(Effect.ignore)
        const error = yield* Deferred.await(answer).pipe(Effect.timeoutOption("5 seconds"))
        if (error._tag === "None") errors.push(`worker ${s.id} did not answer`)
        else if (error.value !== undefined) errors.push(`worker ${s.id}: ${error.value}`)
        else applied++
      }
      if (errors.length > 0) yield* Effect.logError(`reload incomplete: ${errors.join("; ")}`)
      yield* Effect.logInfo(`configuration reloaded: ${applied} worker${applied === 1 ? "" : "s"} use the new settings for new connections`)
    }).pipe(reloadLock.withPermits(1))

    // The admin endpoint listens before any worker starts, so a bad --admin fails fast; /healthz says
    // "starting" until every worker listens, "draining" from the first shutdown signal.
    let ready = false
    let adminAddress: ListenAddress | undefined
    const health = (): Health => (Deferred.isDoneUnsafe(shutdownRequested) ? "draining" : ready ? "serving" : "starting")
    /** Asks every listening worker for its counters; waits for the answers, at most `FRESH_STATS_MS`. */
    const refreshStats = Effect.gen(function* () {
      const answers: Array<Deferred.Deferred<void>> = []
      const waiting: Array<readonly [Slot, () => void]> = []
      for (const s of slots) {
        if (s.handle === undefined || !s.listening) continue
        const answered = Deferred.makeUnsafe<void>()
        const wake = () => Deferred.doneUnsafe(answered, Exit.void)
        s.statsWaiters.push(wake)
        waiting.push([s, wake])
        answers.push(answered)
        yield* s.handle.send({ _tag: "ReportStats" }).pipe(Effect.ignore)
      }
      yield* Effect.forEach(answers, Deferred.await, { discard: true }).pipe(Effect.timeoutOption(FRESH_STATS_MS))
      // A worker that did not answer in time keeps no waiter of ours (scrapes must not pile up on a stuck one).
      for (const [s, wake] of waiting) {
        const i = s.statsWaiters.indexOf(wake)
        if (i >= 0) s.statsWaiters.splice(i, 1)
      }
    })
    const adminOptions = options.admin
    if (adminOptions !== undefined) {
      // Loaded only when asked for (chunks of their own in dist/): node:http adds ~1.3 MB to the main thread's
      // RSS, and even the /metrics formatter's few KB in main.js left it ~0.8 MB larger (measured).
      const [{ AdminListenError, AdminServer }, { formatMetrics }] = yield* Effect.promise(() =>
        Promise.all([import("./observe/AdminServer.ts"), import("./observe/MetricsText.ts")]),
      )
      const runPromise = Effect.runPromiseWith(yield* Effect.context<never>())
      const admin = new AdminServer({
        address: adminOptions.address,
        allow: AllowList.parse(adminOptions.allow),
        sources: {
          health,
          stats: () => runPromise(refreshStats.pipe(Effect.map(() => adminOptions.statsFigures(snapshot())))),
          metrics: () => runPromise(refreshStats.pipe(Effect.map(() => formatMetrics(metricsInput())))),
        },
      })
      adminAddress = yield* Effect.tryPromise({
        try: () => admin.listen(),
        catch: (e) =>
          new ListenError({
            endpoint: "admin",
            reason: e instanceof AdminListenError ? e.reason : "EUNKNOWN",
            detail: e instanceof AdminListenError ? e.detail : String(e),
            addresses: [adminOptions.address],
          }),
      }).pipe(Effect.tapError(() => Scope.close(scope, Exit.void)))
      // Every worker starts after this: each takes the admin socket for one of its own (never a destination).
      currentInit = { ...currentInit, adminAddress }
      // Closed with the scope, after the drain: it answers (503) through the whole grace period.
      yield* Scope.addFinalizer(
        scope,
        Effect.sync(() => admin.close()),
      )
    }

    if (options.signals !== false) {
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
    }

    // With fixed ports the other workers start at the same time as worker 0 (a thread takes a while to
    // load); with port 0 they must wait for the port worker 0 bound.
    const early: Array<Slot> = []
    const startOthers = (n: number) =>
      Effect.gen(function* () {
        for (let id = 1; id < n; id++) {
          const slot = newSlot(id)
          early.push(slot)
          slot.fiber = yield* superviseSlot(slot).pipe(provide, Effect.forkIn(scope))
        }
      })
    const stopOthers = Effect.gen(function* () {
      for (const s of early.splice(0)) if (s.fiber !== undefined) yield* Fiber.interrupt(s.fiber)
    })
    const parallel = listen.every((a) => a.port !== 0)
    if (parallel) yield* startOthers(options.workers)

    let { slot: slot0, verdict } = yield* startFirst
    if (!verdict.ok && REUSEPORT_UNSUPPORTED.has(verdict.code)) {
      yield* stopOthers
      if (slot0.fiber) yield* Fiber.interrupt(slot0.fiber)
      reusePort = false
      yield* Effect.logWarning(
        `this platform has no SO_REUSEPORT (${verdict.code}), so worker threads cannot share a port: running exactly 1 worker (asked for ${options.workers})`,
      )
      ;({ slot: slot0, verdict } = yield* startFirst)
    }
    if (!verdict.ok) {
      yield* stopOthers
      if (slot0.fiber) yield* Fiber.interrupt(slot0.fiber)
      yield* Scope.close(scope, Exit.void)
      return yield* Effect.fail(new ListenError({ endpoint: "proxy", reason: verdict.code, detail: verdict.message, addresses: listen }))
    }
    // Later workers (and restarts) listen on the ports worker 0 actually bound (port 0 resolved).
    listen = verdict.addresses
    decided = true
    slots.push(slot0)
    // Worker 0's first run is already going; once it ends, the slot is supervised like the others.
    if (slot0.fiber !== undefined) {
      const firstRun = slot0.fiber
      const s0 = slot0
      s0.fiber = yield* Fiber.await(firstRun).pipe(
        Effect.flatMap((exit) =>
          shuttingDown
            ? Effect.void
            : Effect.gen(function* () {
                restarts++
                yield* Effect.logWarning(`worker 0 stopped: ${Exit.isFailure(exit) ? exitReason(exit) : "exited"}; starting a new one`)
                yield* Effect.sleep("200 millis")
                s0.runs = 1
                if (!shuttingDown) yield* superviseSlot(s0)
              }),
        ),
        provide,
        Effect.forkIn(scope),
      )
    }

    const count = reusePort ? options.workers : 1
    if (!parallel || !reusePort) yield* startOthers(count)
    slots.push(...early)
    // Wait (briefly) until every worker listens, so the start-up line is true when printed.
    yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => slots.every((s) => s.listening), times: 500 }))
    ready = true
    yield* options.onReady(listen, count, adminAddress)

    // Periodic stats at debug level.
    const onStatsTick = options.onStatsTick
    if (onStatsTick !== undefined)
      yield* Effect.suspend(() => onStatsTick(snapshot())).pipe(
        Effect.delay(options.init.statsIntervalMs),
        Effect.forever,
        Effect.forkIn(scope),
      )

    yield* Deferred.await(shutdownRequested)
    shuttingDown = true
    if (options.onStopping !== undefined) yield* options.onStopping(graceMs)
    for (const s of slots) {
      if (s.handle !== undefined && s.listening) yield* s.handle.send({ _tag: "Shutdown", graceMs }).pipe(Effect.ignore)
      else if (s.fiber !== undefined) yield* Fiber.interrupt(s.fiber)
    }
    const allDrained = Effect.forEach(slots, (s) => Deferred.await(s.drained), { discard: true })
    const drained = yield* Effect.raceFirst(allDrained.pipe(Effect.as(true)), Deferred.await(forceStop).pipe(Effect.as(false))).pipe(
      Effect.timeoutOption(graceMs + 3000),
      Effect.map((o) => o._tag === "Some" && o.value),
    )
    const final = snapshot()
    yield* Scope.close(scope, Exit.void).pipe(Effect.timeoutOption(6000))
    if (options.onStopped !== undefined) yield* options.onStopped(final)
    if (!drained) return yield* Effect.fail(new DrainTimeout({ graceMs }))
  })

const exitReason = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "exited"
  const text = String(exit.cause)
  const m = /The worker has exited with code: -?\d+/.exec(text)
  if (m !== null) return m[0]
  // The error's own message, first line only: never a stack or a printed Cause.
  const error = Cause.squash(exit.cause)
  const message = error instanceof Error ? error.message : String(error)
  return message.split("\n")[0] ?? message
}
