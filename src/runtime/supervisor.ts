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
 *     `ListenFailed` otherwise (EADDRINUSE, EACCES...) -> `ListenError`, the caller prints it and exits 1.
 * - Stats: each worker pushes `Stats` every statsInterval; the supervisor keeps the latest per worker
 *   plus the totals of workers that died, prints one line on SIGUSR1, and logs it at debug level.
 * - Shutdown (first SIGINT/SIGTERM): no more restarts; `Shutdown { graceMs }` to every listening
 *   worker; wait for every `Drained` (bounded by grace + margin); then close the threads. A second
 *   signal stops waiting. The returned effect succeeds on a clean drain and fails with
 *   `DrainTimeout` otherwise, so the caller can choose the exit code.
 *
 * It never touches client sockets: the byte path lives entirely in the workers.
 */
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { WorkerPlatform, type Worker as EffectWorker } from "effect/workers/Worker"
import { Worker } from "node:worker_threads"
import { type FromWorker, type ListenAddress, type ToWorker, type WorkerInit, type WorkerStats, zeroStats } from "./protocol.ts"
import { VerifierHub } from "./VerifierHub.ts"

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
  /** Called once when every worker listens, with the bound addresses and the number of workers. */
  readonly onReady: (addresses: ReadonlyArray<ListenAddress>, workers: number) => Effect.Effect<void>
  /** Prints the SIGUSR1 stats line (always shown, whatever the log level). */
  readonly printStats: (line: StatsSnapshot) => Effect.Effect<void>
  /** The worker module; default `./worker.ts` or `./worker.js` beside this file. */
  readonly workerUrl?: URL
  /** Install SIGINT/SIGTERM/SIGUSR1 handlers (default true; tests pass false and use `stop`). */
  readonly signals?: boolean
}

/** The platform cannot listen: bad address, port in use, no permission... */
export class ListenError extends Error {
  readonly _tag = "ListenError"
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

/** Some workers did not report Drained within grace + margin. */
export class DrainTimeout extends Error {
  readonly _tag = "DrainTimeout"
}

export interface StatsSnapshot {
  readonly pid: number
  readonly uptimeMs: number
  /** CPU time of the whole process (all threads), user + system, in ms. */
  readonly cpuUserMs: number
  readonly cpuSystemMs: number
  readonly rssBytes: number
  readonly workers: number
  readonly workersRunning: number
  readonly restarts: number
  readonly totals: WorkerStats
}

/** Where worker.ts is: `.ts` beside this file in development (`node src/cli.ts`), `.js` in dist. */
export const defaultWorkerUrl = (): URL =>
  new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url)

/** Error codes Node/libuv use when SO_REUSEPORT is not available (macOS, Windows: UV_ENOTSUP). */
export const REUSEPORT_UNSUPPORTED = new Set(["ENOTSUP", "EOPNOTSUPP", "ERR_SOCKET_REUSEPORT_UNSUPPORTED"])


const addStats = (a: WorkerStats, b: WorkerStats): WorkerStats => ({
  connectionsAccepted: a.connectionsAccepted + b.connectionsAccepted,
  connectionsLive: a.connectionsLive + b.connectionsLive,
  requests: a.requests + b.requests,
  tunnels: a.tunnels + b.tunnels,
  bytesFromClients: a.bytesFromClients + b.bytesFromClients,
  bytesFromOrigins: a.bytesFromOrigins + b.bytesFromOrigins,
  errors: a.errors + b.errors,
  authOk: a.authOk + b.authOk,
  authCached: a.authCached + b.authCached,
  authFailed: a.authFailed + b.authFailed,
  authRateLimited: a.authRateLimited + b.authRateLimited,
  authVerifications: a.authVerifications + b.authVerifications,
})

/** A listen failure in words a person can act on. */
export const describeListenFailure = (code: string, message: string, addresses: ReadonlyArray<ListenAddress>): string => {
  const where = addresses.map((a) => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)).join(", ")
  switch (code) {
    case "EADDRINUSE":
      return `cannot listen on ${where}: the address is already in use (is another hctunnel or proxy running?). Stop it, or choose another port with --port or --listen.`
    case "EACCES":
    case "EPERM":
      return `cannot listen on ${where}: permission denied. Ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port such as 8888.`
    case "EADDRNOTAVAIL":
      return `cannot listen on ${where}: that address does not belong to this machine. Use 127.0.0.1, 0.0.0.0, ::1, :: or one of this machine's addresses.`
    default:
      return `cannot listen on ${where}: ${message} (${code})`
  }
}

interface Slot {
  readonly id: number
  handle: EffectWorker<FromWorker, ToWorker> | undefined
  listening: boolean
  drained: Deferred.Deferred<void>
  stats: WorkerStats
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** How many of this slot's threads have reported Listening. */
  runs: number
}

