/**
 * hctunnel benchmark harness. See bench/README.md.
 *
 *   node bench/run.ts [--quick] [--only name,...] [--json FILE]
 *                     [--proxy HOST:PORT [--proxy-pid PID] [--label NAME]] [--workers 2] [--direct-only]
 *                     [--gen c|node] [--variant LABEL=ARGS ...]
 *
 * Starts the origins (bench/origin.ts, and the C echo of bench/gen/tunnelgen.c) and, unless --proxy is given, the
 * compiled proxy (node dist/cli.js) under a guard; runs each workload directly and through the proxy in
 * alternating rounds; prints a table and writes JSON.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import net from "node:net"
import os from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { buildTunnelgen, type EchoOrigin, startEcho } from "./lib/cgen.ts"
import { installCleanup, runJson, runNode, startJson, stop, type RunResult } from "./lib/children.ts"
import { PEER_NAMES, startPeer, startVariant, type Peer, type PeerName } from "./lib/peers.ts"
import { cpuSeconds, loadAverage, machineBusySeconds, openFilesLimit, rssKiB } from "./lib/proc.ts"
import { fmt, median, summarize, type Summary } from "./lib/stats.ts"
import { assertLoopback, authority, freePort, parseEndpoint, type Endpoint } from "./lib/wire.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "..")
const GEN = (name: string): string => join(here, "gen", `${name}.ts`)

// ---------------------------------------------------------------- options

const { values: opt } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    json: { type: "string" },
    proxy: { type: "string" },
    "proxy-pid": { type: "string" },
    label: { type: "string" },
    workers: { type: "string", default: "2" },
    "direct-only": { type: "boolean", default: false },
    rounds: { type: "string" },
    "rate-ms": { type: "string" },
    peers: { type: "string" },
    gen: { type: "string", default: "c" },
    "no-warmup": { type: "boolean", default: false },
    variant: { type: "string", multiple: true, default: [] },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
})

const ALL = ["start-rss", "idle-rss", "tunnel-down", "tunnel-up", "tunnel8", "http-get", "small-rps", "latency", "tunnel-rate"] as const
type Name = (typeof ALL)[number]

if (opt.help) {
  process.stdout.write(
    [
      "usage: node bench/run.ts [options]   (npm run bench -- [options] builds first)",
      "  --quick               about 2 minutes: 256 MiB transfers, 3 rounds, 2000 idle tunnels",
      "  --only a,b            run a subset of: " + ALL.join(", "),
      "  --json FILE           write results (default bench/results/latest.json)",
      "  --proxy HOST:PORT     measure another running proxy instead of starting node dist/cli.js",
      "  --proxy-pid PID       its pid, for CPU and RSS figures (with --proxy)",
      "  --label NAME          name of the proxy in the output (default hctunnel, or the --proxy address)",
      "  --workers N           hctunnel --workers (default 2)",
      "  --rounds N            rounds per workload (default 3 quick, 5 full)",
      "  --rate-ms MS          length of one tunnel-rate round (default 3000 quick, 8000 full): many short rounds",
      "                        give steadier same-round ratios on a busy machine",
      "  --direct-only         no proxy at all: check the origins and generators",
      "  --peers LIST|none     peers and floors run beside hctunnel in the same rounds (default: those installed of",
      "                        " + PEER_NAMES.join(", ") + ", and Node with idle workers for start-rss)",
      "  --gen c|node          generator of tunnel-rate and latency: bench/gen/tunnelgen.c (default; the Node ones",
      "                        if no C compiler) or bench/gen/rate.ts and latency.ts",
      "  --no-warmup           no uncounted first round through each proxy (to see what it changes)",
      "  --variant LABEL=ARGS  one more hctunnel in the same rounds as a peer, with ARGS (comma- or space-separated)",
      "                        instead of --log-level none; ARGS may start with another build's cli.js. Repeatable",
      "",
    ].join("\n"),
  )
  process.exit(0)
}

const quick = opt.quick
/** Which peer or floor each row of issue 11's table is compared with, in the same rounds. */
const PEERS_OF: Partial<Record<Name, ReadonlyArray<PeerName>>> = {
  "tunnel-rate": ["tinyproxy", "node-relay"],
  tunnel8: ["c-relay", "node-relay"],
  "small-rps": ["squid"],
}
const P = {
  bulkBytes: quick ? 256 * 2 ** 20 : 2 ** 30,
  rounds: Number(opt.rounds ?? (quick ? 3 : 5)),
  wrkSeconds: quick ? 3 : 8,
  rateMs: Number(opt["rate-ms"] ?? (quick ? 3000 : 8000)),
  latencyRequests: quick ? 3000 : 10_000,
  idleCount: quick ? 2000 : 10_000,
  clients: 50,
}
const only = new Set<string>(opt.only === undefined ? ALL : opt.only.split(",").map((s) => s.trim()))
for (const n of only) if (!(ALL as ReadonlyArray<string>).includes(n)) throw new Error(`unknown workload ${n}; known: ${ALL.join(", ")}`)
const directOnly = opt["direct-only"]
const external = opt.proxy !== undefined
const label = opt.label ?? (external ? opt.proxy! : "hctunnel")
const jsonPath = resolve(opt.json ?? join(here, "results", "latest.json"))

// ---------------------------------------------------------------- helpers

