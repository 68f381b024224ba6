/**
 * Requests per second through an embedded proxy whose route hook picks a parent proxy for every request,
 * against proxy-chain 3 with the same prepareRequestFunction (docs/performance.md "The library against
 * proxy-chain"). Everything on 127.0.0.1: the origin (bench/origin.ts, 100-byte responses), one parent
 * (an embedded hctunnel without hooks), and in turn each front proxy under test (bench/library-front.ts, a
 * process of its own), loaded by wrk with keep-alive connections sending absolute-form GETs. Rounds
 * alternate the fronts (A B C, then B C A...), each after a short warm-up; the table has the median.
 *
 * proxy-chain is a dependency of the bench only: npm install --prefix bench/compare (first time).
 * Usage: npm run build && node bench/library-rps.ts [--rounds 3] [--seconds 10] [--clients 50]
 */
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { installCleanup, runJson, startJson, stop } from "./lib/children.ts"
import { cpuSeconds, loadAverage } from "./lib/proc.ts"
import { median } from "./lib/stats.ts"
import { flags } from "./lib/wire.ts"

const here = dirname(fileURLToPath(import.meta.url))
const args = flags(process.argv.slice(2))
const rounds = Number(args.get("rounds") ?? "3")
const seconds = Number(args.get("seconds") ?? "10")
const clients = Number(args.get("clients") ?? "50")

const need = (path: string, hint: string) => {
  if (!existsSync(path)) {
    process.stderr.write(`${hint}\n`)
    process.exit(1)
  }
}
need(join(here, "../dist/index.js"), "dist/index.js is missing: npm run build")
need(join(here, "compare/node_modules/proxy-chain"), "proxy-chain is missing: npm install --prefix bench/compare")
installCleanup()

const fronts = [
  { name: "hctunnel, route hook, 2 workers", args: ["--kind", "hctunnel", "--workers", "2"] },
  { name: "hctunnel, route hook, 1 worker", args: ["--kind", "hctunnel", "--workers", "1"] },
  { name: "proxy-chain 3.0.1, prepareRequestFunction", args: ["--kind", "proxy-chain"] },
] as const

const origin = await startJson(process.execPath, [join(here, "origin.ts")], 30_000)
const originPort = Number(origin.hello["http"])
const parent = await startJson(process.execPath, [join(here, "library-front.ts"), "--kind", "parent", "--workers", "2"], 60_000)
const parentUrl = `http://127.0.0.1:${Number(parent.hello["port"])}`

const lua = join(here, "wrk", "small.lua")
const wrk = async (port: number, secs: number) => {
  const r = await runJson(
    "wrk",
    [
      "-t1",
      `-c${clients}`,
      `-d${secs}s`,
      "--timeout",
      "5s",
      "-s",
      lua,
      `http://127.0.0.1:${port}/`,
      "--",
      `http://127.0.0.1:${originPort}/small`,
      `127.0.0.1:${originPort}`,
    ],
    { timeoutMs: (secs + 30) * 1000 },
  )
  const n = (k: string) => Number(r.last[k] ?? 0)
  return {
    rps: n("requests") / (n("durationUs") / 1e6),
    errors: n("connectErrors") + n("readErrors") + n("writeErrors") + n("statusErrors") + n("timeouts"),
  }
}

const results = new Map<string, Array<{ rps: number; cpu: number; errors: number }>>()
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < fronts.length; i++) {
    const front = fronts[(i + round) % fronts.length]!
    const child = await startJson(process.execPath, [join(here, "library-front.ts"), ...front.args, "--parent", parentUrl], 60_000)
    const port = Number(child.hello["port"])
    await wrk(port, 2) // warm-up: the JIT compiles the request path
    const cpu0 = cpuSeconds(Number(child.hello["pid"]))
    const r = await wrk(port, seconds)
    const cpu = cpuSeconds(Number(child.hello["pid"])) - cpu0
    await stop(child.cp)
    const list = results.get(front.name) ?? []
    list.push({ rps: r.rps, cpu, errors: r.errors })
    results.set(front.name, list)
    process.stderr.write(`round ${round + 1} ${front.name}: ${Math.round(r.rps)} req/s, ${cpu.toFixed(1)} CPU-s, ${r.errors} errors\n`)
  }
}
await stop(parent.cp)
await stop(origin.cp)

const baseline = median((results.get(fronts[2].name) ?? []).map((r) => r.rps))
process.stdout.write(
  `\nload average ${loadAverage()}; ${clients} keep-alive connections (wrk), ${seconds} s per round, ${rounds} rounds\n\n`,
)
process.stdout.write(
  "| front proxy | requests/s (median) | rounds | front CPU-s per 10k requests | errors | vs proxy-chain |\n|---|---|---|---|---|---|\n",
)
for (const front of fronts) {
  const list = results.get(front.name) ?? []
  const rps = median(list.map((r) => r.rps))
  const cpuPer10k = median(list.map((r) => (r.cpu / (r.rps * seconds)) * 10_000))
  const errors = list.reduce((a, r) => a + r.errors, 0)
  process.stdout.write(
    `| ${front.name} | ${Math.round(rps)} | ${list.map((r) => Math.round(r.rps)).join(", ")} | ${cpuPer10k.toFixed(2)} | ${errors} | ${(rps / baseline).toFixed(2)}x |\n`,
  )
}
