/**
 * What an idle tunnel keeps on the V8 heap, object by object: one ProxyServer (src/, what one worker runs,
 * --log-level none, the defaults' connection limits) in this process, N idle tunnels opened by
 * bench/gen/idle.ts from another process; a heap snapshot before and after (each after a full GC), and the
 * difference by constructor name, per tunnel. The heap does not depend on how busy the machine is.
 * Loopback only. Run with --expose-gc. Used for docs/performance.md "Round three".
 *
 *   node --expose-gc bench/idle-heap.ts [--tunnels 2000] [--top 30]
 */
import { Session } from "node:inspector/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { getHeapStatistics } from "node:v8"
import { defaultLimits } from "../src/core/limits.ts"
import { makeConnectionLimits } from "../src/runtime/access/ConnectionLimits.ts"
import { ProxyServer } from "../src/runtime/ProxyServer.ts"
import { buildTunnelgen, startEcho } from "./lib/cgen.ts"
import { installCleanup, runJson } from "./lib/children.ts"
import { rssKiB } from "./lib/proc.ts"

const here = dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({ options: { tunnels: { type: "string", default: "2000" }, top: { type: "string", default: "30" } } })
const log = (s: string): void => void process.stdout.write(s + "\n")
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  log("run with node --expose-gc")
  process.exit(2)
}
installCleanup()
const gen = buildTunnelgen(here, log)
if (gen === undefined) process.exit(2)
const echo = await startEcho(gen, 1)
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

/** Self size and count of every object in a heap snapshot, by constructor (node name) and type. */
const census = async (): Promise<Map<string, { count: number; bytes: number }>> => {
  gc()
  gc()
  const session = new Session()
  session.connect()
  const chunks: string[] = []
  session.on("HeapProfiler.addHeapSnapshotChunk", (m) => chunks.push(m.params.chunk))
  await session.post("HeapProfiler.takeHeapSnapshot", { reportProgress: false })
  session.disconnect()
  const snap = JSON.parse(chunks.join("")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } }
    nodes: number[]
    edges: number[]
    strings: string[]
  }
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const stride = fields.length
  const [iType, iName, iSize] = [fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")]
  const iEdges = fields.indexOf("edge_count")
  const eStride = snap.snapshot.meta.edge_fields.length
  const [eType, eName] = [snap.snapshot.meta.edge_fields.indexOf("type"), snap.snapshot.meta.edge_fields.indexOf("name_or_index")]
  const edgeTypes = snap.snapshot.meta.edge_types[0]
  const out = new Map<string, { count: number; bytes: number }>()
  let edge = 0
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const type = types[snap.nodes[i + iType]!]!
    const name = snap.strings[snap.nodes[i + iName]!]!
    const edges = snap.nodes[i + iEdges]!
    // A plain object is named by its first property names (which object literal made it).
    let props = ""
    if (type === "object" && (name === "Object" || name === "Array")) {
      const names: string[] = []
      for (let e = edge; e < edge + edges * eStride && names.length < 4; e += eStride) {
        const t = edgeTypes[snap.edges[e + eType]!]
        if (t === "property" || t === "element") names.push(t === "property" ? snap.strings[snap.edges[e + eName]!]! : "[i]")
      }
      props = ` {${names.join(",")}}`
    }
    edge += edges * eStride
    // Strings and code by type only (their names are their contents); objects by constructor.
    const key = type === "object" || type === "closure" ? `${type} ${name}${props}` : type
    const e = out.get(key) ?? { count: 0, bytes: 0 }
    e.count++
    e.bytes += snap.nodes[i + iSize]!
    out.set(key, e)
  }
  return out
}

// Warm the paths first (compiled code, pools), with a few tunnels opened and closed.
const idle = (count: number, hold: (ready: Record<string, unknown>) => Promise<void>) =>
  runJson(
    process.execPath,
    [join(here, "gen", "idle.ts"), "--target", `127.0.0.1:${echo.ports[0]}`, "--proxy", `127.0.0.1:${port}`, "--count", String(count)],
    {
      timeoutMs: 300_000,
      onMessage: (msg, cp) => {
        if (msg["ready"] === true) void hold(msg).then(() => cp.stdin?.write("close\n"))
      },
    },
  )
await idle(200, async () => {})
await new Promise((r) => setTimeout(r, 500))
gc()
const heap0 = getHeapStatistics().used_heap_size
const rss0 = rssKiB(process.pid)
const before = await census()
let opened = 0
let after = before
let heap1 = heap0
let rss1 = rss0
await idle(Number(opt.tunnels), async (msg) => {
  opened = Number(msg["open"])
  await new Promise((r) => setTimeout(r, 1000))
  gc()
  heap1 = getHeapStatistics().used_heap_size
  rss1 = rssKiB(process.pid)
  after = await census()
})
server.close()
echo.stop()

log(
  `${opened} idle tunnels: V8 heap +${((heap1 - heap0) / opened).toFixed(0)} B per tunnel (used_heap_size after a full GC); ` +
    `this process's RSS +${(((rss1 - rss0) * 1024) / opened).toFixed(0)} B per tunnel (heap, native socket state, and growth)`,
)
const diff = [...after]
  .map(([k, a]) => {
    const b = before.get(k) ?? { count: 0, bytes: 0 }
    return { k, count: (a.count - b.count) / opened, bytes: (a.bytes - b.bytes) / opened }
  })
  .filter((d) => Math.abs(d.bytes) >= 4)
  .sort((x, y) => y.bytes - x.bytes)
log(`\nper idle tunnel, by constructor (objects, bytes; self sizes from heap snapshots)`)
for (const d of diff.slice(0, Number(opt.top))) log(`  ${d.bytes.toFixed(0).padStart(6)} B  ${d.count.toFixed(2).padStart(6)}  ${d.k}`)
log(`  total of the rows: ${diff.reduce((a, d) => a + d.bytes, 0).toFixed(0)} B`)
process.exit(0)
