/**
 * The supervisor against a stand-in worker (fixtures/fake-worker.ts) that speaks protocol.ts:
 * start-up with port 0 resolved for every worker, the reusePort fallback, a listen error, a crashed
 * worker replaced, stats summed, Shutdown -> Drained -> success; a reload (SIGHUP's steps, through the
 * SupervisorControl) that comes while a worker is being replaced.
 */
import { Deferred, Effect, Exit, Logger } from "effect"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { defaultLimits } from "../../src/core/limits.ts"
import { type StatsSnapshot, zeroStats } from "../../src/runtime/observe/Stats.ts"
import type { ListenAddress, LiveSettings } from "../../src/runtime/protocol.ts"
import { reloadedLine } from "../../src/runtime/supervise/Reload.ts"
import { ListenError, type SupervisorControl, supervise } from "../../src/runtime/supervisor.ts"
import { describeListenFailure, formatStatsText, lifecycleLog } from "../../src/cli/wording.ts"

const FAKE = new URL("./fixtures/fake-worker.ts", import.meta.url)

const harness = (
  workers: number,
  hosts: Record<string, string>,
  listen: ReadonlyArray<ListenAddress> = [{ host: "127.0.0.1", port: 0 }],
) => {
  const logs: string[] = []
  const ready: Array<{ addresses: ReadonlyArray<ListenAddress>; workers: number }> = []
  const controls: Array<SupervisorControl> = []
  const stats: StatsSnapshot[] = []
  const stop = Deferred.makeUnsafe<void>()
  const run = supervise(
    {
      init: {
        listen,
        limits: defaultLimits,
        via: "t",
        allow: ["127.0.0.0/8"],
        logFormat: "text",
        logLevel: "none",
        hosts,
        statsIntervalMs: 60_000,
      },
      workers,
      graceMs: 200,
      onReady: (addresses, n, _admin, control) =>
        Effect.sync(() => {
          ready.push({ addresses, workers: n })
          controls.push(control)
        }),
      printStats: (s) => Effect.sync(() => void stats.push(s)),
      ...lifecycleLog,
      workerUrl: FAKE,
      signals: false,
    },
    stop,
  ).pipe(Effect.provide(Logger.layer([Logger.make((o) => void logs.push(String(o.message)))])))
  return { logs, ready, controls, stats, stop, run }
}