const log = (s: string): void => void process.stdout.write(s + "\n")
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Run a command through bash with the open-files limit raised as far as allowed. */
const withNoFile = (command: string, args: ReadonlyArray<string>): [string, string[]] => [
  "bash",
  ["-c", 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', command, ...args],
]

const waitForPort = async (ep: Endpoint, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(ep.port, ep.host)
      s.once("connect", () => {
        s.destroy()
        res(true)
      })
      s.once("error", () => res(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listening on ${authority(ep)} after ${timeoutMs} ms`)
    await sleep(50)
  }
}

/**
 * Wait until a process is quiet (under 20 ms of CPU per 250 ms, twice in a row; at most maxMs): a proxy still
 * starting workers or compiling hot code would otherwise bleed into the next figure.
 */
const settle = async (pid: number, maxMs = 10_000): Promise<number> => {
  const t0 = Date.now()
  let quiet = 0
  let last = cpuSeconds(pid)
  while (Date.now() - t0 < maxMs && quiet < 2) {
    await sleep(250)
    const now = cpuSeconds(pid)
    quiet = now - last < 0.02 ? quiet + 1 : 0
    last = now
  }
  return Date.now() - t0
}

/** Connections the origins accepted so far (GET /__stats; this request's own connection is subtracted). */
const originConnections = (): Promise<{ bulk: number; echo: number; http: number }> =>
  new Promise((res, rej) => {
    const s = net.connect(httpEp.port, httpEp.host)
    let text = ""
    s.setEncoding("latin1")
    s.on("data", (d: string) => (text += d))
    s.once("error", rej)
    s.once("close", () => {
      try {
        const c = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { bulk: number; echo: number; http: number }
        res({ ...c, http: c.http - 1 })
      } catch (err) {
        rej(err instanceof Error ? err : new Error(String(err)))
      }
    })
    s.write(`GET /__stats HTTP/1.1\r\nHost: ${authority(httpEp)}\r\nConnection: close\r\n\r\n`)
  })

const which = (cmd: string): boolean => spawnSync("bash", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0

const ensureWrk = (): boolean => {
  if (which("wrk")) return true
  if (process.getuid?.() === 0 && which("apt-get")) {
    log("wrk not found: installing it (apt-get install -y wrk) ...")
    spawnSync(
      "bash",
      ["-c", "apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1)"],
      {
        stdio: "inherit",
      },
    )
    if (which("wrk")) return true
  }
  log("wrk not found: install it with `apt-get install -y wrk` (Debian/Ubuntu); skipping small-rps")
  return false
}

/** Parse bash `times` output: the children's user + system time (last line), or with all, the shell's too. */
const parseTimes = (stderr: string, all = false): number => {
  const lines = stderr.trim().split("\n").slice(-2)
  let total = 0
  for (const line of all ? lines : lines.slice(-1)) {
    for (const m of line.matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m[1]) * 60 + Number(m[2])
  }
  return total
}

// ---------------------------------------------------------------- processes under test

installCleanup()

const origin = await startJson(process.execPath, [join(here, "origin.ts")], 10_000)
const originPid = Number(origin.hello["pid"])
const ORIGIN_HOST = String(origin.hello["host"])
const bulkEp: Endpoint = { host: ORIGIN_HOST, port: Number(origin.hello["bulk"]) }
const echoEp: Endpoint = { host: ORIGIN_HOST, port: Number(origin.hello["echo"]) }
const httpEp: Endpoint = { host: ORIGIN_HOST, port: Number(origin.hello["http"]) }

// The C generator for new tunnels and latency, and its echo origin (4 ports in rotation, as measured outside the
// project for issue 20): a Node generator would take a third of the two cores from the proxy under test.
if (opt.gen !== "c" && opt.gen !== "node") throw new Error(`--gen ${opt.gen}: expected c or node`)
const tunnelgen = opt.gen === "c" && (only.has("tunnel-rate") || only.has("latency")) ? buildTunnelgen(here, log) : undefined
const echoC: EchoOrigin | undefined = tunnelgen !== undefined && only.has("tunnel-rate") ? await startEcho(tunnelgen, 4) : undefined
/** The origin processes whose CPU is the origin's: the Node origins, and the C echo when it runs. */
const originPids = [originPid, ...(echoC === undefined ? [] : [echoC.pid])]
const originCpuSeconds = (): number => originPids.reduce((a, p) => a + cpuSeconds(p), 0)

let proxyEp: Endpoint | undefined
let proxyPid: number | undefined
let proxyCommand: string | undefined
let guard: Awaited<ReturnType<typeof startJson>> | undefined

if (directOnly) {
  log("--direct-only: no proxy; only the direct figures are measured")
} else if (external) {
  proxyEp = parseEndpoint(opt.proxy!)
  assertLoopback(proxyEp)
  if (opt["proxy-pid"] !== undefined) proxyPid = Number(opt["proxy-pid"])
  await waitForPort(proxyEp, 3000)
} else {
  const cli = join(root, "dist", "cli.js")
  if (!existsSync(cli)) {
    log(`${cli} not found: run \`npm run build\` first (or use --proxy HOST:PORT, or --direct-only)`)
    process.exit(2)
  }
  const port = await freePort()
  proxyEp = { host: "127.0.0.1", port }
  const args = [cli, "--listen", authority(proxyEp), "--workers", opt.workers!, "--log-level", "none"]
  proxyCommand = `node ${args.map((a) => a.replace(root + "/", "")).join(" ")}`
  const [cmd, cmdArgs] = withNoFile(process.execPath, args)
  guard = await startJson(process.execPath, [join(here, "lib", "guard.ts"), cmd, ...cmdArgs], 10_000)
  proxyPid = Number(guard.hello["pid"])
  await waitForPort(proxyEp, 15_000)
  await settle(proxyPid)
}

const peers = new Map<string, Peer>()
const peerChoice = opt.peers ?? (external || directOnly ? "none" : "auto")
if (peerChoice !== "none") {
  const wanted = new Set<PeerName>(
    peerChoice === "auto" ? [...only].flatMap((n) => PEERS_OF[n as Name] ?? []) : (peerChoice.split(",") as PeerName[]),
  )
  for (const name of wanted) {
    if (!PEER_NAMES.includes(name)) throw new Error(`unknown peer ${name}; known: ${PEER_NAMES.join(", ")}`)
    const peer = await startPeer(name, { here, freePort, log })
    if (peer === undefined) continue
    await waitForPort(peer.ep, 15_000)
    await settle(peer.pid)
    peers.set(name, peer)
  }
}
const variants: string[] = []
if (!external && !directOnly) {
  for (const spec of opt.variant!) {
    const v = await startVariant(spec, { here, freePort, log, cli: join(root, "dist", "cli.js"), workers: opt.workers! })
    if (peers.has(v.label) || v.label === "proxy" || v.label === "direct") throw new Error(`--variant ${v.label}: label already in use`)
    await waitForPort(v.ep, 15_000)
    await settle(v.pid)
    peers.set(v.label, v)
    variants.push(v.label)
  }
}
const peersOf = (name: Name): ReadonlyArray<string> => [...(PEERS_OF[name] ?? []).filter((p) => peers.has(p)), ...variants]

const clk = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
const env = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? "?",
  memGiB: Math.round(os.totalmem() / 2 ** 30),
  kernel: os.release(),
  clkTck: clk,
  commit: (() => {
    try {
      return execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()
    } catch {
      return "?"
    }
  })(),
  mode: quick ? "quick" : "full",
  proxy: directOnly ? "none" : label,
  proxyAddress: proxyEp === undefined ? undefined : authority(proxyEp),
  proxyPid,
  proxyCommand,
  proxyOpenFilesLimit: proxyPid === undefined ? undefined : openFilesLimit(proxyPid),
  generator: tunnelgen === undefined ? "node (bench/gen/*.ts)" : "c (bench/gen/tunnelgen.c) for tunnel-rate and latency",
  echoPorts: echoC?.ports,
  variants: opt.variant,
  loadAtStart: loadAverage(),
  params: P,
}
log(`hctunnel bench (${env.mode}) ${env.date}  node ${env.node}  ${env.cpus} cpus (${env.cpuModel})  ${env.memGiB} GiB`)
log(
  `proxy: ${env.proxy}${proxyEp ? " at " + authority(proxyEp) : ""}${proxyPid ? " pid " + proxyPid : " (no pid: no CPU/RSS figures)"}${proxyCommand ? "  [" + proxyCommand + "]" : ""}`,
)
if (peers.size > 0)
  log(`peers (same rounds): ${[...peers.values()].map((p) => `${p.label} at ${authority(p.ep)} pid ${p.pid}`).join(", ")}`)
