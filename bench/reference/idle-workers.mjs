/**
 * idle-workers.mjs: Node with N worker threads that run nothing but an open handle, the floor of the bench's
 * start-RSS row (hctunnel's main thread plus its workers). Prints {"ready":true} once every worker is online.
 * Usage: node bench/reference/idle-workers.mjs [WORKERS=2]
 */
import { Worker } from "node:worker_threads"

const n = Number(process.argv[2] ?? "2")
let online = 0
for (let i = 0; i < n; i++) {
  new Worker("setInterval(() => {}, 1 << 30)", { eval: true }).once("online", () => {
    if (++online === n) process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + "\n")
  })
}
process.stdin.on("data", () => {}).on("end", () => process.exit(0))
