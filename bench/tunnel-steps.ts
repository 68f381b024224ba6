/**
 * CPU of hctunnel's own code for one new tunnel, step by step, without sockets: each step of the accept →
 * CONNECT → 200 → relay → close path that is ours (the engine's events, the allow-list, the connection
 * limits' shared table, the destination policy, the resolver's literal path, the deadline heap, the metrics,
 * the access log at --log-level none) run in a loop, ns per tunnel. What Node and the kernel do for the same
 * tunnel (sockets, streams, syscalls) is the rest of the profile (bench/profile.ts). The loops measure
 * process CPU time, which other work on the machine inflates much less than it does throughput.
 * Used for docs/performance.md "Round three".
 *
 *   node bench/tunnel-steps.ts [--rounds 5] [--tunnels 200000]
 */
import { parseArgs } from "node:util"
import type { Event } from "../src/core/events.ts"
import { parseRequestHead } from "../src/core/http/request-head.ts"
import { defaultLimits } from "../src/core/limits.ts"
import { Postman } from "../src/core/postman.ts"
import { AccessLog } from "../src/runtime/observe/AccessLog.ts"
import { AllowList } from "../src/runtime/access/Allow.ts"
import { ConnectionLimits, makeConnectionLimits } from "../src/runtime/access/ConnectionLimits.ts"
import { Deadlines, type Timed } from "../src/runtime/timers/Deadlines.ts"
import { check, checkName, makePolicy } from "../src/runtime/dial/DestinationPolicy.ts"
import { counterSlot, outcomeSlot, requestSlot, WorkerMetrics } from "../src/runtime/observe/Metrics.ts"
import { makeResolve } from "../src/runtime/dial/Resolver.ts"

const { values: opt } = parseArgs({ options: { rounds: { type: "string", default: "5" }, tunnels: { type: "string", default: "200000" } } })
const N = Number(opt.tunnels)
const bytes = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0))
const head = bytes("CONNECT 127.0.0.1:43210 HTTP/1.1\r\nHost: 127.0.0.1:43210\r\n\r\n")
const payload = new Uint8Array(100)
const cpu = (): number => {
  const u = process.cpuUsage()
  return u.user + u.system // µs
}
let sink = 0

/** Every event the engine sees for one tunnel, timed apart (the clock argument is a counter). */
const engine = (n: number, split: Float64Array): void => {
  const evHead: Event = { _tag: "Received", side: "client", bytes: head }
  const evConnected: Event = { _tag: "Connected" }
  const evUp: Event = { _tag: "Received", side: "client", bytes: payload }
  const evDown: Event = { _tag: "Received", side: "origin", bytes: payload }
  const evEndClient: Event = { _tag: "Ended", side: "client" }
  const evEndOrigin: Event = { _tag: "Ended", side: "origin" }
  const t = [0, 0, 0, 0, 0, 0, 0, 0]
  for (let i = 0; i < n; i++) {
    const a = performance.now()
    const p = new Postman({ limits: defaultLimits, via: "hctunnel", auth: false })
    sink += p.start(i).length
    const b = performance.now()
    sink += p.handle(evHead, i).length
    const c = performance.now()
    sink += p.handle(evConnected, i).length
    const d = performance.now()
    sink += p.handle(evUp, i).length
    sink += p.handle(evDown, i).length
    const e = performance.now()
    sink += p.handle(evEndClient, i).length
    sink += p.handle(evEndOrigin, i).length
    const f = performance.now()
    t[0]! += b - a
    t[1]! += c - b
    t[2]! += d - c
    t[3]! += e - d
    t[4]! += f - e
  }
  for (let k = 0; k < 5; k++) split[k]! += t[k]!
}

