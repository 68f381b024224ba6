/**
 * RSS of idle tunnels as their number grows: one proxy (hctunnel's dist/cli.js with --log-level none, or the
 * minimal Node relay), one generator (bench/gen/idle.ts) that opens tunnels to the echo origin in steps and
 * holds them; the proxy's VmRSS 2 s after each step. The slope between steps is the memory an idle tunnel
 * keeps once the first burst has grown the heaps. Loopback only. Used for docs/performance.md "Round three".
 *
 *   node bench/idle-curve.ts [--proxy hctunnel|node-relay] [--steps 1000,2000,5000,9000]
 */
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { buildTunnelgen, startEcho } from "./lib/cgen.ts"
import { installCleanup, runJson, startJson, stop } from "./lib/children.ts"
import { startPeer } from "./lib/peers.ts"
import { cpuSeconds, loadAverage, rssKiB } from "./lib/proc.ts"
import { freePort } from "./lib/wire.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "..")
const { values: opt } = parseArgs({
  options: { proxy: { type: "string", default: "hctunnel" }, steps: { type: "string", default: "1000,2000,5000,9000" } },
})
const log = (s: string): void => void process.stdout.write(s + "\n")
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
installCleanup()

const gen = buildTunnelgen(here, log)
if (gen === undefined) process.exit(2)
const echo = await startEcho(gen, 1)
let pid: number
let port: number
let stopProxy: () => Promise<void>
if (opt.proxy === "node-relay") {
  const p = (await startPeer("node-relay", { here, freePort, log }))!
  ;({ pid } = p)
  port = p.ep.port
  stopProxy = p.stop
} else {
  port = await freePort()
  const g = await startJson(
    process.execPath,
    [
      join(here, "lib", "guard.ts"),
      "bash",
      "-c",
      'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
      process.execPath,
      join(root, "dist", "cli.js"),
      "--listen",
      `127.0.0.1:${port}`,
      "--workers",
      "2",
      "--log-level",
      "none",
    ],
    10_000,
  )
  pid = Number(g.hello["pid"])
  stopProxy = () => stop(g.cp, 5000)
}
const settle = async (): Promise<void> => {
  let last = cpuSeconds(pid)
  for (let quiet = 0, i = 0; quiet < 3 && i < 60; i++) {
    await sleep(250)
    const now = cpuSeconds(pid)
    quiet = now - last < 0.01 ? quiet + 1 : 0
    last = now
  }
}
await sleep(1500)
await settle()
const steps = opt.steps!.split(",").map(Number)
const rows: Array<{ n: number; mb: number }> = [{ n: 0, mb: rssKiB(pid) / 1024 }]
log(`${opt.proxy}: load average ${loadAverage()}; fresh RSS ${rows[0]!.mb.toFixed(1)} MB`)
let step = 0
await runJson(
  process.execPath,
  [
    join(here, "gen", "idle.ts"),
    "--target",
    `127.0.0.1:${echo.ports[0]}`,
    "--proxy",
    `127.0.0.1:${port}`,
    "--count",
    String(steps[0]),
    "--deadline-ms",
    "600000",
  ],
  {
    timeoutMs: 620_000,
    onMessage: (msg, cp) => {
      if (msg["ready"] !== true) return
      void (async () => {
        await sleep(2000)
        await settle()
        const n = Number(msg["open"])
        const mb = rssKiB(pid) / 1024
        const prev = rows[rows.length - 1]!
        rows.push({ n, mb })
        log(
          `${String(n).padStart(6)} tunnels: RSS ${mb.toFixed(1)} MB; since ${prev.n}: ${(((mb - prev.mb) * 1024 * 1024) / (n - prev.n)).toFixed(0)} B per tunnel` +
            (Number(msg["failed"]) > 0 ? ` (${String(msg["failed"])} failed)` : ""),
        )
        step++
        if (step < steps.length) cp.stdin?.write(`more ${steps[step]! - steps[step - 1]!}\n`)
        else cp.stdin?.write("close\n")
      })()
    },
  },
)
const first = rows[1]!
const last = rows[rows.length - 1]!
log(`slope ${first.n} -> ${last.n}: ${(((last.mb - first.mb) * 1024 * 1024) / (last.n - first.n)).toFixed(0)} B per idle tunnel`)
await stopProxy()
echo.stop()
process.exit(0)
