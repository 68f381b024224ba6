/**
 * Fresh RSS, and what each part of a worker costs: starts each configuration a few times (one at a time, each
 * alone on loopback), waits until it is quiet, and reads VmRSS of the process. Configurations:
 *   hctunnel with 1 and 2 workers (dist/cli.js, --log-level none), Node with 2 idle workers, and Node with 2
 *   workers that import hctunnel's worker chunks cumulatively (bench/reference/load-workers.mjs), so the
 *   difference between two rows is what one more chunk costs two workers.
 * Used for docs/performance.md "Round three".
 *
 *   node bench/rss.ts [--starts 3]
 */
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { installCleanup, startJson, stop } from "./lib/children.ts"
import { cpuSeconds, loadAverage, rssKiB } from "./lib/proc.ts"
import { median } from "./lib/stats.ts"
import { freePort } from "./lib/wire.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "..")
const dist = join(root, "dist")
const { values: opt } = parseArgs({ options: { starts: { type: "string", default: "3" } } })
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
installCleanup()

/** Quiet: under 10 ms CPU per 250 ms, three times in a row (at most 15 s). */
const settle = async (pid: number): Promise<void> => {
  let quiet = 0
  let last = cpuSeconds(pid)
  for (let i = 0; i < 60 && quiet < 3; i++) {
    await sleep(250)
    const now = cpuSeconds(pid)
    quiet = now - last < 0.01 ? quiet + 1 : 0
    last = now
  }
}

const chunk = (name: string): string => join(dist, `worker-${name}.js`)
const configs: ReadonlyArray<{ label: string; start: () => Promise<{ pid: number; stop: () => Promise<void> }> }> = [
  ...[1, 2].map((w) => ({
    label: `hctunnel, ${w} worker${w > 1 ? "s" : ""}`,
    start: async () => {
      const port = await freePort()
      const g = await startJson(
        process.execPath,
        [
          join(here, "lib", "guard.ts"),
          process.execPath,
          join(dist, "cli.js"),
          "--listen",
          `127.0.0.1:${port}`,
          "--workers",
          String(w),
          "--log-level",
          "none",
        ],
        10_000,
      )
      await sleep(1500)
      return { pid: Number(g.hello["pid"]), stop: () => stop(g.cp, 5000) }
    },
  })),
  ...[
    ["node, no worker", [], 0],
    // The main thread's libraries, cumulatively (each row imports the chunks of the rows above it too).
    ...["internal", "schema", "effect", "cli", "platform"].map((_c, i, all) => [
      `main thread imports main-${all.slice(0, i + 1).join(",")}.js`,
      all.slice(0, i + 1).map((x) => join(dist, `main-${x}.js`)),
      0,
    ]),
    ["node, 2 idle workers (4 MB young generation)", []],
    ["+ a listening socket and a c-ares resolver each", ["@listen", "@dns"]],
    ["+ worker-internal.js (Effect core)", [chunk("internal")]],
    ["+ worker-schema.js (Schema, via WorkerError)", [chunk("internal"), chunk("schema")]],
    ["+ worker-effect.js, worker-platform.js (runner)", [chunk("internal"), chunk("schema"), chunk("effect"), chunk("platform")]],
    ["+ both of the above", ["@listen", "@dns", chunk("internal"), chunk("schema"), chunk("effect"), chunk("platform")]],
  ].map(([label, modules, workers = 2]) => ({
    label: label as string,
    start: async () => {
      const p = await startJson(
        process.execPath,
        [join(here, "reference", "load-workers.mjs"), String(workers), ...(modules as string[])],
        10_000,
      )
      return { pid: Number(p.hello["pid"]), stop: () => stop(p.cp, 2000) }
    },
  })),
]

process.stdout.write(`load average ${loadAverage()}\n`)
for (const c of configs) {
  const samples: number[] = []
  for (let i = 0; i < Number(opt.starts); i++) {
    const p = await c.start()
    await settle(p.pid)
    samples.push(rssKiB(p.pid) / 1024)
    await p.stop()
  }
  process.stdout.write(`${c.label.padEnd(52)} ${median(samples).toFixed(1)} MB  [${samples.map((s) => s.toFixed(1)).join(" ")}]\n`)
}
process.exit(0)