const steps: ReadonlyArray<readonly [string, (n: number) => void]> = [
  [
    "engine: the whole tunnel (new Postman, start, CONNECT head, Connected, 100 B each way, both FINs)",
    (n) => {
      const s = new Float64Array(8)
      engine(n, s)
    },
  ],
  [
    "  of it, parseRequestHead alone (the CONNECT head)",
    (n) => {
      for (let i = 0; i < n; i++) sink += parseRequestHead(head, defaultLimits).ok ? 1 : 0
    },
  ],
  [
    "allow-list (remembered verdict for 127.0.0.1)",
    (() => {
      const allow = AllowList.parse(["127.0.0.0/8", "::1/128"])
      return (n: number) => {
        for (let i = 0; i < n; i++) sink += allow.allows("127.0.0.1") ? 1 : 0
      }
    })(),
  ],
  [
    "connection limits: admit + release (shared total, per-client table under its lock)",
    (() => {
      const log = new AccessLog({ format: "text", level: "none", write: () => {} })
      const limits = new ConnectionLimits(makeConnectionLimits(20_000, 15_000, 2), 0, log, () => {}, 20_000)
      const socket = { remoteAddress: "127.0.0.1", _handle: { fd: 40 }, destroy: () => {} } as unknown as import("node:net").Socket
      return (n: number) => {
        for (let i = 0; i < n; i++) {
          sink += limits.admit(socket, "127.0.0.1") ? 1 : 0
          limits.release(socket)
        }
      }
    })(),
  ],
  [
    "destination policy: checkName + check (loopback listener, no rules)",
    (() => {
      const policy = makePolicy({
        allowTo: [],
        denyTo: [],
        clientAllow: ["127.0.0.0/8"],
        listen: [{ host: "127.0.0.1", port: 8888 }],
        interfaces: ["127.0.0.1", "::1"],
      })
      return (n: number) => {
        for (let i = 0; i < n; i++) {
          const d = { host: "127.0.0.1", port: 43210, kind: "connect" as const }
          sink += checkName(policy, d) === undefined ? 1 : 0
          sink += check(policy, { ...d, address: "127.0.0.1" }) === undefined ? 1 : 0
        }
      }
    })(),
  ],
  [
    "resolve a numeric host (callback, synchronous)",
    (() => {
      const resolve = makeResolve({ hostsFile: false, servers: ["127.0.0.1:1"] })
      return (n: number) => {
        for (let i = 0; i < n; i++) resolve("127.0.0.1", (_e, a) => (sink += a.length))
      }
    })(),
  ],
  [
    "deadlines: set + cancel (one entry among 100 live)",
    (() => {
      const deadlines = new Deadlines()
      const entry = (at: number): Timed => ({ deadlineIndex: -1, deadlineAt: at, onDeadline: () => {} })
      for (let i = 0; i < 100; i++) deadlines.set(entry(1e12 + i), 1e12 + i)
      const e = entry(0)
      return (n: number) => {
        for (let i = 0; i < n; i++) {
          deadlines.set(e, 1e9 + i)
          deadlines.cancel(e)
        }
      }
    })(),
  ],
  [
    "metrics of one tunnel (Connection.measure's counts and histograms, pool lookup, dial time)",
    (() => {
      const m = new WorkerMetrics()
      const miss = counterSlot("originPoolLookups", { result: "miss" })
      const closed = counterSlot("tunnelsClosed")
      return (n: number) => {
        for (let i = 0; i < n; i++) {
          m.count(miss)
          m.observe("originConnect", 0.2)
          m.count(requestSlot("CONNECT", 200))
          m.count(outcomeSlot("ok"))
          m.count(closed)
          m.observe("tunnelDuration", 1.5)
        }
      }
    })(),
  ],
]

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
for (const [, f] of steps) f(20_000) // warm-up: JIT
const results = steps.map(() => [] as number[])
const split = new Float64Array(8)
for (let r = 0; r < Number(opt.rounds); r++) {
  steps.forEach(([, f], k) => {
    const c0 = cpu()
    f(N)
    results[k]!.push(((cpu() - c0) / N) * 1000)
  })
  engine(N, split)
}
process.stdout.write(`ns of CPU per tunnel, median of ${opt.rounds} rounds of ${N} (min-max)\n`)
steps.forEach(([name], k) => {
  const xs = results[k]!
  process.stdout.write(`${median(xs).toFixed(0).padStart(7)} ns  (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})  ${name}\n`)
})
const parts = [
  "new Postman + start",
  "CONNECT head (parse, checks, Connect)",
  "Connected (the 200)",
  "100 B each way",
  "both FINs (Log, Close)",
]
const total = split.reduce((a, b) => a + b, 0)
process.stdout.write(
  `the engine's share by event (wall clock of the timed loop, ${((total / (N * Number(opt.rounds))) * 1e6).toFixed(0)} ns per tunnel with the timer reads):\n`,
)
for (const [k, p] of parts.entries()) process.stdout.write(`  ${((split[k]! / total) * 100).toFixed(0).padStart(3)} %  ${p}\n`)
// Keeps the loops' results alive, so that no step is optimised away.
if (sink === 42) process.stdout.write("")
