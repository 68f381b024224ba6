/**
 * load-workers.mjs: Node with N worker threads that each import the given modules and then idle, to measure
 * what loading each of hctunnel's worker chunks costs in RSS (bench/rss.ts). Prints {"ready":true,"pid":..}
 * once every worker has imported everything; exits when stdin closes.
 * Usage: node bench/reference/load-workers.mjs WORKERS [MODULE_PATH | @listen | @dns ...]
 *   WORKERS 0: the main thread imports the modules (MODULE_PATHs only).
 *   @listen: the worker also listens on a loopback port (node:net server, reusePort, as hctunnel's do);
 *   @dns: it also makes a c-ares resolver (node:dns Resolver, as hctunnel's Resolver does).
 */
import { pathToFileURL } from "node:url"
import { Worker } from "node:worker_threads"

const [n = "2", ...modules] = process.argv.slice(2)
const urls = modules.map((m) => (m.startsWith("@") ? m : pathToFileURL(m).href))
const body = `const { parentPort, workerData } = require("node:worker_threads");
(async () => {
  for (const u of workerData) {
    if (u === "@listen") await new Promise((r) => require("node:net").createServer().listen({ host: "127.0.0.1", port: 0, reusePort: true }, r));
    else if (u === "@dns") globalThis.resolver = new (require("node:dns").Resolver)();
    else await import(u);
  }
  parentPort.postMessage("loaded");
  setInterval(() => {}, 1 << 30)
})()`
let loaded = 0
// No worker: the modules are imported by the main thread (what hctunnel's main thread loads).
if (Number(n) === 0) {
  for (const u of urls) await import(u)
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + "\n")
}
for (let i = 0; i < Number(n); i++) {
  const w = new Worker(body, { eval: true, workerData: urls, resourceLimits: { maxYoungGenerationSizeMb: 4 } })
  w.once("message", () => {
    if (++loaded === Number(n)) process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + "\n")
  })
  w.once("error", (e) => {
    process.stderr.write(`worker: ${e.message}\n`)
    process.exit(1)
  })
}
process.stdin.on("data", () => {}).on("end", () => process.exit(0))
