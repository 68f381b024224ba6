/**
 * One plain-HTTP GET of a large body (origin /bytes/N), directly or through the proxy (absolute-form).
 * The clock runs from writing the request to the last body byte.
 * Usage: node bench/gen/httpget.ts --origin H:P [--proxy H:P] --bytes N [--deadline-ms 120000]
 * Prints {bytes, seconds, cpuSeconds, status}.
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
  type Response,
} from "../lib/wire.ts"

const a = flags(process.argv.slice(2))
const origin = parseEndpoint(need(a, "origin"))
const proxy = a.has("proxy") ? parseEndpoint(a.get("proxy")!) : undefined
const bytes = Number(need(a, "bytes"))
guardProcess(Number(a.get("deadline-ms") ?? "120000"))
assertLoopback(origin)
if (proxy !== undefined) assertLoopback(proxy)

const conn = await connect(proxy ?? origin)
const cpu0 = cpuNow()
const t0 = process.hrtime.bigint()
const res = await new Promise<Response>((resolve, reject) => {
  const reader = new ResponseReader(resolve)
  conn.handler = (chunk) => reader.push(chunk)
  conn.socket.once("error", reject)
  conn.socket.once("close", () => {
    reader.closed()
    reject(new Error("connection closed before the body ended"))
  })
  conn.socket.write(getRequest(origin, `/bytes/${bytes}`, proxy !== undefined))
})
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
const cpuSeconds = cpuNow() - cpu0
conn.socket.destroy()
if (res.status !== 200 || res.bodyBytes !== bytes) {
  process.stderr.write(`unexpected response: status ${res.status}, ${res.bodyBytes} of ${bytes} bytes\n`)
  process.exit(1)
}
report({ bytes: res.bodyBytes, seconds, cpuSeconds, status: res.status })
process.exit(0)
