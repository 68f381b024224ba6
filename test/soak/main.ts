/**
 * `npm run soak -- --seconds N [--json FILE] [--seed S] [--rate MB/s]`: hctunnel under hours (or minutes) of
 * mixed load with faults injected, then the accounting: nothing corrupted, nothing unexpected, nothing
 * leaked. docs/reliability.md describes what runs and what is expected; this file only wires it together:
 *
 *   env/       the proxy (built dist/cli.js, 2 workers, config + users files, admin, inspector), DNS, files
 *   origins/   well-behaved, misbehaving and flaky origins, and the stream protocol of tunnels
 *   load/      the operations: HTTP sessions, tunnels, misbehaving clients, fault-dependent requests
 *   faults/    reloads, users file changes, DNS silence, fd pressure, a worker ended abruptly
 *   report/    the ledger of verdicts and fault windows, progress lines, summary and JSON
 *
 * It is bounded: the load stops after N seconds, every operation has a timeout, the settle is bounded, and
 * the proxy is stopped (SIGKILL after a bound). Exit 0 only when clean; 1 when not; 2 when it could not run.
 */
import { randomInt } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { startDns } from "./env/Dns.ts"
import { bcryptLine, basic, configText, PASSWORDS, replaceFile } from "./env/Files.ts"
import { Inspector } from "./env/Inspector.ts"
import { freePort, ProxyProcess } from "./env/Proxy.ts"
import { Faults } from "./faults/Faults.ts"
import { type Env, sleep } from "./load/Client.ts"
import * as faulty from "./load/faulty.ts"
import { httpSession } from "./load/http.ts"
import * as mis from "./load/misbehaving.ts"
import { abortMidTunnel, tunnel, upgrade } from "./load/tunnels.ts"
import { badOrigin, flakyOrigin } from "./origins/bad.ts"
import { goodOrigin } from "./origins/good.ts"
import { listen, Verdicts } from "./origins/serve.ts"
import { serveStream } from "./origins/stream.ts"
import { Ledger } from "./report/Ledger.ts"
import { type Final, isClean, jsonReport, progressLine, rssSlope, type Sample, summary } from "./report/Report.ts"
import { DataPool, Rng } from "./rng.ts"
import { Reader } from "./wire/Reader.ts"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const WORKERS = 2
/** The proxy's open-files limit: the fd phase fills it to just under its pause point. */
const OPEN_FILES = 2048
/**
 * Open fds may differ from the start by this much and still count as "back": the bcrypt verifier thread
 * (started when first needed, stopped after 30 s idle) has an event loop of its own (an epoll fd, eventfds),
 * and each worker's c-ares resolver keeps a UDP socket or two that a restarted worker may not have opened yet.
 */
const FD_SLACK = 8
/** RSS growth allowed after the first minute (issue 18), judged only on runs of at least 180 s. */
const RSS_SLOPE_LIMIT = 2

interface Options {
  readonly seconds: number
  readonly json: string | undefined
  readonly seed: number
  readonly rateMb: number
}

const parseArgs = (argv: ReadonlyArray<string>): Options => {
  const o = { seconds: 600, json: undefined as string | undefined, seed: randomInt(1, 2 ** 31), rateMb: 16 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) usage(`${a} needs a value`)
      return v!
    }
    const number = (name: string, min: number, max: number): number => {
      const v = Number(value())
      if (!Number.isInteger(v) || v < min || v > max) usage(`${name} must be an integer from ${min} to ${max}`)
      return v
    }
    if (a === "--seconds") o.seconds = number("--seconds", 60, 7 * 24 * 3600)
    else if (a === "--json") o.json = value()
    else if (a === "--seed") o.seed = number("--seed", 0, 2 ** 31)
    else if (a === "--rate") o.rateMb = number("--rate", 1, 1000)
    else if (a === "--help" || a === "-h") usage()
    else usage(`unknown argument ${a}`)
  }
  return o
}