log(`origins: bulk ${authority(bulkEp)}  echo ${authority(echoEp)}  http ${authority(httpEp)} (pid ${originPid})`)
if (echoC !== undefined) log(`C echo (tunnel-rate): 127.0.0.1 ports ${echoC.ports.join(", ")} (pid ${echoC.pid})`)
log(`generator: ${env.generator}; load average at start ${env.loadAtStart}`)
log("")

// ---------------------------------------------------------------- measurement

/** "direct", "proxy" (the proxy under test), or a peer's label. */
type Mode = "direct" | "proxy" | (string & {})
const pidOf = (mode: Mode): number | undefined => (mode === "proxy" ? proxyPid : peers.get(mode)?.pid)

/** One round of one workload in one mode. */
interface Sample {
  /** The workload's main figure (MB/s, requests/s, µs...). */
  readonly value: number
  /** Work done in this round, in the unit CPU is normalised by (GB or 10k requests). */
  readonly work: number
  readonly seconds: number
  readonly genCpu: number
  /** The generator process's whole CPU time (startup included), for the machine-load accounting. */
  readonly genCpuTotal: number
  readonly originCpu: number
  /** CPU used on the machine during the round by processes other than generator, origin, proxy and harness (cores). */
  readonly otherCores: number
  readonly proxyCpu: number
  /** The 1-minute load average when the round started (other helpers share this machine). */
  readonly load1: number
  readonly extra: Record<string, number>
  readonly warnings: ReadonlyArray<string>
}

interface Target {
  readonly text: string
  readonly check: (r: Result) => boolean | undefined
}

interface Result {
  readonly name: Name
  readonly title: string
  readonly unit: string
  readonly workUnit: string
  readonly direct?: Summary
  readonly proxy?: Summary
  readonly ratio?: number
  readonly addedUs?: number
  readonly proxyCpuPerWork?: number
  readonly genCpuPerWork?: { direct?: number; proxy?: number }
  readonly originCpuPerWork?: { direct?: number; proxy?: number }
  readonly genUtil?: { direct?: number; proxy?: number }
  readonly proxyUtil?: number
  /** Median CPU (in cores) used by other processes on the machine during the rounds: noise. */
  readonly otherCores?: number
  readonly extra?: Record<string, number | { direct?: number; proxy?: number }>
  /** Peers and floors measured in the same rounds. */
  readonly peers?: ReadonlyArray<PeerFigure>
  /** Every round in the order it ran, with where the cores went (cores = CPU-s ÷ wall s). */
  readonly roundLog?: ReadonlyArray<RoundRecord>
  readonly targets: ReadonlyArray<{ text: string; pass: boolean | undefined }>
  readonly notes: ReadonlyArray<string>
}

/** A peer's figures from the same rounds as the proxy under test. */
interface PeerFigure {
  readonly label: string
  readonly value: Summary
  readonly ratio?: number
  readonly cpuPerWork?: number
  /** The proxy under test's median ÷ the peer's (for RSS: MB ÷ MB). */
  readonly proxyOverPeer?: number
  /** The proxy under test's figure ÷ the peer's, round by round (both ran in each round, minutes apart at most). */
  readonly perRound?: ReadonlyArray<number>
  /**
   * The proxy under test's CPU per unit of work ÷ the peer's, round by round: on a machine shared with other
   * work this moves less than the rates, which depend on who the scheduler favoured in that minute.
   */
  readonly perRoundCpu?: ReadonlyArray<number>
  readonly extra?: Record<string, number>
}

interface RoundRecord {
  readonly round: number
  readonly mode: string
  readonly value: number
  readonly genCores: number
  readonly originCores: number
  readonly proxyCores?: number
  readonly otherCores: number
  readonly load1: number
}

const results: Result[] = []

type Measured = Omit<Sample, "originCpu" | "proxyCpu" | "otherCores" | "load1">

const selfCpu = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

