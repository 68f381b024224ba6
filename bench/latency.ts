/**
 * One request's round trip, and what a relay that parses nothing adds: in alternating rounds (order reversed
 * every other round), the C generator (bench/gen/tunnelgen.c latency) sends GET /small one at a time on one
 * kept-alive connection
 *   direct                 to the origin (bench/origin.ts);
 *   hctunnel               through hctunnel, absolute-form (what the bench's latency row measures);
 *   hctunnel-tunnel        through a CONNECT tunnel of hctunnel (it relays bytes only);
 *   node-relay-tunnel      through a CONNECT tunnel of bench/reference/relay.mjs;
 *   c-relay-tunnel         through a CONNECT tunnel of bench/reference/relay.c (threads, blocking IO);
 * and prints p50/p99 per round, the medians, each one ÷ direct, and the proxy's CPU per request.
 * Extra hctunnel flags after `--` (e.g. -- --log-level info). Loopback only.
 * Used for docs/performance.md "Round three".
 *
 *   node bench/latency.ts [--rounds 5] [--requests 5000] [--workers 2] [-- hctunnel flags]
 */
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { buildTunnelgen } from "./lib/cgen.ts"
import { installCleanup, runJson, startJson, stop } from "./lib/children.ts"
import { startPeer } from "./lib/peers.ts"
import { cpuSeconds, loadAverage } from "./lib/proc.ts"
import { median } from "./lib/stats.ts"
import { freePort } from "./lib/wire.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "..")
const { values: opt, positionals } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    requests: { type: "string", default: "5000" },
    workers: { type: "string", default: "2" },
  },
  allowPositionals: true,
})
const log = (s: string): void => void process.stdout.write(s + "\n")
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
installCleanup()

const gen = buildTunnelgen(here, log)
if (gen === undefined) process.exit(2)
const origin = await startJson(process.execPath, [join(here, "origin.ts")], 10_000)
const http = `127.0.0.1:${Number(origin.hello["http"])}`
const hport = await freePort()
const guard = await startJson(
  process.execPath,
  [
    join(here, "lib", "guard.ts"),
    process.execPath,
    join(root, "dist", "cli.js"),
    "--listen",
    `127.0.0.1:${hport}`,
    "--workers",
    opt.workers!,
    "--log-level",
    "none",
    ...positionals,
  ],
  10_000,
)
const hpid = Number(guard.hello["pid"])
const ctx = { here, freePort, log }
const nodeRelay = await startPeer("node-relay", ctx)
const cRelay = await startPeer("c-relay", ctx)
await sleep(2500)

interface Mode {
  readonly name: string
  readonly args: ReadonlyArray<string>
  readonly pid?: number
}
const modes: Mode[] = [
  { name: "direct", args: [] },
  { name: "hctunnel", args: ["--proxy", `127.0.0.1:${hport}`], pid: hpid },
  { name: "hctunnel-tunnel", args: ["--proxy", `127.0.0.1:${hport}`, "--tunnel"], pid: hpid },
  ...(nodeRelay === undefined
    ? []
    : [{ name: "node-relay-tunnel", args: ["--proxy", `127.0.0.1:${nodeRelay.ep.port}`, "--tunnel"], pid: nodeRelay.pid }]),
  ...(cRelay === undefined
    ? []
    : [{ name: "c-relay-tunnel", args: ["--proxy", `127.0.0.1:${cRelay.ep.port}`, "--tunnel"], pid: cRelay.pid }]),
]
const p50 = new Map<string, number[]>()
const p99 = new Map<string, number[]>()
const cpu = new Map<string, number[]>()
const one = async (m: Mode, requests: number) => {
  const c0 = m.pid === undefined ? 0 : cpuSeconds(m.pid)
  const r = await runJson(gen, ["latency", "--origin", http, ...m.args, "--requests", String(requests)], { timeoutMs: 300_000 })
  const c1 = m.pid === undefined ? 0 : cpuSeconds(m.pid)
  return { p50: Number(r.last["p50Us"]), p99: Number(r.last["p99Us"]), cpuUs: ((c1 - c0) / (requests + 200)) * 1e6 }
}
for (const m of modes) await one(m, 1000) // warm-up
for (let round = 0; round < Number(opt.rounds); round++) {
  const order = round % 2 === 0 ? modes : [...modes].reverse()
  const line: string[] = []
  for (const m of order) {
    const r = await one(m, Number(opt.requests))
    ;(p50.get(m.name) ?? p50.set(m.name, []).get(m.name)!).push(r.p50)
    ;(p99.get(m.name) ?? p99.set(m.name, []).get(m.name)!).push(r.p99)
    if (m.pid !== undefined) (cpu.get(m.name) ?? cpu.set(m.name, []).get(m.name)!).push(r.cpuUs)
    line.push(`${m.name} ${r.p50.toFixed(0)}/${r.p99.toFixed(0)}`)
  }
  log(`round ${round + 1} (load ${loadAverage()}): ${line.join("  ")}`)
}
const d = median(p50.get("direct")!)
log("\nmode                  p50 µs   ÷ direct   + direct   p99 µs   proxy CPU µs/request (the process, all threads)")
for (const m of modes) {
  const a = median(p50.get(m.name)!)
  const c = cpu.get(m.name)
  log(
    `${m.name.padEnd(20)} ${a.toFixed(1).padStart(7)}  ${(a / d).toFixed(2).padStart(8)}  ${(a - d).toFixed(1).padStart(8)}  ${median(p99.get(m.name)!).toFixed(0).padStart(7)}   ${c === undefined ? "-" : median(c).toFixed(1)}`,
  )
}
await stop(guard.cp, 5000)
await nodeRelay?.stop()
await cRelay?.stop()
process.exit(0)
