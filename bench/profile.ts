/**
 * Where one new tunnel's CPU goes, or one request's round trip: runs hctunnel (from src/ by default, so the
 * profile names our functions, not the bundle's minified ones) under `node --cpu-prof`, loads it with the C
 * generator (bench/gen/tunnelgen.c), and splits the workers' samples of the measured window into phases
 * (which event the thread was handling) and steps (what it was doing), in µs per tunnel or per request.
 * Loopback only. Used for docs/performance.md "Round three".
 *
 *   node bench/profile.ts [--workload tunnel|latency] [--proxy hctunnel|node-relay] [--seconds 8]
 *                         [--warmup-seconds 3] [--cli src/cli.ts] [--clients 50] [--interval-us 100]
 *                         [--no-profile] [--keep DIR] [-- extra hctunnel flags]
 *   node bench/profile.ts --analyze DIR      (again, the profiles of an earlier run kept with --keep DIR)
 *
 * The profile's clock is CLOCK_MONOTONIC, like process.hrtime, so the samples of start-up and warm-up are
 * left out by time. Steps are found from the innermost frame outwards (the innermost frame that a rule
 * matches names the step), phases from the outermost frame inwards. Sampling costs CPU itself (and
 * inlined functions are counted in their caller): the µs are a split of the profiled run, whose total
 * is printed beside the unprofiled /proc figure (--no-profile: only that, user and system apart).
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import net from "node:net"
import { parseArgs } from "node:util"
import { buildTunnelgen, startEcho } from "./lib/cgen.ts"
import { installCleanup, runJson, startJson, track } from "./lib/children.ts"
import { clockTicks, loadAverage } from "./lib/proc.ts"
import { freePort } from "./lib/wire.ts"

/** User and system CPU seconds of a process (all its threads), from /proc/PID/stat. */
const userSystem = (pid: number): { user: number; system: number } => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return { user: Number(f[11]) / clockTicks(), system: Number(f[12]) / clockTicks() }
}

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "..")
const { values: opt, positionals } = parseArgs({
  options: {
    workload: { type: "string", default: "tunnel" },
    seconds: { type: "string", default: "8" },
    "warmup-seconds": { type: "string", default: "3" },
    cli: { type: "string", default: "src/cli.ts" },
    clients: { type: "string", default: "50" },
    requests: { type: "string", default: "20000" },
    keep: { type: "string" },
    workers: { type: "string", default: "2" },
    proxy: { type: "string", default: "hctunnel" },
    "interval-us": { type: "string", default: "100" },
    "no-profile": { type: "boolean", default: false },
    analyze: { type: "string" },
    json: { type: "string" },
    /** latency workload: the requests go inside a CONNECT tunnel (the proxy relays bytes only). */
    tunnel: { type: "boolean", default: false },
  },
  allowPositionals: true,
})
const log = (s: string): void => void process.stdout.write(s + "\n")
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
installCleanup()

/** The measured window (CLOCK_MONOTONIC µs) and the work done in it, kept beside the profiles. */
interface Window {
  readonly t0: number
  readonly t1: number
  readonly units: number
  readonly workload: "tunnel" | "request"
}