const until = async (what: string, f: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe("supervisor", () => {
  it("starts N workers on the port worker 0 bound, then drains them and succeeds", { timeout: 60_000 }, async () => {
    const h = harness(2, { mode: "ok" })
    const done = Effect.runPromiseExit(h.run)
    await until("ready", () => h.ready.length === 1)
    // Worker 0 resolved port 0 to 40000; worker 1 was told 40000 (it would have said 40001 for port 0).
    expect(h.ready[0]).toEqual({ addresses: [{ host: "127.0.0.1", port: 40000 }], workers: 2 })
    Deferred.doneUnsafe(h.stop, Exit.void)
    const exit = await done
    expect(Exit.isSuccess(exit), String(exit)).toBe(true)
    // The final figures are the two workers' last Stats summed: accepted 1 + 2, and 10/1/100 B/1000 B from each.
    const stopped = h.logs.find((l) => l.startsWith("stopped: "))
    expect(stopped).toMatch(
      /^stopped: stats pid=\d+ .* workers=2\/2 restarts=0 live=0 accepted=3 requests=20 tunnels=2 from_clients=200B from_origins=2\.0KiB errors=0 denied=0$/,
    )
  })

  it("without SO_REUSEPORT (ENOTSUP): a one-line notice and exactly one worker", { timeout: 60_000 }, async () => {
    const h = harness(4, { mode: "enotsup" })
    const done = Effect.runPromiseExit(h.run)
    await until("ready", () => h.ready.length === 1)
    expect(h.ready[0]?.workers).toBe(1)
    expect(h.logs.filter((l) => /no SO_REUSEPORT \(ENOTSUP\).*exactly 1 worker \(asked for 4\)/.test(l))).toHaveLength(1)
    Deferred.doneUnsafe(h.stop, Exit.void)
    expect(Exit.isSuccess(await done)).toBe(true)
  })

  it("EADDRINUSE: fails with a ListenError saying what to do", { timeout: 60_000 }, async () => {
    const h = harness(2, { mode: "inuse" }, [{ host: "127.0.0.1", port: 8888 }])
    const exit = await Effect.runPromiseExit(h.run)
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
    expect(error?._tag === "Fail" && error.error).toBeInstanceOf(ListenError)
    expect(error?._tag === "Fail" ? describeListenFailure(error.error as ListenError) : "").toMatch(
      /cannot listen on 127\.0\.0\.1:8888: the address is already in use.*--port or --listen/,
    )
    expect(h.ready).toHaveLength(0)
    // Worker 1 started at the same time (fixed port) and failed the same way: not reported twice.
    expect(h.logs.filter((l) => /stopped/.test(l))).toEqual([])
  })

  it("a worker that dies is logged and replaced, and counted in restarts", { timeout: 60_000 }, async () => {
    const marker = join(mkdtempSync(join(tmpdir(), "hctunnel-sup-")), "crashed")
    const h = harness(2, { mode: "crash1", marker })
    const done = Effect.runPromiseExit(h.run)
    await until("ready", () => h.ready.length === 1)
    await until("the replacement", () => h.logs.some((l) => /worker 1 replaced: listening again/.test(l)))
    expect(h.logs.some((l) => /worker 1 stopped: .*exited with code: 70.*starting a new one/.test(l))).toBe(true)
    Deferred.doneUnsafe(h.stop, Exit.void)
    expect(Exit.isSuccess(await done)).toBe(true)
    expect(h.logs.join("\n")).toMatch(/restarts=1/)
  })

  it("a worker killed by an uncaught exception is logged with that exception's message (docs/reliability.md, F5)", {
    timeout: 60_000,
  }, async () => {
    const marker = join(mkdtempSync(join(tmpdir(), "hctunnel-sup-")), "crashed")
    const h = harness(2, { mode: "throw1", marker })
    const done = Effect.runPromiseExit(h.run)
    await until("ready", () => h.ready.length === 1)
    await until("the replacement", () => h.logs.some((l) => /worker 1 replaced: listening again/.test(l)))
    expect(h.logs.filter((l) => /stopped/.test(l))).toEqual([
      "worker 1 stopped: uncaught TypeError: cannot read the fake's state; starting a new one",
    ])
    Deferred.doneUnsafe(h.stop, Exit.void)
    expect(Exit.isSuccess(await done)).toBe(true)
  })

  it("a reload while a worker is being replaced: the new thread listens with the reloaded settings (docs/reliability.md, F3)", {
    timeout: 60_000,
  }, async () => {
    const marker = join(mkdtempSync(join(tmpdir(), "hctunnel-sup-")), "crashed")
    const reloaded: LiveSettings = {
      limits: defaultLimits,
      via: "reloaded",
      allow: ["127.0.0.0/8"],
      logFormat: "text",
      logLevel: "none",
      authFile: undefined,
    }
    const h = harness(2, { mode: "hold1", marker })
    const done = Effect.runPromiseExit(h.run)
    await until("ready", () => h.ready.length === 1)
    // Worker 1's first thread crashed; its replacement was spawned (with the settings of then) and is loading.
    await until("the replacement loading", () => existsSync(`${marker}.loading`))
    const outcome = await Effect.runPromise(h.controls[0]!.reload({ settings: reloaded, graceMs: 200 }))
    expect(outcome).toEqual({ applied: 1, starting: 1, errors: [] })
    expect(h.logs.filter((l) => /reload/.test(l))).toEqual([
      "configuration reloaded: 2 workers use the new settings for new requests (1 starting with them)",
    ])
    writeFileSync(`${marker}.go`, "")
    await until("the replacement", () => h.logs.some((l) => /worker 1 replaced: listening again/.test(l)))
    expect(readFileSync(`${marker}.via0`, "latin1")).toBe("reloaded")
    expect(readFileSync(`${marker}.via1`, "latin1")).toBe("reloaded")
    Deferred.doneUnsafe(h.stop, Exit.void)
    expect(Exit.isSuccess(await done)).toBe(true)
  })

  it("words the reload's confirmation for one worker and for several (docs/reliability.md, F4)", () => {
    expect(reloadedLine(1, 0)).toBe("configuration reloaded: 1 worker uses the new settings for new requests")
    expect(reloadedLine(2, 0)).toBe("configuration reloaded: 2 workers use the new settings for new requests")
    expect(reloadedLine(1, 1)).toBe("configuration reloaded: 2 workers use the new settings for new requests (1 starting with them)")
    expect(reloadedLine(0, 1)).toBe("configuration reloaded: 1 worker uses the new settings for new requests (1 starting with them)")
  })

  it("formats the stats line", () => {
    const line = formatStatsText({
      pid: 42,
      uptimeMs: 3_723_000,
      cpuUserMs: 1500,
      cpuSystemMs: 500,
      rssBytes: 50 * 1024 * 1024,
      workers: 2,
      workersRunning: 2,
      restarts: 0,
      totals: {
        ...zeroStats,
        connectionsAccepted: 5,
        connectionsLive: 1,
        requests: 4,
        tunnels: 1,
        bytesFromClients: 2048,
        bytesFromOrigins: 3 * 1024 * 1024,
        errors: 0,
        deniedSelf: 1,
        deniedRule: 2,
        deniedRange: 3,
        deniedPort: 4,
      },
    })
    expect(line).toBe(
      "stats pid=42 uptime=1h2m3s cpu=2.00s (user 1.50s sys 0.50s) rss=50.0MiB workers=2/2 restarts=0 live=1 accepted=5 requests=4 tunnels=1 from_clients=2.0KiB from_origins=3.0MiB errors=0 denied=10",
    )
  })
})
