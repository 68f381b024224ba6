/**
 * Latency at low load: one request at a time on a keep-alive connection (GET /small, 100-byte body),
 * directly or through the proxy (absolute-form). If the server closes the connection, the next request
 * opens a new one and its time includes the connect (counted in `reconnects`).
 * Usage: node bench/gen/latency.ts --origin H:P [--proxy H:P] --requests N [--warmup 200] [--deadline-ms 60000]
 * A response other than 200 with 100 bytes counts in `errors` (its time is still a sample); too many stop the run.
 * Prints {requests, p50Us, p90Us, p99Us, meanUs, maxUs, reconnects, errors, firstError?, seconds, cpuSeconds}.
 */
import {
  assertLoopback,
  connect,
  cpuNow,
  flags,
  getRequest,
  guardProcess,
  need,
  parseEndpoint,
  report,
  ResponseReader,
  type Conn,
  type Response,
} from "../lib/wire.ts"

const a = flags(process.argv.slice(2))
const origin = parseEndpoint(need(a, "origin"))
const proxy = a.has("proxy") ? parseEndpoint(a.get("proxy")!) : undefined
const requests = Number(need(a, "requests"))
const warmup = Number(a.get("warmup") ?? "200")
guardProcess(Number(a.get("deadline-ms") ?? "60000"))
assertLoopback(origin)
if (proxy !== undefined) assertLoopback(proxy)

const request = getRequest(origin, "/small", proxy !== undefined)
let conn: Conn | undefined
let pending: { resolve: (r: Response) => void; reject: (e: Error) => void } | undefined
let reconnects = -1
let errors = 0
let samplesTaken = 0
let firstError: string | undefined

/** The server closed an idle-looking connection as the request went out (it closes without saying so): resend. */
class Resend extends Error {}

const open = async (): Promise<Conn> => {
  reconnects++
  const c = await connect(proxy ?? origin, Buffer.allocUnsafe(64 * 1024))
  const reader = new ResponseReader((r) => {
    const p = pending
    pending = undefined
    if (r.closing && conn === c) conn = undefined
    p?.resolve(r)
  })
  c.handler = (chunk) => reader.push(chunk)
  c.socket.on("close", () => {
    reader.closed()
    // A connection the server announced it would close is already dropped: its close concerns no request.
    if (conn === c) {
      conn = undefined
      const p = pending
      pending = undefined
      p?.reject(reader.idle ? new Resend("closed before any response byte") : new Error("connection closed during a response"))
    }
  })
  c.socket.on("error", () => {})
  return c
}

const one = async (): Promise<number> => {
  const t0 = process.hrtime.bigint()
  for (let attempt = 0; ; attempt++) {
    if (conn === undefined) conn = await open()
    const c = conn
    try {
      const r = await new Promise<Response>((resolve, reject) => {
        pending = { resolve, reject }
        c.socket.write(request)
      })
      const us = Number(process.hrtime.bigint() - t0) / 1000
      if (r.status !== 200 || r.bodyBytes !== 100) {
        errors++
        firstError ??= `response ${r.status} with ${r.bodyBytes} body bytes`
        if (errors > 50 && errors * 20 > samplesTaken) throw new Error(`too many bad responses, first: ${firstError}`)
      }
      return us
    } catch (err) {
      if (!(err instanceof Resend) || attempt >= 2) throw err
    }
  }
}

for (let i = 0; i < warmup; i++) await one()
reconnects = 0
const cpu0 = cpuNow()
const t0 = process.hrtime.bigint()
const samples = new Float64Array(requests)
errors = 0
firstError = undefined
for (let i = 0; i < requests; i++) {
  samples[i] = await one()
  samplesTaken++
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
samples.sort()
const pct = (p: number): number => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!
let sum = 0
for (const s of samples) sum += s
report({
  requests,
  p50Us: pct(50),
  p90Us: pct(90),
  p99Us: pct(99),
  meanUs: sum / requests,
  maxUs: samples[samples.length - 1],
  reconnects,
  errors,
  ...(firstError === undefined ? {} : { firstError }),
  seconds,
  cpuSeconds: cpuNow() - cpu0,
})
process.exit(0)