const profileRun = async (dir: string): Promise<Window> => {
  const gen = buildTunnelgen(here, log)
  if (gen === undefined) process.exit(2)
  const tunnel = opt.workload === "tunnel"
  const echo = tunnel ? await startEcho(gen, 4) : undefined
  const origin = tunnel ? undefined : await startJson(process.execPath, [join(here, "origin.ts")], 10_000)
  const port = await freePort()
  const profileFlags = opt["no-profile"] ? [] : ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", opt["interval-us"]!]
  const proxyArgs =
    opt.proxy === "node-relay"
      ? [join(here, "reference", "relay.mjs"), String(port), opt.workers!]
      : [resolve(root, opt.cli!), "--listen", `127.0.0.1:${port}`, "--workers", opt.workers!, "--log-level", "none", ...positionals]
  const hct = track(
    spawn(
      "bash",
      [
        "-c",
        'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@" >/dev/null',
        process.execPath,
        ...profileFlags,
        ...proxyArgs,
      ],
      { stdio: ["pipe", "inherit", "inherit"] },
    ),
  )
  const pid = hct.pid!
  for (let i = 0; i < 100; i++) {
    await sleep(200)
    const up = await new Promise<boolean>((res) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy()
        res(true)
      })
      s.on("error", () => res(false))
    })
    if (up) break
  }
  await sleep(500)
  const load = async (seconds: number): Promise<{ units: number; seconds: number }> => {
    if (tunnel) {
      const r = await runJson(
        gen,
        [
          "rate",
          "--target",
          `127.0.0.1:${echo!.ports.join(",")}`,
          "--proxy",
          `127.0.0.1:${port}`,
          "--clients",
          opt.clients!,
          "--duration-ms",
          String(seconds * 1000),
        ],
        { timeoutMs: seconds * 1000 + 30_000 },
      )
      if (Number(r.last["errors"]) > 0) log(`  errors: ${String(r.last["errors"])}, first ${String(r.last["firstError"])}`)
      return { units: Number(r.last["tunnels"]), seconds: Number(r.last["seconds"]) }
    }
    const n = Math.round((Number(opt.requests) * seconds) / Number(opt.seconds))
    const r = await runJson(
      gen,
      [
        "latency",
        "--origin",
        `127.0.0.1:${Number(origin!.hello["http"])}`,
        "--proxy",
        `127.0.0.1:${port}`,
        ...(opt.tunnel ? ["--tunnel"] : []),
        "--requests",
        String(n),
      ],
      { timeoutMs: 200_000 },
    )
    log(`  p50 ${String(r.last["p50Us"])} µs, p99 ${String(r.last["p99Us"])} µs`)
    return { units: Number(r.last["requests"]), seconds: Number(r.last["seconds"]) }
  }
  log(`load average ${loadAverage()}; warm-up ${opt["warmup-seconds"]} s`)
  await load(Number(opt["warmup-seconds"]))
  const t0 = Number(process.hrtime.bigint() / 1000n)
  const c0 = userSystem(pid)
  const l0 = loadAverage()
  const measured = await load(Number(opt.seconds))
  const c1 = userSystem(pid)
  const t1 = Number(process.hrtime.bigint() / 1000n)
  const per = (s: number): string => ((s / measured.units) * 1e6).toFixed(1)
  log(
    `measured (load average ${l0}): ${measured.units} ${tunnel ? "tunnels" : "requests"} in ${measured.seconds.toFixed(2)} s; ` +
      `proxy CPU ${per(c1.user - c0.user + c1.system - c0.system)} µs per unit (user ${per(c1.user - c0.user)}, system ${per(c1.system - c0.system)}; /proc, all threads)`,
  )
  hct.kill("SIGINT")
  await new Promise((r) => hct.once("exit", r))
  echo?.stop()
  origin?.cp.kill()
  if (opt["no-profile"]) process.exit(0)
  const window: Window = { t0, t1, units: measured.units, workload: tunnel ? "tunnel" : "request" }
  writeFileSync(join(dir, "window.json"), JSON.stringify(window) + "\n")
  return window
}

const dir = opt.analyze ?? opt.keep ?? mkdtempSync(join(os.tmpdir(), "hctunnel-profile-"))
const {
  t0,
  t1,
  units: unit,
  workload,
} = opt.analyze === undefined ? await profileRun(dir) : (JSON.parse(readFileSync(join(dir, "window.json"), "utf8")) as Window)

// ------------------------------------------------------------------ analysis

