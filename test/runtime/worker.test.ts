/**
 * The worker thread end to end: spawned with Effect's NodeWorker exactly as the supervisor does,
 * speaking the protocol.ts messages (`Listen` once its runner is up); one CONNECT through it over loopback;
 * ReportStats; Shutdown -> Drained; `Listen` with the settings of a reload it missed while starting.
 */
import { NodeWorker } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Queue } from "effect"
import { WorkerPlatform } from "effect/workers/Worker"
import { Worker } from "node:worker_threads"
import type { Worker as EffectWorker } from "effect/workers/Worker"
import type { FromWorker, LiveSettings, ToWorker } from "../../src/runtime/protocol.ts"
import { requestSlot } from "../../src/runtime/observe/Metrics.ts"
import { baseInit, echoServer, httpServer, rawClient } from "./loopback.ts"

/** What the supervisor sends a thread once its runner is up (supervise/Spawn.ts). */
const listen = (worker: EffectWorker<FromWorker, ToWorker>, settings?: LiveSettings) =>
  worker.send(settings === undefined ? { _tag: "Listen" } : { _tag: "Listen", settings }).pipe(Effect.ignore)

const takeTag = <T extends FromWorker["_tag"]>(queue: Queue.Queue<FromWorker>, tag: T) =>
  Effect.gen(function* () {
    for (;;) {
      const msg = yield* Queue.take(queue)
      if (msg._tag === tag) return msg as Extract<FromWorker, { _tag: T }>
    }
  }).pipe(Effect.timeout("10 seconds"))

const spawnLayer = (init: ReturnType<typeof baseInit>, env: Record<string, string> = {}) =>
  NodeWorker.layer(
    () => new Worker(new URL("../../src/runtime/worker.ts", import.meta.url), { workerData: init, env: { ...process.env, ...env } }),
  )

