/**
 * New tunnel per request: each of --clients loops does CONNECT (or a direct TCP connect), writes 100 bytes,
 * reads the 100-byte echo, closes, and starts over, until --duration-ms has passed.
 * Usage: node bench/gen/rate.ts --target H:P [--proxy H:P] [--clients 50] [--duration-ms 5000]
 * Prints {tunnels, errors, seconds, p50Us, p99Us, cpuSeconds, firstError}.
 */
import { assertLoopback, cpuNow, flags, guardProcess, need, openTunnel, parseEndpoint, report } from "../lib/wire.ts"

const a = flags(process.argv.slice(2))
const target = parseEndpoint(need(a, "target"))
const proxy = a.has("proxy") ? parseEndpoint(a.get("proxy")!) : undefined
const clients = Number(a.get("clients") ?? "50")
const durationMs = Number(a.get("duration-ms") ?? "5000")
guardProcess(durationMs + 30_000)
assertLoopback(target)
if (proxy !== undefined) assertLoopback(proxy)

const PAYLOAD = Buffer.alloc(100, 0x64)
const readBuffers = Array.from({ length: clients }, () => Buffer.allocUnsafe(16 * 1024))
let done = 0
let errors = 0
let firstError: string | undefined
const samples: number[] = []

const once = async (readBuffer: Buffer): Promise<void> => {
  const t0 = process.hrtime.bigint()
  const t = await openTunnel(proxy, target, readBuffer)
  await new Promise<void>((resolve, reject) => {
    let got = t.rest.length
    const s = t.conn.socket
    const finish = (): void => {
      s.destroy()
      resolve()
    }
    s.once("error", reject)
    s.once("close", () => reject(new Error(`closed after ${got} of 100 echoed bytes`)))
    t.conn.handler = (chunk) => {
      got += chunk.length
      if (got >= 100) finish()
    }
    s.write(PAYLOAD)
  })
  samples.push(Number(process.hrtime.bigint() - t0) / 1000)
}

const cpu0 = cpuNow()
const t0 = Date.now()
const end = t0 + durationMs
const loop = async (i: number): Promise<void> => {
  while (Date.now() < end) {
    try {
      await once(readBuffers[i]!)
      done++
    } catch (err) {
      errors++
      firstError ??= String(err)
      if (errors > 10_000) throw new Error(`too many errors, first: ${firstError}`)
      await new Promise((r) => setTimeout(r, 5))
    }
  }
}
await Promise.all(Array.from({ length: clients }, (_, i) => loop(i)))
const seconds = (Date.now() - t0) / 1000
samples.sort((x, y) => x - y)
const pct = (p: number): number => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] ?? 0
report({
  tunnels: done,
  errors,
  seconds,
  p50Us: pct(50),
  p99Us: pct(99),
  cpuSeconds: cpuNow() - cpu0,
  ...(firstError === undefined ? {} : { firstError }),
})
process.exit(0)