const measure = async (mode: Mode, body: () => Promise<Measured>): Promise<Sample> => {
  const load1 = Number(loadAverage().split(" ")[0])
  const w0 = performance.now()
  const m0 = machineBusySeconds()
  const h0 = selfCpu()
  const o0 = originCpuSeconds()
  const pid = pidOf(mode)
  const p0 = pid === undefined ? NaN : cpuSeconds(pid)
  const s = await body()
  const originCpu = originCpuSeconds() - o0
  const proxyCpu = pid === undefined ? NaN : cpuSeconds(pid) - p0
  const wall = (performance.now() - w0) / 1000
  const other = machineBusySeconds() - m0 - (selfCpu() - h0) - originCpu - (Number.isFinite(proxyCpu) ? proxyCpu : 0) - s.genCpuTotal
  const otherCores = Math.max(0, other / wall)
  const warnings = [...s.warnings]
  if (mode === "direct" && proxyCpu > 0.05) warnings.push(`proxy used ${fmt(proxyCpu)} CPU-s during a direct round`)
  return { ...s, originCpu, proxyCpu, otherCores, load1, warnings }
}

interface Rounds {
  readonly direct: Sample[]
  readonly proxy: Sample[]
  /** Rounds through each peer, by label. */
  readonly peers: Map<string, Sample[]>
  readonly log: RoundRecord[]
}

/** Alternate direct and proxy rounds (ABAB, BABA...) and summarise. */
const rounds = async (name: Name, run: (mode: Mode) => Promise<Measured>, opts: { warmup?: boolean } = {}): Promise<Rounds> => {
  const out: Rounds = { direct: [], proxy: [], peers: new Map(), log: [] }
  const modes: Mode[] = proxyEp === undefined ? ["direct"] : ["direct", "proxy", ...peersOf(name)]
  for (const m of modes.slice(2)) out.peers.set(m, [])
  // One uncounted round through each proxy first: a JIT-compiled proxy (hctunnel, the Node relay) would
  // otherwise pay its compilation of this workload's path inside the first measured round.
  if (opts.warmup === true && !opt["no-warmup"]) {
    for (const mode of modes.slice(1)) {
      await run(mode)
      log(`  ${name} warm-up ${mode} (not counted)`)
    }
  }
  for (let r = 0; r < P.rounds; r++) {
    const order = r % 2 === 0 ? modes : [...modes].reverse()
    for (const mode of order) {
      const s = await measure(mode, () => run(mode))
      ;(mode === "direct" ? out.direct : mode === "proxy" ? out.proxy : out.peers.get(mode)!).push(s)
      out.log.push({
        round: r + 1,
        mode,
        value: s.value,
        genCores: s.genCpu / s.seconds,
        originCores: s.originCpu / s.seconds,
        ...(Number.isFinite(s.proxyCpu) ? { proxyCores: s.proxyCpu / s.seconds } : {}),
        otherCores: s.otherCores,
        load1: s.load1,
      })
      const w = s.warnings.length > 0 ? `  ! ${s.warnings.join("; ")}` : ""
      const o = s.otherCores > 0.25 ? "  (busy machine)" : ""
      // Where the two cores went in this round: generator, origin(s), the proxy measured, everything else.
      const cores = `gen ${fmt(s.genCpu / s.seconds, 2)} origin ${fmt(s.originCpu / s.seconds, 2)} proxy ${Number.isFinite(s.proxyCpu) ? fmt(s.proxyCpu / s.seconds, 2) : "-"} others ${fmt(s.otherCores, 2)} cores, load ${fmt(s.load1, 2)}`
      log(`  ${name} round ${r + 1} ${mode.padEnd(10)} ${fmt(s.value).padStart(8)}  [${cores}]${o}${w}`)
    }
  }
  return out
}

const perWork = (xs: ReadonlyArray<Sample>, key: "genCpu" | "originCpu" | "proxyCpu"): number | undefined => {
  if (xs.length === 0) return undefined
  const cpu = xs.reduce((a, s) => a + s[key], 0)
  const work = xs.reduce((a, s) => a + s.work, 0)
  return work > 0 && Number.isFinite(cpu) ? cpu / work : undefined
}
const cpuPerUnit = (s: Sample | undefined): number => (s === undefined || s.work <= 0 ? NaN : s.proxyCpu / s.work)
const util = (xs: ReadonlyArray<Sample>, key: "genCpu" | "proxyCpu"): number | undefined =>
  xs.length === 0 ? undefined : median(xs.map((s) => s[key] / s.seconds))

