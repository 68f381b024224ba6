/**
 * Bytes allocated on the V8 heap per new tunnel, by the function that allocated them: one ProxyServer (src/,
 * what one worker thread runs, with the defaults' connection limits and --log-level none) in this process,
 * loaded by the C generator (bench/gen/tunnelgen.c) from another process, under V8's sampling heap
 * profiler with the objects later collected kept in the profile (so it counts what was allocated, not what
 * is still alive). Allocation counts do not depend on how busy the machine is. Loopback only.
 * Used for docs/performance.md "Round three".
 *
 *   node bench/alloc.ts [--seconds 5] [--interval 256] [--clients 50] [--top 40] [--callers nextTick,emit] [--relay]
 * --relay measures the minimal Node relay (the code of bench/reference/relay.mjs, run in this process) instead.
 */
import { Session } from "node:inspector/promises"
import net from "node:net"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { defaultLimits } from "../src/core/limits.ts"
import { makeConnectionLimits } from "../src/runtime/access/ConnectionLimits.ts"
import { ProxyServer } from "../src/runtime/ProxyServer.ts"
import { buildTunnelgen, startEcho } from "./lib/cgen.ts"
import { installCleanup, runJson } from "./lib/children.ts"

const here = dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    interval: { type: "string", default: "256" },
    clients: { type: "string", default: "50" },
    top: { type: "string", default: "40" },
    /** Also list who called these allocating functions (comma-separated names, e.g. nextTick,emit). */
    callers: { type: "string" },
    /** The minimal Node relay's code (bench/reference/relay.mjs, in this process) instead of hctunnel. */
    relay: { type: "boolean", default: false },
  },
})
const log = (s: string): void => void process.stdout.write(s + "\n")
installCleanup()

const gen = buildTunnelgen(here, log)
if (gen === undefined) process.exit(2)
const echo = await startEcho(gen, 4)
/** bench/reference/relay.mjs's worker, in this process. */
const startRelay = (): Promise<{ port: number; close: () => void }> =>
  new Promise((resolve) => {
    const s = net.createServer({ noDelay: true }, (client) => {
      client.once("data", (head: Buffer) => {
        const m = /^CONNECT (\d+\.\d+\.\d+\.\d+):(\d+) /.exec(head.toString("latin1"))
        if (m === null) return void client.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        const origin = net.connect({ host: m[1]!, port: Number(m[2]), noDelay: true }, () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
          client.pipe(origin).pipe(client)
        })
        origin.on("error", () => client.destroy())
        client.on("error", () => origin.destroy())
      })
    })
    s.listen({ host: "127.0.0.1", port: 0 }, () => resolve({ port: (s.address() as net.AddressInfo).port, close: () => s.close() }))
  })

const startProxy = async (): Promise<{ port: number; close: () => void }> => {
  const server = new ProxyServer(
    {
      id: 0,
      listen: [{ host: "127.0.0.1", port: 0 }],
      reusePort: false,
      limits: defaultLimits,
      via: "hctunnel",
      allow: ["127.0.0.0/8", "::1/128"],
      logFormat: "text",
      logLevel: "none",
      hosts: {},
      statsIntervalMs: 0,
      connectionLimits: makeConnectionLimits(20_000, 15_000, 1),
    },
    { write: () => {} },
  )
  const port = await new Promise<number>((resolve, reject) =>
    server.listen((r) => (r.ok ? resolve(r.addresses[0]!.port) : reject(new Error(r.message)))),
  )
  return { port, close: () => server.close() }
}
const proxy = opt.relay ? await startRelay() : await startProxy()
const port = proxy.port
const rate = (ms: number) =>
  runJson(
    gen,
    [
      "rate",
      "--target",
      `127.0.0.1:${echo.ports.join(",")}`,
      "--proxy",
      `127.0.0.1:${port}`,
      "--clients",
      opt.clients!,
      "--duration-ms",
      String(ms),
    ],
    { timeoutMs: ms + 30_000 },
  )
await rate(2000) // warm-up: JIT and pools

const session = new Session()
session.connect()
await session.post("HeapProfiler.startSampling", {
  samplingInterval: Number(opt.interval),
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
})
const r = await rate(Number(opt.seconds) * 1000)
const { profile } = (await session.post("HeapProfiler.stopSampling")) as unknown as { profile: { head: HeapNode } }
session.disconnect()
proxy.close()
echo.stop()

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<HeapNode>
}
const tunnels = Number(r.last["tunnels"])
const where = (f: HeapNode["callFrame"]): string =>
  `${f.functionName || "(anonymous)"} ${f.url.replace(/^file:\/\/.*\/(src|bench)\//, "")}${f.url.startsWith("file:") ? `:${f.lineNumber + 1}` : ""}`
const self = new Map<string, number>()
/** Bytes by the innermost frame of our own code (src/) on the allocating stack: who asked for it. */
const ours = new Map<string, number>()
/** For --callers: bytes by allocating function and the chain of three frames that called it. */
const callers = new Map<string, number>()
const wanted = new Set((opt.callers ?? "").split(",").filter((x) => x !== ""))
let total = 0
const walk = (n: HeapNode, stack: ReadonlyArray<HeapNode["callFrame"]>): void => {
  const s = [...stack, n.callFrame]
  if (n.selfSize > 0) {
    total += n.selfSize
    self.set(where(n.callFrame), (self.get(where(n.callFrame)) ?? 0) + n.selfSize)
    const own = [...s].reverse().find((f) => /\/src\//.test(f.url))
    const k = own === undefined ? "(not under our code: Node's own callbacks)" : where(own)
    ours.set(k, (ours.get(k) ?? 0) + n.selfSize)
    if (wanted.has(n.callFrame.functionName)) {
      const chain = s
        .slice(-4, -1)
        .reverse()
        .map((f) => where(f))
        .join(" < ")
      const key = `${n.callFrame.functionName} < ${chain}`
      callers.set(key, (callers.get(key) ?? 0) + n.selfSize)
    }
  }
  for (const c of n.children) walk(c, s)
}
walk(profile.head, [])
log(
  `${tunnels} tunnels in ${Number(r.last["seconds"]).toFixed(1)} s; ${(total / tunnels).toFixed(0)} B allocated per tunnel (sampled every ${opt.interval} B)`,
)
const show = (title: string, m: Map<string, number>): void => {
  log(`\n${title}`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(opt.top)))
    log(`  ${(v / tunnels).toFixed(0).padStart(6)} B  ${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
}
show("by allocating function (B per tunnel)", self)
show("by the innermost function of src/ on the stack (B per tunnel)", ours)
if (wanted.size > 0) show(`callers of ${[...wanted].join(", ")} (B per tunnel)`, callers)
process.exit(0)