/** A worker run that ended because the worker reported ListenFailed. */
class WorkerListenFailed extends Error {
  readonly _tag = "WorkerListenFailed"
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

const restartSchedule = Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("10 seconds")])

/**
 * Runs the workers until SIGINT/SIGTERM (or until `stop` completes, for tests), then drains them.
 * Fails with ListenError if the first worker cannot listen, DrainTimeout if draining overran.
 */
export const supervise = (
  options: SupervisorOptions,
  stop?: Deferred.Deferred<void>,
): Effect.Effect<void, ListenError | DrainTimeout> =>
  Effect.gen(function*() {
    const startedAt = Date.now()
    const workerUrl = options.workerUrl ?? defaultWorkerUrl()
    let reusePort = true
    let listen: ReadonlyArray<ListenAddress> = options.init.listen
    let shuttingDown = false
    /** Set once worker 0 listens: from then on a worker failure is logged and counted. */
    let decided = false
    let restarts = 0
    let retired: WorkerStats = zeroStats
    const slots: Array<Slot> = []

    // Proxy authentication: one bcrypt verifier thread for the process; each worker gets a port to it.
    const logError = Effect.runForkWith(yield* Effect.context<never>())
    const verifiers = options.init.authFile === undefined
      ? undefined
      : new VerifierHub({ onError: (message) => void logError(Effect.logError(`proxy authentication: ${message}`)) })
    const spawner = (id: number) => {
      const verifierPort = verifiers?.connect()
      return new Worker(workerUrl, {
        workerData: { ...options.init, id, reusePort, listen, ...(verifierPort === undefined ? {} : { verifierPort }) } satisfies WorkerInit,
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
    if (verifiers !== undefined) yield* Scope.addFinalizer(scope, Effect.sync(() => verifiers.close()))

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

    /** The first report of a worker run: Listening or ListenFailed. */
    type First = { readonly ok: true; readonly addresses: ReadonlyArray<ListenAddress> } | { readonly ok: false; readonly code: string; readonly message: string }

    /** One run of one worker thread: spawn, handle its messages, fail when it ends. */
    const runOnce = (slot: Slot, first: Deferred.Deferred<First> | undefined) =>
      Effect.gen(function*() {
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
              return slot.runs > 1 ? Effect.logInfo(`worker ${slot.id} replaced: listening again`) : Effect.logDebug(`worker ${slot.id} listening`)
            case "ListenFailed":
              if (first !== undefined) {
                return Deferred.succeed(first, { ok: false, code: msg.code, message: msg.message }).pipe(Effect.asVoid)
              }
              return Effect.fail(new WorkerListenFailed(msg.code, msg.message))
            case "Stats":
              slot.stats = msg.stats
              return Effect.void
            case "Drained":
              return Deferred.succeed(slot.drained, undefined).pipe(Effect.asVoid)
          }
        })
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            // The thread is gone: keep what it counted, forget its live connections.
            retired = addStats(retired, { ...slot.stats, connectionsLive: 0 })
            slot.stats = zeroStats
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
          const why = e instanceof WorkerListenFailed ? `cannot listen (${e.code}: ${e.message})` : e.message
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
    })

    const provide = <A, E>(eff: Effect.Effect<A, E, WorkerPlatform | import("effect/workers/Worker").Spawner>) =>
      Effect.provide(eff, platformLayer)

    /** Start worker 0 and wait for its verdict. Its slot keeps running (supervised) when it listens. */
    const startFirst = Effect.gen(function*() {
      const slot = newSlot(0)
      const first = yield* Deferred.make<First>()
      // The first run reports its verdict; if the thread dies before saying anything, that is a failure too.
      const fiber = yield* runOnce(slot, first).pipe(
        provide,
        Effect.onExit((exit) =>
          Deferred.succeed(first, { ok: false, code: "EXITED", message: Exit.isFailure(exit) ? String(exit.cause) : "exited" }),
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
    const onStop = () => {
      if (Deferred.isDoneUnsafe(shutdownRequested)) Deferred.doneUnsafe(forceStop, Exit.void)
      else Deferred.doneUnsafe(shutdownRequested, Exit.void)
    }
    const reportStats = Effect.gen(function*() {
      for (const s of slots) if (s.handle && s.listening) yield* s.handle.send({ _tag: "ReportStats" }).pipe(Effect.ignore)
      yield* Effect.sleep("100 millis")
      yield* options.printStats(snapshot())
    })
    if (options.signals !== false) {
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.on("SIGUSR1", onUsr1)
          process.on("SIGINT", onStop)
          process.on("SIGTERM", onStop)
        }),
        () =>
          Effect.sync(() => {
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
      Effect.gen(function*() {
        for (let id = 1; id < n; id++) {
          const slot = newSlot(id)
          early.push(slot)
          slot.fiber = yield* superviseSlot(slot).pipe(provide, Effect.forkIn(scope))
        }
      })
    const stopOthers = Effect.gen(function*() {
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
      return yield* Effect.fail(new ListenError(verdict.code, describeListenFailure(verdict.code, verdict.message, listen)))
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
          shuttingDown ? Effect.void : Effect.gen(function*() {
            restarts++
            yield* Effect.logWarning(`worker 0 stopped: ${Exit.isFailure(exit) ? exitReason(exit) : "exited"}; starting a new one`)
            yield* Effect.sleep("200 millis")
            s0.runs = 1
            if (!shuttingDown) yield* superviseSlot(s0)
          })
        ),
        provide,
        Effect.forkIn(scope),
      )
    }

    const count = reusePort ? options.workers : 1
    if (!parallel || !reusePort) yield* startOthers(count)
    slots.push(...early)
    // Wait (briefly) until every worker listens, so the start-up line is true when printed.
    yield* Effect.sleep("20 millis").pipe(
      Effect.repeat({ until: () => slots.every((s) => s.listening), times: 500 }),
    )
    yield* options.onReady(listen, count)

    // Periodic stats at debug level.
    yield* Effect.suspend(() => Effect.logDebug(formatStatsText(snapshot()))).pipe(
      Effect.delay(options.init.statsIntervalMs),
      Effect.forever,
      Effect.forkIn(scope),
    )

    yield* Deferred.await(shutdownRequested)
    shuttingDown = true
    yield* Effect.logInfo(`shutting down: letting live connections finish for up to ${options.graceMs} ms`)
    for (const s of slots) {
      if (s.handle !== undefined && s.listening) yield* s.handle.send({ _tag: "Shutdown", graceMs: options.graceMs }).pipe(Effect.ignore)
      else if (s.fiber !== undefined) yield* Fiber.interrupt(s.fiber)
    }
    const allDrained = Effect.forEach(slots, (s) => Deferred.await(s.drained), { discard: true })
    const drained = yield* Effect.raceFirst(
      allDrained.pipe(Effect.as(true)),
      Deferred.await(forceStop).pipe(Effect.as(false)),
    ).pipe(
      Effect.timeoutOption(options.graceMs + 3000),
      Effect.map((o) => o._tag === "Some" && o.value),
    )
    const final = snapshot()
    yield* Scope.close(scope, Exit.void).pipe(Effect.timeoutOption(6000))
    yield* Effect.logInfo(`stopped: ${formatStatsText(final)}`)
    if (!drained) {
      return yield* Effect.fail(new DrainTimeout(`some connections did not finish within the grace period of ${options.graceMs} ms; they were closed`))
    }
  })

const exitReason = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "exited"
  const text = String(exit.cause)
  const m = /The worker has exited with code: -?\d+/.exec(text)
  return m === null ? text.split("\n")[0] ?? text : m[0]
}

const mib = (n: number): string => (n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)}MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)}KiB` : `${n}B`)

export const formatUptime = (ms: number): string => {
  const s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  return d > 0 ? `${d}d${h}h${m}m` : h > 0 ? `${h}h${m}m${s % 60}s` : m > 0 ? `${m}m${s % 60}s` : `${s}s`
}

/** One line: `stats pid=... uptime=... cpu=...` */
export const formatStatsText = (s: StatsSnapshot): string =>
  `stats pid=${s.pid} uptime=${formatUptime(s.uptimeMs)} cpu=${((s.cpuUserMs + s.cpuSystemMs) / 1000).toFixed(2)}s` +
  ` (user ${(s.cpuUserMs / 1000).toFixed(2)}s sys ${(s.cpuSystemMs / 1000).toFixed(2)}s) rss=${mib(s.rssBytes)}` +
  ` workers=${s.workersRunning}/${s.workers} restarts=${s.restarts} live=${s.totals.connectionsLive}` +
  ` accepted=${s.totals.connectionsAccepted} requests=${s.totals.requests} tunnels=${s.totals.tunnels}` +
  ` from_clients=${mib(s.totals.bytesFromClients)} from_origins=${mib(s.totals.bytesFromOrigins)} errors=${s.totals.errors}` +
  (s.totals.authOk + s.totals.authFailed === 0 ? "" : ` auth_ok=${s.totals.authOk} auth_cached=${s.totals.authCached} auth_failed=${s.totals.authFailed} auth_rate_limited=${s.totals.authRateLimited} auth_verifications=${s.totals.authVerifications}`)