/** Build a Result from rounds of a direct-vs-proxy workload. */
const compare = (
  name: Name,
  title: string,
  unit: string,
  workUnit: string,
  data: Rounds,
  targets: ReadonlyArray<Target>,
  opts: { lowerIsBetter?: boolean; extraKeys?: ReadonlyArray<string> } = {},
): Result => {
  const direct = summarize(data.direct.map((s) => s.value))
  const proxy = data.proxy.length > 0 ? summarize(data.proxy.map((s) => s.value)) : undefined
  const extra: Record<string, { direct?: number; proxy?: number }> = {}
  for (const k of opts.extraKeys ?? []) {
    const e: { direct?: number; proxy?: number } = { direct: median(data.direct.map((s) => s.extra[k] ?? NaN)) }
    if (proxy !== undefined) e.proxy = median(data.proxy.map((s) => s.extra[k] ?? NaN))
    extra[k] = e
  }
  const peerFigures: PeerFigure[] = [...data.peers].map(([label, xs]) => {
    const value = summarize(xs.map((s) => s.value))
    const ex: Record<string, number> = {}
    for (const k of opts.extraKeys ?? []) ex[k] = median(xs.map((s) => s.extra[k] ?? NaN))
    return {
      label,
      value,
      ...(opts.lowerIsBetter ? {} : { ratio: value.median / direct.median }),
      ...(perWork(xs, "proxyCpu") === undefined ? {} : { cpuPerWork: perWork(xs, "proxyCpu")! }),
      ...(proxy === undefined ? {} : { proxyOverPeer: proxy.median / value.median }),
      ...(proxy === undefined ? {} : { perRound: xs.map((s, i) => (data.proxy[i]?.value ?? NaN) / s.value) }),
      ...(proxy === undefined || !xs.every((s) => Number.isFinite(s.proxyCpu))
        ? {}
        : { perRoundCpu: xs.map((s, i) => cpuPerUnit(data.proxy[i]) / cpuPerUnit(s)) }),
      extra: ex,
    }
  })
  const all = [...data.direct, ...data.proxy, ...[...data.peers.values()].flat()]
  // One note per kind of warning (same text up to the numbers), with how many rounds had it.
  const kinds = new Map<string, { first: string; rounds: number }>()
  for (const w of all.flatMap((s) => s.warnings)) {
    const k = w.replace(/[\d.,]+/g, "#")
    const e = kinds.get(k)
    if (e === undefined) kinds.set(k, { first: w, rounds: 1 })
    else e.rounds++
  }
  const notes = [...kinds.values()].map((e) => (e.rounds > 1 ? `${e.first} (and ${e.rounds - 1} more rounds like it)` : e.first))
  const busy = all.filter((s) => s.otherCores > 0.25)
  if (busy.length > 0) {
    notes.push(
      `${busy.length} of ${all.length} rounds ran while other processes used > 0.25 cores (up to ${fmt(Math.max(...busy.map((s) => s.otherCores)), 2)}): noisy`,
    )
  }
  const base: Result = {
    name,
    title,
    unit,
    workUnit,
    direct,
    ...(proxy === undefined ? {} : { proxy }),
    ...(proxy === undefined
      ? {}
      : opts.lowerIsBetter
        ? { addedUs: proxy.median - direct.median }
        : { ratio: proxy.median / direct.median }),
    ...(perWork(data.proxy, "proxyCpu") === undefined ? {} : { proxyCpuPerWork: perWork(data.proxy, "proxyCpu")! }),
    genCpuPerWork: { direct: perWork(data.direct, "genCpu"), proxy: perWork(data.proxy, "genCpu") } as { direct?: number; proxy?: number },
    originCpuPerWork: { direct: perWork(data.direct, "originCpu"), proxy: perWork(data.proxy, "originCpu") } as {
      direct?: number
      proxy?: number
    },
    genUtil: { direct: util(data.direct, "genCpu"), proxy: util(data.proxy, "genCpu") } as { direct?: number; proxy?: number },
    ...(proxyPid === undefined || data.proxy.length === 0 ? {} : { proxyUtil: util(data.proxy, "proxyCpu")! }),
    otherCores: median([...data.direct, ...data.proxy].map((s) => s.otherCores)),
    extra,
    peers: peerFigures,
    roundLog: data.log,
    targets: [],
    notes,
  }
  return { ...base, targets: targets.map((t) => ({ text: t.text, pass: t.check(base) })) }
}

/** The proxy under test's figure at least x times the peer's (undefined when the peer did not run). */
const peerAtLeast = (peer: string, x: number, text: string): Target => ({
  text,
  check: (r) => {
    const p = r.peers?.find((f) => f.label === peer)
    return p?.proxyOverPeer === undefined ? undefined : p.proxyOverPeer >= x
  },
})
const ratioAtLeast = (x: number): Target => ({ text: `ratio >= ${x}`, check: (r) => (r.ratio === undefined ? undefined : r.ratio >= x) })
const cpuAtMost = (x: number, per: string): Target => ({
  text: `<= ${x} CPU-s/${per}`,
  check: (r) => (r.proxyCpuPerWork === undefined ? undefined : r.proxyCpuPerWork <= x),
})

// ---------------------------------------------------------------- workloads

const endpointOf = (mode: Mode): Endpoint | undefined => (mode === "proxy" ? proxyEp : peers.get(mode)?.ep)
const proxyArgs = (mode: Mode): string[] => (endpointOf(mode) === undefined ? [] : ["--proxy", authority(endpointOf(mode)!)])
const num = (r: RunResult, k: string): number => Number(r.last[k])
const GB = 1e9

/** A bulk generator's result (bulk.ts, httpget.ts): MB/s over its measured window, per GB moved. */
const throughput = (r: RunResult): Measured => {
  const bytes = num(r, "bytes")
  const seconds = num(r, "seconds")
  return {
    value: bytes / seconds / 1e6,
    work: bytes / GB,
    seconds,
    genCpu: num(r, "cpuSeconds"),
    genCpuTotal: num(r, "cpuTotalSeconds"),
    extra: {},
    warnings: [],
  }
}

const bulk = (name: Name, title: string, tunnels: number, dir: "down" | "up", targets: Target[]) => async (): Promise<Result> => {
  const data = await rounds(name, async (mode) => {
    const r = await runNode(
      GEN("bulk"),
      [
        "--target",
        authority(bulkEp),
        ...proxyArgs(mode),
        "--tunnels",
        String(tunnels),
        "--bytes",
        String(P.bulkBytes),
        "--dir",
        dir,
        "--deadline-ms",
        "150000",
      ],
      { timeoutMs: 160_000 },
    )
    return throughput(r)
  })
  return compare(name, title, "MB/s", "GB", data, targets)
}

const httpGet = async (): Promise<Result> => {
  const data = await rounds("http-get", async (mode) => {
    const r = await runNode(
      GEN("httpget"),
      ["--origin", authority(httpEp), ...proxyArgs(mode), "--bytes", String(P.bulkBytes), "--deadline-ms", "150000"],
      { timeoutMs: 160_000 },
    )
    return throughput(r)
  })
  return compare("http-get", `plain HTTP GET, ${fmt(P.bulkBytes / 2 ** 20)} MiB body`, "MB/s", "GB", data, [ratioAtLeast(0.35)])
}