function usage(problem?: string): never {
  const text = "usage: npm run soak -- [--seconds N (default 600)] [--json FILE] [--seed S] [--rate MB/s (bulk data, default 16)]"
  if (problem !== undefined) {
    console.error(`soak: ${problem}\n${text}`)
    process.exit(2)
  }
  console.log(text)
  process.exit(0)
}

/** A pacer shared by every large stream: at most `bytesPerSecond`, in bursts of at most 50 ms. */
const pacer = (bytesPerSecond: number) => {
  let next = performance.now()
  return async (n: number): Promise<void> => {
    const t = performance.now()
    next = Math.max(next, t - 50) + (n / bytesPerSecond) * 1000
    if (next > t) await sleep(next - t)
  }
}

const main = async (): Promise<number> => {
  const opts = parseArgs(process.argv.slice(2))
  const replay = `npm run soak -- --seconds ${opts.seconds} --seed ${opts.seed}${opts.rateMb === 16 ? "" : ` --rate ${opts.rateMb}`}`
  console.log(`soak: seed ${opts.seed}, ${opts.seconds} s (replay: ${replay})`)
  const dir = mkdtempSync(join(tmpdir(), "hctunnel-soak-"))
  const ledger = new Ledger()
  const pool = new DataPool(opts.seed)
  const verdicts = new Verdicts()
  const pace = pacer(opts.rateMb * 1e6)
  const ctx = { pool, ledger, verdicts, seed: opts.seed, pace }
  const cleanup: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })]
  try {
    // Origins, DNS, files.
    const good = await listen(4, goodOrigin(ctx))
    const streams = await listen(1, (s) => void serveStream(ctx, s, new Reader(s)))
    const bad = await listen(1, badOrigin(ctx))
    const flakyCounts = { closedOnReuse: 0 }
    const flaky = await listen(1, flakyOrigin(ctx, flakyCounts))
    cleanup.push(
      () => good.close(),
      () => streams.close(),
      () => bad.close(),
      () => flaky.close(),
    )
    const shortTtl = ["s1.soak.test", "s2.soak.test", "s3.soak.test"]
    const dns = await startDns(new Map([["cached.soak.test", 3600], ...shortTtl.map((n) => [n, 1] as const)]))
    cleanup.push(() => dns.close())
    const [g, denyAll, denyA, denyB] = good.ports as [number, number, number, number]
    const ports = {
      good: g,
      stream: streams.ports[0]!,
      bad: bad.ports[0]!,
      flaky: flaky.ports[0]!,
      denyAll,
      denyA,
      denyB,
      closed: await freePort(),
    }
    const configFile = join(dir, "hctunnel.json")
    const usersFile = join(dir, "users")
    writeFileSync(configFile, configText("a", ports))
    const alice = [await bcryptLine("alice", PASSWORDS.alice), await bcryptLine("alice", PASSWORDS.alice)]
    const carol = await bcryptLine("carol", PASSWORDS.carol)
    replaceFile(usersFile, `${alice[0]!.line}\n${carol.line}\n`)

    // The proxy, and the inspector attached to its workers.
    const proxy = await ProxyProcess.start({
      cli: resolve(ROOT, "dist/cli.js"),
      port: await freePort(),
      configFile,
      usersFile,
      dnsServer: dns.address,
      workers: WORKERS,
      openFilesLimit: OPEN_FILES,
    })
    cleanup.push(async () => void (await proxy.stop(5000)))
    const inspector = await Inspector.connect(proxy.inspectorUrl)
    cleanup.push(() => inspector.close())
    for (let i = 0; i < 200 && inspector.proxyWorkers().length < WORKERS; i++) await sleep(50)
    if (inspector.proxyWorkers().length < WORKERS) throw new Error(`the inspector sees workers ${inspector.proxyWorkers().join(", ")}`)
    proxy.onEveryLine((line) => {
      if (!/^(ERROR|WARN) /.test(line)) return
      if (/reload rejected, the running configuration stays/.test(line)) return
      if (/worker \d+ stopped/.test(line) && ledger.overlapsKill(performance.now(), performance.now())) return
      ledger.record("proxy log", "unexpected", line)
    })

    let ids = 0
    const baseEnv = {
      proxyPort: proxy.port,
      pool,
      ledger,
      verdicts,
      alice: basic("alice", PASSWORDS.alice),
      carol: basic("carol", PASSWORDS.carol),
      ports,
      names: { cached: "cached.soak.test", shortTtl },
      pace,
      nextId: () => `op${++ids}`,
      stopping: () => stopping,
    }
    const envFor = (stream: number): Env => ({ ...baseEnv, rng: new Rng(opts.seed, stream), stage: { now: "" } })

    // Warm up (one request per worker, a verification included), let pooled sockets close, then the baseline.
    const warm = envFor(999)
    for (let i = 0; i < 4; i++) await ledger.op("warm-up", 20_000, (signal) => faulty.unauthenticated(warm, signal))
    await sleep(3000)
    const fdsStart = proxy.fds()
    const rssStartMb = proxy.rssMb()
    const samples: Array<Sample> = [{ t: ledger.elapsed() / 1000, rssMb: rssStartMb, fds: fdsStart }]
    console.log(
      `soak: proxy pid ${proxy.pid} on 127.0.0.1:${proxy.port}, ${fdsStart} fds, ${rssStartMb.toFixed(1)} MB RSS; users file by ${alice[0]!.by}`,
    )

    // Samplers: RSS and fds every 5 s, a progress line every 10 s.
    const last = { ops: 0, t: ledger.elapsed() / 1000 }
    const sampler = setInterval(() => {
      try {
        samples.push({ t: Math.round(ledger.elapsed() / 100) / 10, rssMb: Math.round(proxy.rssMb() * 10) / 10, fds: proxy.fds() })
      } catch {
        // The proxy is gone: the end checks say so.
      }
    }, 5000)
    const progress = setInterval(() => {
      void proxy
        .stats()
        .then(
          (s) => s["connectionsLive"],
          () => undefined,
        )
        .then((live) => console.log(progressLine(ledger, last, samples.at(-1), live)))
    }, 10_000)
    cleanup.push(
      () => clearInterval(sampler),
      () => clearInterval(progress),
    )

    // The load.
    let stopping = false
    const loadStart = performance.now()
    const lane = async (
      stream: number,
      timeoutMs: number,
      pick: (rng: Rng) => readonly [string, (env: Env, signal: AbortSignal) => Promise<void>],
    ) => {
      const env = envFor(stream)
      while (!stopping) {
        const [kind, run] = pick(env.rng)
        env.stage.now = ""
        await ledger.op(
          kind,
          timeoutMs,
          (signal) => run(env, signal),
          () => env.stage.now,
        )
      }
    }
    type Op = readonly [string, (env: Env, signal: AbortSignal) => Promise<void>]
    const misc: ReadonlyArray<readonly [number, Op]> = [
      [4, ["abort mid-head", mis.abortMidHead]],
      [4, ["abort mid-body", mis.abortMidBody]],
      [3, ["paused reader", mis.neverReads]],
      [5, ["half-close after request", mis.halfCloseAfterRequest]],
      [5, ["garbage head", mis.garbageHead]],
      [3, ["oversized head", mis.oversizedHead]],
      [4, ["origin reset before head", faulty.originResetBefore]],
      [4, ["origin reset mid-body", faulty.originResetMid]],
      [4, ["origin stray bytes", faulty.originStray]],
      [5, ["origin closes on reuse", faulty.originCloseOnReuse]],
      [6, ["unauthenticated", faulty.unauthenticated]],
      [3, ["wrong password", faulty.wrongPassword]],
      [4, ["carol", faulty.carol]],
      [6, ["denied destination", faulty.denied]],
      [3, ["refused port", faulty.refusedPort]],
      [8, ["names", faulty.names]],
      [5, ["upgrade", (env, signal) => upgrade(env, signal)]],
      [3, ["abort mid-tunnel", abortMidTunnel]],
    ]
    const slow: ReadonlyArray<readonly [number, Op]> = [
      [2, ["slowloris", mis.slowloris]],
      [2, ["origin stalls before head", faulty.originStallHead]],
      [2, ["origin stalls mid-body", faulty.originStallMid]],
      [1, ["idle keep-alive client", mis.idleKeepAlive]],
    ]
    const lanes = [
      lane(1, 120_000, () => ["bulk tunnel", (env, signal) => tunnel(env, signal, true)]),
      lane(2, 120_000, () => ["bulk tunnel", (env, signal) => tunnel(env, signal, true)]),
      lane(3, 60_000, (rng) =>
        rng.chance(0.8) ? ["small tunnel", (env, signal) => tunnel(env, signal, false)] : ["http session", httpSession],
      ),
      lane(4, 60_000, () => ["http session", httpSession]),
      lane(5, 60_000, () => ["http session", httpSession]),
      lane(6, 60_000, () => ["http session", httpSession]),
      lane(7, 40_000, (rng) => rng.weighted(misc)),
      lane(8, 40_000, (rng) => rng.weighted(misc)),
      lane(9, 60_000, (rng) => rng.weighted(slow)),
      lane(10, 60_000, (rng) => rng.weighted(slow)),
    ]

    // The faults, on a timeline (seconds from the start of the load) of 15 s cycles: a reload at +0, the
    // users file every other cycle at +5, a broken reload every fourth at +7.5, a worker ended at +10 (when
    // the exclusive track below gets there), so that no two of them have to be told apart.
    const faults = new Faults({
      proxy,
      inspector,
      ledger,
      env: envFor(500),
      configFile,
      usersFile,
      ports,
      users: { alice: alice.map((a) => a.line), carol: carol.line },
      dns: { silence: () => void (dns.silent = true), answer: () => void (dns.silent = false) },
      workers: WORKERS,
      openFilesLimit: OPEN_FILES,
    })
    const S = opts.seconds
    const timeline: Array<readonly [number, () => Promise<void>]> = []
    for (let t = 15, k = 0; t < S - 5; t += 15, k++) {
      timeline.push([t, () => faults.reload()])
      if (k % 4 === 1 && t + 7.5 < S - 5) timeline.push([t + 7.5, () => faults.brokenReload()])
    }
    for (let t = 20; t < S - 5; t += 30) timeline.push([t, () => faults.changeUsers()])
    // The faults that change what many answers may be run one after another, never overlapping: each one's
    // window then excuses or explains only its own effects. One round per 300 s (at least one).
    const phase = S >= 150 ? 20_000 : 10_000
    const rounds = Math.max(1, Math.floor(S / 300))
    const gap = S >= 150 ? 5000 : 3000
    const sinceStart = (): number => performance.now() - loadStart
    const exclusive = async (): Promise<void> => {
      for (let round = 0; round < rounds && !stopping; round++) {
        await sleep(Math.max(0, ((round + (S >= 150 ? 0.2 : 0.1)) * S * 1000) / rounds - sinceStart()))
        await faults.dnsSilence(phase)
        await sleep(gap)
        if (!stopping) await faults.fdPressure(phase)
        await sleep(gap)
        // The next +10 s of a 15 s cycle: 10 s after a reload, 5 s before the next.
        await sleep((((25_000 - (sinceStart() % 15_000)) % 15_000) + 15_000) % 15_000)
        if (!stopping) await faults.killWorker()
      }
    }
    const running: Array<Promise<void>> = []
    const timers = timeline.map(([t, f]) => setTimeout(() => running.push(f()), t * 1000))
    running.push(exclusive())
    cleanup.push(() => timers.forEach(clearTimeout))

    await sleep(Math.max(0, S * 1000 - (performance.now() - loadStart)))
    stopping = true
    console.log("soak: load stopped; waiting for the operations in flight and the faults")
    await Promise.race([Promise.all([...lanes, ...running]), sleep(130_000)])

    // Settle: live connections to 0, pooled origin sockets closed after their idle timeout, fds back.
    const settleStart = performance.now()
    let liveEnd = -1
    let fdsEnd = -1
    let originSocketsEnd = -1
    for (;;) {
      await sleep(1000)
      liveEnd = (await proxy.stats().catch(() => ({}) as Record<string, number>))["connectionsLive"] ?? -1
      originSocketsEnd = good.open() + streams.open() + bad.open() + flaky.open()
      fdsEnd = proxy.fds()
      const settled = liveEnd === 0 && originSocketsEnd === 0 && Math.abs(fdsEnd - fdsStart) <= FD_SLACK
      if ((settled && performance.now() - settleStart > 4000) || performance.now() - settleStart > 30_000) break
    }
    const rssEndMb = proxy.rssMb()
    samples.push({ t: ledger.elapsed() / 1000, rssMb: rssEndMb, fds: fdsEnd })
    const stats = await proxy.stats()
    const metrics = await proxy.admin("/metrics")
    const internal = Number(/^hctunnel_internal_errors_total (\d+)/m.exec(metrics)?.[1] ?? "NaN")
    if (internal !== 0) ledger.record("proxy metrics", "unexpected", `hctunnel_internal_errors_total ${internal}`)
    const leaks: Array<string> = []
    if (liveEnd !== 0) leaks.push(`${liveEnd} live connections after the settle`)
    if (originSocketsEnd !== 0)
      leaks.push(`${originSocketsEnd} origin sockets still open (pooled sockets not closed after their idle timeout)`)
    if (Math.abs(fdsEnd - fdsStart) > FD_SLACK) leaks.push(`fds ${fdsStart} -> ${fdsEnd} (${JSON.stringify(proxy.fdKinds())})`)
    const slopeFrom = Math.min(60, Math.floor(S / 3))
    const slope = rssSlope(samples, slopeFrom + samples[0]!.t)
    const judged = S >= 180 ? RSS_SLOPE_LIMIT : undefined
    if (judged !== undefined && slope > judged) leaks.push(`RSS grows ${slope.toFixed(2)} MB/min after the first minute`)

    // Stop the proxy: a clean exit (0) after its drain.
    inspector.close()
    const exit = await proxy.stop(20_000)
    const proxyExit = exit.code === 0 ? "0 (clean)" : `${exit.code ?? exit.signal}`
    if (exit.code !== 0) ledger.record("proxy exit", "unexpected", `exit ${proxyExit}`)

    const final: Final = {
      seed: opts.seed,
      replay,
      seconds: S,
      fdsStart,
      fdsEnd,
      fdSlack: FD_SLACK,
      liveEnd,
      originSocketsEnd,
      rssStartMb,
      rssEndMb,
      rssSlopeMbPerMin: slope,
      rssSlopeFromSeconds: slopeFrom,
      rssSlopeLimit: judged,
      fdPeak: faults.fdPeak,
      idleClients: faults.idleClients,
      openFilesLimit: OPEN_FILES,
      restarts: stats["restarts"] ?? 0,
      proxyCpuSeconds: ((stats["cpuUserMs"] ?? 0) + (stats["cpuSystemMs"] ?? 0)) / 1000,
      closedOnReuse: flakyCounts.closedOnReuse,
      dnsQuestions: dns.questions,
      proxyExit,
      leaks,
      users: alice[0]!.by,
      samples,
    }
    console.log(summary(ledger, final))
    if (opts.json !== undefined) writeFileSync(opts.json, `${JSON.stringify(jsonReport(ledger, final), null, 2)}\n`)
    return isClean(ledger, final) ? 0 : 1
  } finally {
    for (const f of cleanup.reverse()) {
      try {
        await f()
      } catch {
        // Best effort: the next one still runs.
      }
    }
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`soak: could not run: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
    process.exit(2)
  },
)
