/**
 * A/B of hctunnel builds on one workload, in alternating rounds of one session (after a warm-up round):
 * proxy CPU (the process and its children) per 10k tunnels or requests, and the rate. Used for the
 * before/after figures of docs/performance.md "Round two"; every address is loopback.
 *
 *   node bench/ab.ts ROUNDS MS LABEL=CLI[,extra,flags] ...
 *   e.g. node bench/ab.ts 7 3000 main=/tmp/main/dist/cli.js,--log-level,none new=dist/cli.js,--log-level,none
 *   KIND=wrk node bench/ab.ts ...     (100 B requests through wrk instead of new tunnels)
 */
import { spawn } from "node:child_process"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { runJson, runNode } from "./lib/children.ts"
import { cpuSeconds } from "./lib/proc.ts"
import { median } from "./lib/stats.ts"
import { freePort } from "./lib/wire.ts"
const wt = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const node = process.execPath
const [roundsS, msS, ...variants] = process.argv.slice(2)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const origin = spawn(node, [`${wt}/bench/origin.ts`], { stdio: ["pipe", "pipe", "inherit"] })
const hello = await new Promise<{ readonly [key: string]: number }>((res) =>
  origin.stdout!.once("data", (d) => res(JSON.parse(String(d).split("\n")[0]!))),
)
const kind = process.env.KIND ?? "rate"
const procs: { label: string; port: number; pid: number; cp: ReturnType<typeof spawn> }[] = []
for (const v of variants) {
  const [label, spec] = v.split("=") as [string, string]
  const [cli, ...extra] = spec.split(",")
  const port = await freePort()
  const cp = spawn(
    "bash",
    ["-c", `ulimit -n 20000; exec ${node} ${cli} --listen 127.0.0.1:${port} --workers 2 ${extra.join(" ")} > /dev/null`],
    { stdio: ["pipe", "inherit", "inherit"] },
  )
  procs.push({ label, port, pid: cp.pid!, cp })
}
await sleep(2500)
const results: Record<string, number[]> = {}
const rates: Record<string, number[]> = {}
for (let r = -1; r < Number(roundsS); r++) {
  const order = r % 2 === 0 ? procs : [...procs].reverse()
  for (const p of order) {
    const c0 = cpuSeconds(p.pid)
    let n = 0,
      secs = 0
    if (kind === "rate") {
      const j = (
        await runNode(
          `${wt}/bench/gen/rate.ts`,
          ["--target", `127.0.0.1:${hello.echo}`, "--proxy", `127.0.0.1:${p.port}`, "--clients", "50", "--duration-ms", msS!],
          { timeoutMs: Number(msS) + 30_000 },
        )
      ).last as { tunnels: number; seconds: number }
      n = j.tunnels
      secs = j.seconds
    } else {
      const j = (
        await runJson(
          "bash",
          [
            "-c",
            `wrk -t1 -c50 -d${Number(msS) / 1000}s -s ${wt}/bench/wrk/small.lua http://127.0.0.1:${p.port}/ -- http://127.0.0.1:${hello.http}/small 127.0.0.1:${hello.http}`,
          ],
          { timeoutMs: Number(msS) + 30_000 },
        )
      ).last as {
        requests: number
        durationUs: number
      }
      n = j.requests
      secs = j.durationUs / 1e6
    }
    const cpu = cpuSeconds(p.pid) - c0
    if (r < 0) continue // warm-up round
    ;(results[p.label] ??= []).push(cpu / (n / 10000))
    ;(rates[p.label] ??= []).push(n / secs)
  }
}
for (const p of procs)
  console.log(
    `${p.label.padEnd(14)} CPU-s/10k median ${median(results[p.label]!).toFixed(3)} [${results[p.label]!.map((x) => x.toFixed(2)).join(" ")}]  rate ${median(rates[p.label]!).toFixed(0)}/s`,
  )
for (const p of procs) p.cp.kill("SIGTERM")
origin.kill()
await sleep(500)
process.exit(0)