interface Frame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: Frame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const short = (f: Frame): string => {
  const file = f.url.replace(/^file:\/\/.*\/(src|node_modules)\//, "").replace(/^node:/, "node:")
  return `${f.functionName || "(anonymous)"} ${file}`
}

type Rule = readonly [name: string, test: (f: Frame) => boolean]
const inFile = (re: RegExp) => (f: Frame) => re.test(f.url)
const named = (re: RegExp, file?: RegExp) => (f: Frame) => re.test(f.functionName) && (file === undefined || file.test(f.url))

/** What the thread was doing: the innermost frame that matches names it. */
const native = (re: RegExp) => (f: Frame) => f.url === "" && re.test(f.functionName)
const STEPS: ReadonlyArray<Rule> = [
  ["gc", named(/^\(garbage collector\)$/)],
  [
    "syscall: write (loopback: the peer's receive too)",
    native(/^(writeBuffer|writev|writeLatin1String|writeUtf8String|writeAsciiString)$/),
  ],
  ["syscall: close", native(/^close$/)],
  ["syscall: shutdown (FIN)", native(/^shutdown$/)],
  ["syscall: connect (loopback handshake)", named(/^internalConnect$/, /^node:net$/)],
  ["syscall: getpeername", named(/^_getpeername$|^Socket\._getpeername$/)],
  ["syscall: accept + new socket (onconnection)", named(/^onconnection$/, /^node:net$/)],
  ["hctunnel: access log", inFile(/AccessLog\.ts$/)],
  ["hctunnel: metrics", inFile(/Metrics\.ts$/)],
  ["hctunnel: deadlines", inFile(/Deadlines\.ts$/)],
  ["hctunnel: connection limits (shared table)", inFile(/(ConnectionLimits|SharedLimits)\.ts$/)],
  ["hctunnel: allow-list", inFile(/Allow\.ts$|Cidr\.ts$/)],
  ["hctunnel: destination policy", inFile(/Destination(Policy|Rules)\.ts$/)],
  ["hctunnel: resolve", inFile(/Resolver\.ts$/)],
  ["hctunnel: core, parse", inFile(/src\/core\/http\//)],
  ["hctunnel: core, state machine", inFile(/src\/core\//)],
  ["hctunnel: adapter (Connection, ProxyServer, pool, read arena)", inFile(/src\/runtime\//)],
  ["node: streams (Readable/Writable state)", inFile(/^node:internal\/streams\//)],
  ["node: stream_base glue (read/write wrappers)", inFile(/stream_base_commons/)],
  ["node: net.Socket (connect, destroy, options)", inFile(/^node:net$/)],
  ["node: events (emit, listeners)", inFile(/^node:events$/)],
  ["node: nextTick, async hooks", inFile(/task_queues|async_hooks/)],
  ["node: buffers", inFile(/^node:buffer$|internal\/buffer/)],
  ["node: other", inFile(/^node:/)],
  ["native: other (no JS frame)", (f: Frame) => f.url === "" && !/^\(/.test(f.functionName)],
  ["(program): native, event loop", named(/^\(program\)$/)],
]

/** Which event the thread was handling: the outermost frame that matches names it. */
const PHASES: ReadonlyArray<Rule> = [
  ["limits release", named(/^release$/, /ConnectionLimits/)],
  ["accept", named(/^(onconnection|accept)$/)],
  ["origin connected (200)", named(/^(afterConnect|originConnect|onOriginConnect)$/)],
  ["dial deferred (nextTick connect)", named(/^(internalConnect)$/)],
  ["origin read (echo)", named(/^(onOriginRead|originRead)$/)],
  ["client read (CONNECT, payload)", named(/^(onClientData|clientData|onClientRead)$/)],
  ["end (FIN)", named(/^(onReadableStreamEnd|onClientEnd|onOriginEnd|endReadableNT|clientEnd|originEnd|onEofChunk)$/)],
  ["close", named(/^(emitCloseNT|onClientClose|onOriginClose|destroy|_destroy|close|done)$/)],
  ["timers", named(/^(processTimers|listOnTimeout|onDeadline)$/)],
  ["gc", named(/^\(garbage collector\)$/)],
  ["(program)", named(/^\(program\)$/)],
]

const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))
const steps = new Map<string, number>()
const phases = new Map<string, number>()
const leaves = new Map<string, number>()
let total = 0
for (const file of files) {
  const p = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const stackOf = (id: number): Frame[] => {
    const out: Frame[] = []
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) out.push(byId.get(x)!.callFrame)
    return out // innermost first
  }
  let t = p.startTime
  let threadTotal = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0
    t += dt
    if (t < t0 || t > t1) continue
    const node = byId.get(p.samples[i]!)!
    if (node.callFrame.functionName === "(idle)") continue
    const stack = stackOf(node.id)
    // The sample stands for the time since the previous one.
    const w = p.timeDeltas[i + 1] ?? dt
    threadTotal += w
    // Innermost matching rule wins: find, for each rule, the depth of its first match; the smallest depth names the step.
    let best = "other"
    let bestDepth = Infinity
    for (const [name, test] of STEPS) {
      const d = stack.findIndex(test)
      if (d >= 0 && d < bestDepth) {
        bestDepth = d
        best = name
      }
    }
    steps.set(best, (steps.get(best) ?? 0) + w)
    let phase = "other"
    for (let d = stack.length - 1; d >= 0 && phase === "other"; d--) {
      const hit = PHASES.find(([, test]) => test(stack[d]!))
      if (hit !== undefined) phase = hit[0]
    }
    // Not inside a named event: say which container ran it (a nextTick, a read callback...).
    if (phase === "other") phase = `other: in ${short(stack[Math.max(0, stack.length - 2)]!)}`
    phases.set(phase, (phases.get(phase) ?? 0) + w)
    const leaf = short(stack[0]!)
    leaves.set(leaf, (leaves.get(leaf) ?? 0) + w)
  }
  total += threadTotal
  log(`${file}: ${(threadTotal / 1e6).toFixed(3)} s busy in the measured window`)
}
const show = (title: string, m: Map<string, number>, top = 40): void => {
  log(`\n${title} (µs per ${workload}; all threads; ${(total / unit).toFixed(1)} µs in all)`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    log(`  ${(v / unit).toFixed(2).padStart(8)}  ${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
}
show("steps", steps)
show("phases", phases)
show("leaf functions", leaves, 45)
log(`\nprofiles in ${dir}`)
if (opt.json !== undefined) {
  const per = (m: Map<string, number>) => Object.fromEntries([...m].map(([k, v]) => [k, v / unit]))
  writeFileSync(
    opt.json,
    JSON.stringify({ workload, units: unit, usPerUnit: total / unit, steps: per(steps), phases: per(phases) }, null, 1) + "\n",
  )
}
process.exit(0)
