/**
 * worker.ts: the entry point of one worker thread.
 *
 * Owns the thread's lifecycle and its side of the main <-> worker protocol (src/runtime/protocol.ts),
 * spoken through Effect's worker runner (`NodeWorkerRunner` + `WorkerRunnerPlatform`), so the main
 * thread must use `NodeWorker` (`effect/workers/Worker` `WorkerPlatform.spawn(id).run(...)`), which adds
 * the runner's framing and handshake.
 *
 * Sequence:
 * 1. `workerData` is the `WorkerInit`. With `init.hooks`, the worker first imports the embedding program's
 *    hooks module (Hooks.ts; one that cannot be loaded is a START_FAILED). It sets up, starts its runner,
 *    and waits for `Listen`: the main thread sends it once the runner is up, with the settings of a reload
 *    that came after this thread was spawned (docs/reliability.md, F3), which it takes before it accepts
 *    anything. Then it listens on every `init.listen` address (`reusePort: init.reusePort`) and sends
 *    `Listening` with the bound addresses (port 0 resolved), or `ListenFailed` with the error code (e.g.
 *    "EADDRINUSE", or START_FAILED with the reason when the worker could not be set up at all, which it
 *    says at once); after `ListenFailed` it accepts nothing and waits for the main thread to close it (a
 *    `Shutdown` is answered `Drained` at once).
 * 2. Every `init.statsIntervalMs` (if > 0) it sends `Stats`; `ReportStats` gets one `Stats` at once.
 * 3. `Reconfigure { settings }` (SIGHUP): requests and tunnels that start afterwards use the new settings
 *    (ProxyServer.reconfigure says what applies when); answered `Reconfigured`.
 * 4. `Shutdown { graceMs }`: stop accepting, let connections finish, abort the rest after graceMs,
 *    then send `Drained` with how many were aborted. A second `Shutdown` (a second signal) may shorten the
 *    grace period. The thread ends when the main thread closes the runner (NodeWorker's scope).
 *
 * Test hook: with HCTUNNEL_TEST_HOOKS=1 in the environment, a request for `crash.hctunnel.invalid`
 * ends this thread with exit code 70 (see ProxyServer), to test the supervisor's restart.
 *
 * The byte path never runs Effect: all of it is in ProxyServer/Connection, plain callbacks.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { WorkerRunnerPlatform } from "effect/workers/WorkerRunner"
import { workerData } from "node:worker_threads"
import { type ListenResult, ProxyServer } from "./ProxyServer.ts"
import { type FromWorker, type LiveSettings, START_FAILED, type ToWorker, type WorkerInit } from "./protocol.ts"
import { AccessLog } from "./observe/AccessLog.ts"
import { emptyStats } from "./observe/Stats.ts"
import { Resolver, resolverOptionsFor } from "./dial/Resolver.ts"
import { loadHooks } from "./Hooks.ts"

const init = workerData as WorkerInit
const ok = <T>(value: T) => ({ ok: true as const, value })
const failed = (error: unknown) => ({ ok: false as const, error })
/** The worker's counters: the Resolver service counts DNS into them, the ProxyServer everything else. */
const stats = emptyStats()