let haveWrk = false
const smallRps = async (): Promise<Result | undefined> => {
  if (!haveWrk) return undefined
  const lua = join(here, "wrk", "small.lua")
  const data = await rounds(
    "small-rps",
    async (mode) => {
      const wrkArgs = ["-t1", `-c${P.clients}`, `-d${P.wrkSeconds}s`, "--timeout", "5s", "-s", lua]
      if (endpointOf(mode) !== undefined) {
        wrkArgs.push(`http://${authority(endpointOf(mode)!)}/`, "--", `http://${authority(httpEp)}/small`, authority(httpEp))
      } else wrkArgs.push(`http://${authority(httpEp)}/small`)
      const c0 = await originConnections()
      const r = await runJson("bash", ["-c", 'wrk "$@"; rc=$?; times >&2; exit $rc', "wrk", ...wrkArgs], {
        timeoutMs: (P.wrkSeconds + 20) * 1000,
      })
      const originConns = (await originConnections()).http - c0.http
      const requests = num(r, "requests")
      const seconds = num(r, "durationUs") / 1e6
      const errors = num(r, "connectErrors") + num(r, "readErrors") + num(r, "writeErrors") + num(r, "statusErrors") + num(r, "timeouts")
      const warnings =
        errors > 0
          ? [
              `wrk errors (${mode}): connect ${num(r, "connectErrors")} read ${num(r, "readErrors")} write ${num(r, "writeErrors")} status ${num(r, "statusErrors")} timeout ${num(r, "timeouts")}`,
            ]
          : []
      const expectBytes = requests * 100
      if (num(r, "bytes") < expectBytes) warnings.push(`short responses (${mode})`)
      return {
        value: requests / seconds,
        work: requests / 10_000,
        seconds,
        genCpu: parseTimes(r.stderr),
        genCpuTotal: parseTimes(r.stderr, true),
        extra: { p50Us: num(r, "p50Us"), p99Us: num(r, "p99Us"), errors, originConnsPer1kReq: (originConns / requests) * 1000 },
        warnings,
      }
    },
    { warmup: true },
  )
  return compare(
    "small-rps",
    `100-byte responses, ${P.clients} keep-alive connections (wrk)`,
    "req/s",
    "10k req",
    data,
    [ratioAtLeast(0.25), cpuAtMost(0.6, "10k req")],
    {
      extraKeys: ["p50Us", "p99Us", "errors", "originConnsPer1kReq"],
    },
  )
}

const latency = async (): Promise<Result> => {
  const data = await rounds("latency", async (mode) => {
    const c0 = await originConnections()
    const r =
      tunnelgen !== undefined
        ? await runJson(
            tunnelgen,
            ["latency", "--origin", authority(httpEp), ...proxyArgs(mode), "--requests", String(P.latencyRequests), "--max-seconds", "120"],
            { timeoutMs: 130_000 },
          )
        : await runNode(
            GEN("latency"),
            ["--origin", authority(httpEp), ...proxyArgs(mode), "--requests", String(P.latencyRequests), "--deadline-ms", "120000"],
            { timeoutMs: 130_000 },
          )
    const reconnects = num(r, "reconnects")
    const originConns = (await originConnections()).http - c0.http
    return {
      value: num(r, "p50Us"),
      work: num(r, "requests") / 10_000,
      seconds: num(r, "seconds"),
      genCpu: num(r, "cpuSeconds"),
      genCpuTotal: num(r, "cpuTotalSeconds"),
      extra: {
        p90Us: num(r, "p90Us"),
        p99Us: num(r, "p99Us"),
        reconnects,
        errors: num(r, "errors"),
        originConnsPer1kReq: (originConns / (num(r, "requests") + 200)) * 1000,
      },
      warnings: [
        ...(reconnects > 0 ? [`${mode}: server closed the connection ${reconnects} times (those requests include a connect)`] : []),
        ...(num(r, "errors") > 0 ? [`${mode}: ${num(r, "errors")} bad responses, first: ${String(r.last["firstError"])}`] : []),
      ],
    }
  })
  return compare(
    "latency",
    "one request at a time, 100-byte GET (p50)",
    "µs",
    "10k req",
    data,
    [{ text: "added p50 <= 80 µs", check: (r) => (r.addedUs === undefined ? undefined : r.addedUs <= 80) }],
    { lowerIsBetter: true, extraKeys: ["p90Us", "p99Us", "reconnects", "errors", "originConnsPer1kReq"] },
  )
}

const tunnelRate = async (): Promise<Result> => {
  const data = await rounds(
    "tunnel-rate",
    async (mode) => {
      const r =
        tunnelgen !== undefined && echoC !== undefined
          ? await runJson(
              tunnelgen,
              [
                "rate",
                "--target",
                `127.0.0.1:${echoC.ports.join(",")}`,
                ...proxyArgs(mode),
                "--clients",
                String(P.clients),
                "--duration-ms",
                String(P.rateMs),
              ],
              { timeoutMs: P.rateMs + 40_000 },
            )
          : await runNode(
              GEN("rate"),
              ["--target", authority(echoEp), ...proxyArgs(mode), "--clients", String(P.clients), "--duration-ms", String(P.rateMs)],
              { timeoutMs: P.rateMs + 40_000 },
            )
      const n = num(r, "tunnels")
      const errors = num(r, "errors")
      return {
        value: n / num(r, "seconds"),
        work: n / 10_000,
        seconds: num(r, "seconds"),
        genCpu: num(r, "cpuSeconds"),
        genCpuTotal: num(r, "cpuTotalSeconds"),
        extra: { p50Us: num(r, "p50Us"), p99Us: num(r, "p99Us"), errors },
        warnings: errors > 0 ? [`${mode}: ${errors} failed tunnels, first: ${String(r.last["firstError"])}`] : [],
      }
    },
    { warmup: true },
  )
  return compare(
    "tunnel-rate",
    `new tunnel per request (CONNECT, 100 B echo, close), ${P.clients} clients`,
    "tunnels/s",
    "10k tunnels",
    data,
    [ratioAtLeast(0.4), peerAtLeast("tinyproxy", 1, "ahead of tinyproxy"), cpuAtMost(2.2, "10k tunnels")],
    {
      extraKeys: ["p50Us", "p99Us", "errors"],
    },
  )
}

