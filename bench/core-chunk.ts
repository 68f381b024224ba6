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
tunnelChunks(200_000)
getExchanges(50_000)
const t: number[] = []
const g: number[] = []
for (let r = 0; r < rounds; r++) {
  t.push(tunnelChunks(1_000_000))
  g.push(getExchanges(200_000))
}
console.log(`tunnel chunk (handle, Received 16 KiB): median ${median(t).toFixed(1)} ns  [${t.map((x) => x.toFixed(1)).join(" ")}]`)
console.log(`GET exchange (3 handle calls):          median ${median(g).toFixed(0)} ns  [${g.map((x) => x.toFixed(0)).join(" ")}]`)