describe("worker thread", () => {
  it.live("listens, tunnels, reports stats, drains on Shutdown", () =>
    Effect.gen(function* () {
      const echo = yield* Effect.acquireRelease(
        Effect.promise(() => echoServer()),
        (e) => Effect.promise(() => e.close()),
      )
      const worker = yield* (yield* WorkerPlatform).spawn<FromWorker, ToWorker>(7)
      const inbox = yield* Queue.unbounded<FromWorker>()
      yield* Effect.forkScoped(worker.run((msg) => Queue.offer(inbox, msg), { onSpawn: listen(worker) }))

      const listening = yield* takeTag(inbox, "Listening")
      assert.strictEqual(listening.id, 7)
      const port = listening.addresses[0]?.port ?? 0
      assert.isAbove(port, 0)

      yield* Effect.promise(async () => {
        const c = rawClient(port)
        c.socket.write(`CONNECT origin.test:${echo.port} HTTP/1.1\r\nHost: origin.test:${echo.port}\r\n\r\n`)
        await c.waitFor("\r\n\r\n")
        c.socket.write("hello worker")
        await c.waitFor("hello worker")
        c.socket.end()
        await c.waitClose()
      })

      yield* worker.send({ _tag: "ReportStats" })
      const stats = yield* takeTag(inbox, "Stats")
      assert.strictEqual(stats.stats.connectionsAccepted, 1)
      assert.isAbove(stats.stats.bytesFromClients, 0)
      // The /metrics figures ride along: the tunnel is counted, and the event-loop delay was measured.
      assert.strictEqual(stats.metrics?.counters[requestSlot("CONNECT", 200)], 1)
      assert.isAtLeast(stats.metrics?.loopDelay.max ?? -1, 0) // measured (a sample needs 10 ms of loop time, so it may still be 0)

      yield* worker.send({ _tag: "Shutdown", graceMs: 100 })
      const drained = yield* takeTag(inbox, "Drained")
      assert.strictEqual(drained.id, 7)
    }).pipe(Effect.scoped, Effect.provide(spawnLayer(baseInit({ id: 7, logLevel: "none", eventLoopDelay: true })))),
  )

  it.live("reports ListenFailed with the error code when the address is taken, then drains on Shutdown", () =>
    Effect.gen(function* () {
      const taken = yield* Effect.acquireRelease(
        Effect.promise(() => echoServer()),
        (e) => Effect.promise(() => e.close()),
      )
      const init = baseInit({ id: 1, logLevel: "none", listen: [{ host: "127.0.0.1", port: taken.port }] })
      yield* Effect.gen(function* () {
        const worker = yield* (yield* WorkerPlatform).spawn<FromWorker, ToWorker>(1)
        const inbox = yield* Queue.unbounded<FromWorker>()
        yield* Effect.forkScoped(worker.run((msg) => Queue.offer(inbox, msg), { onSpawn: listen(worker) }))
        const failed = yield* takeTag(inbox, "ListenFailed")
        assert.strictEqual(failed.code, "EADDRINUSE")
        yield* worker.send({ _tag: "Shutdown", graceMs: 100 })
        yield* takeTag(inbox, "Drained")
      }).pipe(Effect.provide(spawnLayer(init)))
    }).pipe(Effect.scoped),
  )

  it.live("test hook: a request for crash.hctunnel.invalid ends the thread (HCTUNNEL_TEST_HOOKS=1)", () =>
    Effect.gen(function* () {
      const worker = yield* (yield* WorkerPlatform).spawn<FromWorker, ToWorker>(2)
      const inbox = yield* Queue.unbounded<FromWorker>()
      const running = yield* Effect.forkScoped(Effect.exit(worker.run((msg) => Queue.offer(inbox, msg), { onSpawn: listen(worker) })))
      const port = (yield* takeTag(inbox, "Listening")).addresses[0]?.port ?? 0
      const c = rawClient(port)
      c.socket.write("GET http://crash.hctunnel.invalid/ HTTP/1.1\r\nHost: crash.hctunnel.invalid\r\n\r\n")
      const exit = yield* Fiber.join(running).pipe(Effect.timeout("10 seconds"))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""), "70")
      c.socket.destroy()
    }).pipe(Effect.scoped, Effect.provide(spawnLayer(baseInit({ id: 2, logLevel: "none" }), { HCTUNNEL_TEST_HOOKS: "1" }))),
  )

  const spawnedWith = baseInit({ id: 3, logLevel: "none", via: "spawned-with" })
  it.live("Listen with settings: the thread serves with them from its first connection (docs/reliability.md, F3)", () =>
    Effect.gen(function* () {
      const origin = yield* Effect.acquireRelease(
        Effect.promise(() => httpServer((req, res) => res.end(`via ${req.headers.via}`))),
        (o) => Effect.promise(() => o.close()),
      )
      const reloaded: LiveSettings = {
        limits: spawnedWith.limits,
        via: "reloaded",
        allow: spawnedWith.allow,
        logFormat: spawnedWith.logFormat,
        logLevel: spawnedWith.logLevel,
        authFile: undefined,
      }
      const worker = yield* (yield* WorkerPlatform).spawn<FromWorker, ToWorker>(3)
      const inbox = yield* Queue.unbounded<FromWorker>()
      yield* Effect.forkScoped(worker.run((msg) => Queue.offer(inbox, msg), { onSpawn: listen(worker, reloaded) }))
      const port = (yield* takeTag(inbox, "Listening")).addresses[0]?.port ?? 0
      const text = yield* Effect.promise(async () => {
        const c = rawClient(port)
        c.socket.write(`GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test:${origin.port}\r\nConnection: close\r\n\r\n`)
        await c.waitClose()
        return c.text()
      })
      assert.include(text, "via 1.1 reloaded")
      assert.notInclude(text, "spawned-with")
      yield* worker.send({ _tag: "Shutdown", graceMs: 100 })
      yield* takeTag(inbox, "Drained")
    }).pipe(Effect.scoped, Effect.provide(spawnLayer(spawnedWith))),
  )
})