const program = Effect.gen(function* () {
  const runner = yield* (yield* WorkerRunnerPlatform).start<FromWorker, ToWorker>()
  // DNS is a service: the byte path calls its callback form directly (once per origin connection).
  const resolver = yield* Resolver
  // A worker that cannot even be set up (a setting the configuration check let through) reports why in
  // the ListenFailed slot, code START_FAILED, so the supervisor prints this message, not a listen failure.
  // The same for an embedding program's hooks module that cannot be loaded (Hooks.ts says why).
  let server: ProxyServer
  try {
    const hooks = init.hooks === undefined ? undefined : yield* Effect.promise(() => loadHooks(init.hooks as string).then(ok, failed))
    if (hooks !== undefined && !hooks.ok) throw hooks.error
    server = new ProxyServer(init, {
      resolve: resolver.resolveCallback,
      stats,
      testHooks: process.env["HCTUNNEL_TEST_HOOKS"] === "1",
      ...(hooks === undefined ? {} : { hooks: hooks.value }),
    })
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    yield* runner.send(0, { _tag: "ListenFailed", id: init.id, code: START_FAILED, message })
    return yield* runner.run((_port, message) =>
      message._tag === "Shutdown" ? runner.send(0, { _tag: "Drained", id: init.id }) : Effect.void,
    )
  }
  yield* Effect.addFinalizer(() => Effect.sync(() => server.close()))

  // Event-loop delay for /metrics (only with --admin: node:perf_hooks costs RSS in every thread), sampled
  // every 10 ms; reset at every report, so each report covers the time since the previous one.
  const loop =
    init.eventLoopDelay === true ? process.getBuiltinModule("node:perf_hooks").monitorEventLoopDelay({ resolution: 10 }) : undefined
  loop?.enable()
  yield* Effect.addFinalizer(() => Effect.sync(() => loop?.disable()))
  const loopDelay = () => {
    if (loop === undefined) return { p50: 0, p99: 0, max: 0 }
    const seconds = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0)
    const d = { p50: seconds(loop.percentile(50)), p99: seconds(loop.percentile(99)), max: seconds(loop.max) }
    loop.reset()
    return d
  }
  const sendStats = Effect.suspend(() =>
    runner.send(0, { _tag: "Stats", id: init.id, stats: server.snapshot(), metrics: server.metricsSnapshot(loopDelay()) }),
  )

  // The runner first (the main thread's `Listen` comes through it); it returns when the main thread closes it.
  const listenOrder = Deferred.makeUnsafe<LiveSettings | undefined>()
  const handling = yield* Effect.forkScoped(
    runner.run((_port, message) => {
      switch (message._tag) {
        case "Listen":
          Deferred.doneUnsafe(listenOrder, Exit.succeed(message.settings))
          return Effect.void
        case "Shutdown":
          return Effect.callback<number>((resume) => {
            server.shutdown(message.graceMs, (cut) => resume(Effect.succeed(cut)))
          }).pipe(
            Effect.tap(() => sendStats),
            Effect.flatMap((cut) => runner.send(0, { _tag: "Drained", id: init.id, cut })),
          )
        case "ReportStats":
          return sendStats
        case "Reconfigure": {
          let error: string | undefined
          try {
            server.reconfigure(message.settings)
          } catch (e) {
            error = e instanceof Error ? e.message : String(e)
          }
          return runner.send(0, { _tag: "Reconfigured", id: init.id, ...(error === undefined ? {} : { error }) })
        }
      }
    }),
  )
  const order = yield* Effect.raceFirst(
    Deferred.await(listenOrder).pipe(Effect.map((settings) => ({ settings }))),
    Fiber.join(handling).pipe(Effect.as(undefined)),
  )
  if (order === undefined) return // closed before it was told to listen

  // A reload came while this thread was starting: its settings before the first connection.
  if (order.settings !== undefined) {
    try {
      server.reconfigure(order.settings)
    } catch (e) {
      const message = `the reloaded settings: ${e instanceof Error ? e.message : String(e)}`
      yield* runner.send(0, { _tag: "ListenFailed", id: init.id, code: START_FAILED, message })
      return yield* Fiber.join(handling)
    }
  }
  const listened = yield* Effect.callback<ListenResult>((resume) => {
    server.listen((result) => resume(Effect.succeed(result)))
  })
  if (listened.ok) {
    yield* runner.send(0, { _tag: "Listening", id: init.id, addresses: listened.addresses })
  } else {
    server.log.message("error", `cannot listen: ${listened.message}`)
    yield* runner.send(0, { _tag: "ListenFailed", id: init.id, code: listened.code, message: listened.message })
  }
  if (listened.ok && init.statsIntervalMs > 0) {
    yield* Effect.forkScoped(sendStats.pipe(Effect.delay(init.statsIntervalMs), Effect.repeat(Schedule.spaced(init.statsIntervalMs))))
  }
  yield* Fiber.join(handling)
}).pipe(
  Effect.scoped,
  Effect.provide(NodeWorkerRunner.layer),
  Effect.provide(Resolver.layer(resolverOptionsFor(init, stats))),
  // Anything else that ends the thread is one line in the log, never a (minified) stack: the supervisor
  // logs that the worker stopped and replaces it.
  Effect.tapCause((cause) =>
    Effect.sync(() => {
      if (Cause.hasInterruptsOnly(cause)) return
      const error = Cause.squash(cause)
      const log = new AccessLog({ format: init.logFormat, level: init.logLevel, worker: init.id })
      log.message("error", `worker ${init.id} stopped: ${error instanceof Error ? error.message : String(error)}`)
      log.flush()
    }),
  ),
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