const startRss = async (): Promise<Result | undefined> => {
  if (proxyPid === undefined) return undefined
  const mb = rssKiB(proxyPid) / 1024
  log(`  start-rss ${fmt(mb)} MB`)
  const notes = external
    ? ["measured when the bench started (an external proxy may have run before)"]
    : ["once the started proxy accepted a connection and then used < 20 ms CPU per 250 ms"]
  const t = { text: "<= 80 MB", pass: external ? undefined : mb <= 80 }
  // The floor: Node itself with as many worker threads, running nothing.
  const floors: PeerFigure[] = []
  if (peerChoice !== "none") {
    const w = external ? 2 : Number(opt.workers)
    const idle = await startJson(process.execPath, [join(here, "reference", "idle-workers.mjs"), String(w)], 10_000)
    const pid = Number(idle.hello["pid"])
    await settle(pid)
    const floor = rssKiB(pid) / 1024
    await stop(idle.cp, 2000)
    log(`  start-rss node with ${w} idle workers ${fmt(floor)} MB`)
    floors.push({ label: `node, ${w} idle workers`, value: summarize([floor]), proxyOverPeer: mb / floor })
  }
  return {
    name: "start-rss",
    title: `RSS at start${external ? "" : ` (--workers ${opt.workers})`}`,
    unit: "MB",
    workUnit: "",
    proxy: summarize([mb]),
    peers: floors,
    targets: [t],
    notes,
  }
}

const idleRss = async (): Promise<Result | undefined> => {
  if (proxyPid === undefined || proxyEp === undefined) return undefined
  const limit = openFilesLimit(proxyPid) ?? 1024
  // Each tunnel holds two sockets in the proxy, and hctunnel closes new connections once a descriptor is
  // within limit/16 of the limit (descriptorReserve in src/runtime/access/ConnectionLimits.ts).
  const reserve = external ? 0 : Math.max(8, Math.floor(limit / 16))
  const cap = Math.floor((limit - reserve - 200) / 2)
  const count = Math.min(P.idleCount, cap)
  const notes: string[] = []
  if (count < P.idleCount)
    notes.push(
      `${count} tunnels instead of ${P.idleCount}: the proxy's open-files limit is ${limit} (2 fds per tunnel, ${reserve} kept in reserve)`,
    )
  await settle(proxyPid)
  const before = rssKiB(proxyPid)
  let after = before
  let opened = 0
  let failed = 0
  const [cmd, args] = withNoFile(process.execPath, [
    GEN("idle"),
    "--target",
    authority(echoEp),
    "--proxy",
    authority(proxyEp),
    "--count",
    String(count),
    "--deadline-ms",
    "240000",
  ])
  const r = await runJson(cmd, args, {
    timeoutMs: 250_000,
    onMessage: (msg, cp) => {
      if (msg["ready"] !== true) return
      opened = Number(msg["open"])
      failed = Number(msg["failed"])
      if (msg["firstError"] !== undefined) notes.push(`first failure: ${String(msg["firstError"])}`)
      void sleep(2000).then(() => {
        after = rssKiB(proxyPid!)
        cp.stdin?.write("close\n")
      })
    },
  })
  if (r.last["stillOpen"] !== undefined && Number(r.last["stillOpen"]) < opened)
    notes.push(`${opened - Number(r.last["stillOpen"])} tunnels closed while idle`)
  if (failed > 0) notes.push(`${failed} tunnels failed to open`)
  const perTunnelKB = opened > 0 ? ((after - before) * 1024) / opened / 1000 : NaN
  log(`  idle-rss ${opened} tunnels: RSS ${fmt(before / 1024)} -> ${fmt(after / 1024)} MB = ${fmt(perTunnelKB)} KB per tunnel`)
  return {
    name: "idle-rss",
    title: `RSS per idle open tunnel (${opened} tunnels)`,
    unit: "KB/tunnel",
    workUnit: "",
    proxy: summarize([perTunnelKB]),
    extra: { tunnels: opened, failed, rssBeforeMB: before / 1024, rssAfterMB: after / 1024 },
    targets: [{ text: "<= 6 KB", pass: Number.isFinite(perTunnelKB) ? perTunnelKB <= 6 : undefined }],
    notes,
  }
}

const WORKLOADS: Record<Name, () => Promise<Result | undefined>> = {
  "start-rss": startRss,
  "idle-rss": idleRss,
  "tunnel-down": bulk("tunnel-down", "1 CONNECT tunnel, origin -> client", 1, "down", [ratioAtLeast(0.45), cpuAtMost(0.8, "GB")]),
  "tunnel-up": bulk("tunnel-up", "1 CONNECT tunnel, client -> origin", 1, "up", [ratioAtLeast(0.45), cpuAtMost(0.8, "GB")]),
  tunnel8: bulk("tunnel8", "8 concurrent CONNECT tunnels, origin -> client, aggregate", 8, "down", [
    ratioAtLeast(0.4),
    peerAtLeast("c-relay", 0.95, ">= 0.95x c-relay"),
  ]),
  "http-get": httpGet,
  "small-rps": smallRps,
  latency,
  "tunnel-rate": tunnelRate,
}

// ---------------------------------------------------------------- run

