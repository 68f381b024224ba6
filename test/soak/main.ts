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
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { startDns } from "./env/Dns.ts"
import { bcryptLine, basic, configText, PASSWORDS, replaceFile } from "./env/Files.ts"
import { Inspector } from "./env/Inspector.ts"
import { freePort, ProxyProcess } from "./env/Proxy.ts"
import { Faults } from "./faults/Faults.ts"
import { scheduleFaults } from "./faults/timeline.ts"
import { type Env, sleep } from "./load/Client.ts"
import * as faulty from "./load/faulty.ts"
import { startLanes } from "./load/lanes.ts"
import { badOrigin, flakyOrigin } from "./origins/bad.ts"
import { goodOrigin } from "./origins/good.ts"
import { listen, Verdicts } from "./origins/serve.ts"
import { serveStream } from "./origins/stream.ts"
import { Ledger } from "./report/Ledger.ts"
import { type Final, isClean, jsonReport, progressLine, rssSlope, type Sample, summary } from "./report/Report.ts"
import { parseArgs, replayCommand } from "./options.ts"
import { FD_SLACK, settle } from "./report/settle.ts"
import { DataPool, Rng } from "./rng.ts"
import { pacer } from "./wire/pace.ts"
import { Reader } from "./wire/Reader.ts"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const WORKERS = 2
/** The proxy's open-files limit: the fd phase fills it to just under its pause point. */
const OPEN_FILES = 2048
/** RSS growth allowed after the first minute (issue 18), judged only on runs of at least 180 s. */
const RSS_SLOPE_LIMIT = 2

const main = async (): Promise<number> => {
  const opts = parseArgs(process.argv.slice(2))
  const replay = replayCommand(opts)
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

    // The load and the faults.
    let stopping = false
    const loadStart = performance.now()
    const lanes = startLanes(ledger, envFor, () => stopping)
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
    const { running, cancel } = scheduleFaults(faults, S, loadStart, () => stopping)
    cleanup.push(cancel)

    await sleep(Math.max(0, S * 1000 - (performance.now() - loadStart)))
    stopping = true
    console.log("soak: load stopped; waiting for the operations in flight and the faults")
    await Promise.race([Promise.all([...lanes, ...running]), sleep(130_000)])

    const { liveEnd, fdsEnd, originSocketsEnd } = await settle(
      proxy,
      () => good.open() + streams.open() + bad.open() + flaky.open(),
      fdsStart,
    )
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
