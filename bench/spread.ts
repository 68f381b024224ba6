/**
 * 8 tunnels through hctunnel (dist/cli.js) with W workers: how the kernel's reusePort hash spread them,
 * seen as each thread's CPU during the transfer (/proc/PID/task), and the aggregate MB/s; N runs each.
 * Loopback only. Used for docs/performance.md "Round two".
 *
 *   node bench/spread.ts RUNS BYTES WORKERS...      e.g. node bench/spread.ts 7 2147483648 2 3 4
 */
import { spawn } from "node:child_process"
import { readFileSync, readdirSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { runNode } from "./lib/children.ts"
import { clockTicks } from "./lib/proc.ts"
import { freePort } from "./lib/wire.ts"
const wt = resolve(dirname(fileURLToPath(import.meta.url)), ".."),
  node = process.execPath
const [runsS, bytesS, ...ws] = process.argv.slice(2)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const threads = (pid: number): Map<string, number> => {
  const m = new Map<string, number>()
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8")
      const r = st.slice(st.lastIndexOf(")") + 2).split(" ")
      m.set(t, (Number(r[11]) + Number(r[12])) / clockTicks())
    } catch {}
  }
  return m
}
const origin = spawn(node, [`${wt}/bench/origin.ts`], { stdio: ["pipe", "pipe", "inherit"] })
const hello = await new Promise<{ readonly [key: string]: number }>((res) =>
  origin.stdout!.once("data", (d) => res(JSON.parse(String(d).split("\n")[0]!))),
)
for (const w of ws) {
  const port = await freePort()
  const cp = spawn(node, [`${wt}/dist/cli.js`, "--listen", `127.0.0.1:${port}`, "--workers", w, "--log-level", "none"], {
    stdio: ["pipe", "inherit", "inherit"],
  })
  await sleep(2500)
  const rows: string[] = []
  const rates: number[] = []
  for (let r = 0; r < Number(runsS); r++) {
    const t0 = threads(cp.pid!)
    const j = (
      await runNode(
        `${wt}/bench/gen/bulk.ts`,
        [
          "--target",
          `127.0.0.1:${hello.bulk}`,
          "--proxy",
          `127.0.0.1:${port}`,
          "--tunnels",
          "8",
          "--bytes",
          bytesS!,
          "--dir",
          "down",
          "--deadline-ms",
          "100000",
        ],
        { timeoutMs: 120_000 },
      )
    ).last as { bytes: number; seconds: number }
    const t1 = threads(cp.pid!)
    const busy = [...t1]
      .map(([t, c]) => c - (t0.get(t) ?? 0))
      .filter((c) => c > 0.05)
      .sort((a, b) => b - a)
    const mbs = j.bytes / j.seconds / 1e6
    rates.push(mbs)
    rows.push(`${mbs.toFixed(0)} MB/s threads-CPU [${busy.map((c) => c.toFixed(2)).join(" ")}]`)
  }
  rates.sort((a, b) => a - b)
  console.log(`workers ${w}: median ${rates[rates.length >> 1]!.toFixed(0)} MB/s  | ${rows.join(" | ")}`)
  cp.kill("SIGTERM")
  await sleep(800)
}
origin.kill()
process.exit(0)