if (only.has("small-rps")) haveWrk = ensureWrk()
const started = Date.now()
let failures = 0
for (const name of ALL) {
  if (!only.has(name)) continue
  log(`${name}: (load average ${loadAverage()})`)
  if (proxyPid !== undefined) await settle(proxyPid, 5000)
  try {
    const r = await WORKLOADS[name]()
    if (r !== undefined) results.push(r)
    else log("  skipped")
  } catch (err) {
    failures++
    log(`  FAILED: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (proxyPid !== undefined && guard !== undefined && guard.cp.exitCode !== null) {
    log("the proxy exited: stopping")
    failures++
    break
  }
}

// ---------------------------------------------------------------- report

const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? "-" : `${Math.round(x * 100)}%`)
const row = (cells: ReadonlyArray<string>): string => `| ${cells.join(" | ")} |`
const lines: string[] = []
lines.push(
  row([
    "workload",
    "unit",
    "direct median",
    `${label} median [min-max]`,
    "ratio / added",
    "p50/p99 µs direct; proxy",
    "proxy CPU",
    "gen CPU direct/proxy",
    "gen util d/p",
    "target",
  ]),
)
lines.push(row(Array(10).fill("---") as string[]))
for (const r of results) {
  const p = r.proxy
  const rel = r.ratio !== undefined ? fmt(r.ratio, 2) : r.addedUs !== undefined ? `+${fmt(r.addedUs)} µs` : "-"
  const cpu = r.proxyCpuPerWork !== undefined ? `${fmt(r.proxyCpuPerWork)} s/${r.workUnit}` : "-"
  const gen = r.genCpuPerWork === undefined ? "-" : `${fmt(r.genCpuPerWork.direct)} / ${fmt(r.genCpuPerWork.proxy)} s/${r.workUnit}`
  const gu = r.genUtil === undefined ? "-" : `${pct(r.genUtil.direct)} / ${pct(r.genUtil.proxy)}`
  const lat = (m: "direct" | "proxy"): string => {
    const p50 = r.name === "latency" ? r[m]?.median : (r.extra?.["p50Us"] as { direct?: number; proxy?: number } | undefined)?.[m]
    const p99 = (r.extra?.["p99Us"] as { direct?: number; proxy?: number } | undefined)?.[m]
    return `${fmt(p50)} / ${fmt(p99)}`
  }
  const latCell = r.extra?.["p99Us"] === undefined ? "-" : `${lat("direct")}; ${lat("proxy")}`
  const tg = r.targets.map((t) => `${t.text} ${t.pass === undefined ? "?" : t.pass ? "PASS" : "FAIL"}`).join(", ")
  lines.push(
    row([
      r.name,
      r.unit,
      r.direct === undefined ? "-" : fmt(r.direct.median),
      p === undefined ? "-" : p.samples.length > 1 ? `${fmt(p.median)} [${fmt(p.min)}-${fmt(p.max)}]` : fmt(p.median),
      rel,
      latCell,
      cpu,
      gen,
      gu,
      tg,
    ]),
  )
}
log("")
log(`results (${env.mode}, ${P.rounds} rounds, ${Math.round((Date.now() - started) / 1000)} s):`)
for (const l of lines) log(l)
log("")
for (const r of results) {
  const ex =
    r.extra === undefined
      ? ""
      : Object.entries(r.extra)
          .map(([k, v]) => (typeof v === "number" ? `${k} ${fmt(v)}` : `${k} ${fmt(v.direct)}/${fmt(v.proxy)}`))
          .join(", ")
  const d = r.direct === undefined ? "" : `direct [${fmt(r.direct.min)}-${fmt(r.direct.max)}]`
  const pu = r.proxyUtil === undefined ? "" : `proxy util ${pct(r.proxyUtil)}`
  const oc =
    r.originCpuPerWork === undefined ? "" : `origin CPU ${fmt(r.originCpuPerWork.direct)}/${fmt(r.originCpuPerWork.proxy)} s/${r.workUnit}`
  const other = r.otherCores === undefined ? "" : `other processes ${fmt(r.otherCores, 2)} cores`
  log(`${r.name}: ${r.title}. ${[d, ex, pu, oc, other].filter((s) => s !== "").join("; ")}`)
  for (const n of r.notes) log(`  note: ${n}`)
}

// Each row beside its peers and floors from the same rounds (issue 11's table).
const withPeers = results.filter((r) => (r.peers ?? []).length > 0)
if (withPeers.length > 0) {
  log(`\n${label} beside its peers and floors, same run (ratio = median / direct median; CPU of the whole process tree):`)
  log(
    row([
      "workload",
      label,
      "peer or floor",
      `${label} ÷ peer`,
      "÷ peer per round [median]",
      "CPU per unit ÷ peer's, per round [median]",
      "target",
    ]),
  )
  log(row(Array(7).fill("---") as string[]))
  const figure = (r: Result, value: number | undefined, ratio: number | undefined, cpu: number | undefined): string =>
    [
      value === undefined ? "-" : `${fmt(value)} ${r.unit}`,
      ratio === undefined ? "" : `${fmt(ratio, 2)}x direct`,
      cpu === undefined ? "" : `${fmt(cpu, 2)} CPU-s/${r.workUnit}`,
    ]
      .filter((x) => x !== "")
      .join(", ")
  for (const r of withPeers) {
    for (const p of r.peers!) {
      const tg = r.targets.map((t) => `${t.text} ${t.pass === undefined ? "?" : t.pass ? "PASS" : "FAIL"}`).join(", ")
      log(
        row([
          r.name,
          figure(r, r.proxy?.median, r.ratio, r.proxyCpuPerWork),
          `${p.label}: ${figure(r, p.value.median, p.ratio, p.cpuPerWork)}`,
          fmt(p.proxyOverPeer, 2),
          p.perRound === undefined ? "-" : `${p.perRound.map((x) => fmt(x, 2)).join(" ")} [${fmt(median(p.perRound), 2)}]`,
          p.perRoundCpu === undefined ? "-" : `${p.perRoundCpu.map((x) => fmt(x, 2)).join(" ")} [${fmt(median(p.perRoundCpu), 2)}]`,
          tg,
        ]),
      )
    }
  }
}

const verdicts = results.flatMap((r) => r.targets.map((t) => t.pass))
const passed = verdicts.filter((v) => v === true).length
const failed = verdicts.filter((v) => v === false).length
if (verdicts.length > 0)
  log(`\ntargets met: ${passed} of ${verdicts.length} (missed ${failed}, not measured ${verdicts.length - passed - failed})`)

mkdirSync(dirname(jsonPath), { recursive: true })
writeFileSync(jsonPath, JSON.stringify({ env, results }, null, 2) + "\n")
log(`\nwrote ${jsonPath}`)

if (guard !== undefined) await stop(guard.cp, 5000)
await stop(origin.cp, 2000)
if (proxyPid !== undefined && !external && existsSync(`/proc/${proxyPid}`)) {
  try {
    if (!readFileSync(`/proc/${proxyPid}/stat`, "utf8").includes(") Z")) process.kill(proxyPid, "SIGKILL")
  } catch {
    // gone
  }
}
process.exit(failures > 0 ? 1 : 0)
