/**
 * One proxy of bench/library-rps.ts, in a process of its own, built as a program that embeds it would:
 *   --kind hctunnel      startProxy from dist/index.js with a route hook that sends every request to --parent
 *   --kind proxy-chain   proxy-chain 3's Server whose prepareRequestFunction does the same (bench/compare)
 *   --kind parent        startProxy without hooks: the parent both send their requests to
 * Listens on 127.0.0.1 (a free port), prints {"port": N} once it accepts, and closes when stdin closes.
 * Usage: node bench/library-front.ts --kind hctunnel --parent http://127.0.0.1:PORT [--workers 2]
 */
import { createRequire } from "node:module"
import { assertLoopback, flags } from "./lib/wire.ts"

const args = flags(process.argv.slice(2))
const kind = args.get("kind") ?? "hctunnel"
const parent = args.get("parent") ?? ""
const workers = Number(args.get("workers") ?? "2")
if (kind !== "parent") assertLoopback({ host: new URL(parent).hostname, port: Number(new URL(parent).port) })

let close: () => Promise<unknown>
let port: number
if (kind === "proxy-chain") {
  const require = createRequire(new URL("./compare/package.json", import.meta.url))
  const { Server } = (await import(require.resolve("proxy-chain"))) as {
    Server: new (options: Record<string, unknown>) => { listen(): Promise<void>; close(all: boolean): Promise<void>; port: number }
  }
  const server = new Server({ port: 0, host: "127.0.0.1", verbose: false, prepareRequestFunction: () => ({ upstreamProxyUrl: parent }) })
  await server.listen()
  port = server.port
  close = () => server.close(true)
} else {
  const library = (await import(new URL("../dist/index.js", import.meta.url).href)) as typeof import("../src/index.ts")
  // The hook is a data: URL, the same decision as proxy-chain's function: every request to the parent.
  const hooks = `data:text/javascript,${encodeURIComponent(`export const route = () => ({ upstream: ${JSON.stringify(parent)} })`)}`
  const proxy = await library.startProxy({
    workers,
    logLevel: "none",
    // The front and the parent are both hctunnel: each its own pseudonym, or the parent would see a loop.
    via: kind === "parent" ? "bench-parent" : "bench-front",
    ...(kind === "parent" ? {} : { hooks }),
  })
  port = Number(new URL(proxy.url).port)
  close = () => proxy.close(0)
}
process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`)
// The harness closing our stdin (or dying) ends us.
let closing = false
const end = () => {
  if (closing) return
  closing = true
  void close().finally(() => process.exit(0))
}
process.stdin.resume()
process.stdin.on("end", end)
process.stdin.on("close", end)
