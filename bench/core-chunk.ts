// Per-chunk cost of the pure core: feeds tunnel chunks and small GET exchanges through
// `Postman.handle` and prints ns per call. No sockets, no IO: the engine alone.
// Usage: node bench/core-chunk.ts [--rounds 5]
import { defaultLimits } from "../src/core/limits.ts"
import { Postman } from "../src/core/postman.ts"
import type { Event } from "../src/core/events.ts"

const bytes = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0))
const roundsAt = process.argv.indexOf("--rounds")
const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 5

const tunnelChunk = new Uint8Array(16 * 1024)
const connectHead = bytes("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
const getHead = bytes("GET http://example.com/page HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n")
const response = bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
const connected: Event = { _tag: "Connected" }

function tunnelChunks(n: number): number {
  const p = new Postman({ limits: defaultLimits, via: "hctunnel" })
  p.start(0)
  p.handle({ _tag: "Received", side: "client", bytes: connectHead }, 1)
  p.handle(connected, 2)
  const up: Event = { _tag: "Received", side: "client", bytes: tunnelChunk }
  const down: Event = { _tag: "Received", side: "origin", bytes: tunnelChunk }
  let sink = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) sink += p.handle(i & 1 ? up : down, 3 + (i >> 10)).length
  const ns = Number(process.hrtime.bigint() - t0)
  if (sink !== n) throw new Error("unexpected actions")
  return ns / n
}

function getExchanges(n: number): number {
  const p = new Postman({ limits: defaultLimits, via: "hctunnel" })
  p.start(0)
  const fromClient: Event = { _tag: "Received", side: "client", bytes: getHead }
  const fromOrigin: Event = { _tag: "Received", side: "origin", bytes: response }
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    p.handle(fromClient, 1 + i)
    p.handle(connected, 1 + i)
    p.handle(fromOrigin, 1 + i)
  }
  const ns = Number(process.hrtime.bigint() - t0)
  if (p.state !== "AwaitingHead") throw new Error(`unexpected state ${p.state}`)
  return ns / n
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const min = (xs: number[]) => Math.min(...xs)

/** Every state and its teardown once, as a server sees them all: the engine's inline caches see every shape. */
function everyState(): void {
  for (const auth of [false, true]) {
    const p = new Postman({ limits: defaultLimits, via: "hctunnel", auth })
    p.start(0)
    p.handle({ _tag: "Received", side: "client", bytes: connectHead }, 1)
    if (auth) p.handle({ _tag: "Authenticated", user: "u" }, 1)
    p.handle(connected, 2)
    p.handle({ _tag: "Timeout" }, 1e9)
    const q = new Postman({ limits: defaultLimits, via: "hctunnel", auth })
    q.start(0)
    q.handle({ _tag: "Received", side: "client", bytes: getHead }, 1)
    if (auth) q.handle({ _tag: "AuthenticationFailed", reason: "missing", message: "" }, 1)
    q.handle({ _tag: "Received", side: "client", bytes: getHead }, 1)
    q.handle(connected, 2)
    q.handle({ _tag: "Received", side: "origin", bytes: response }, 3)
    q.handle({ _tag: "Ended", side: "client" }, 4)
  }
}
for (let i = 0; i < 1000; i++) everyState()
tunnelChunks(200_000)
getExchanges(50_000)
const t: number[] = []
const g: number[] = []
for (let r = 0; r < rounds; r++) {
  t.push(tunnelChunks(1_000_000))
  g.push(getExchanges(200_000))
}
console.log(
  `tunnel chunk (handle, Received 16 KiB): min ${min(t).toFixed(1)} ns, median ${median(t).toFixed(1)} ns  [${t.map((x) => x.toFixed(1)).join(" ")}]`,
)
console.log(
  `GET exchange (3 handle calls):          min ${min(g).toFixed(0)} ns, median ${median(g).toFixed(0)} ns  [${g.map((x) => x.toFixed(0)).join(" ")}]`,
)
