/**
 * Bulk transfer through CONNECT tunnels (or direct TCP): N tunnels at once, each moving bytes/N bytes
 * origin->client (--dir down) or client->origin (--dir up) against the origin's bulk port.
 * The clock starts after every tunnel is open and stops when the last byte arrived (down) or the origin
 * confirmed it read everything (up).
 * Usage: node bench/gen/bulk.ts --target H:P [--proxy H:P] --tunnels 1 --bytes N --dir down|up [--deadline-ms 120000]
 * Prints {bytes, seconds, cpuSeconds}.
 */
import { assertLoopback, cpuNow, flags, guardProcess, need, openTunnel, parseEndpoint, report, type Tunnel } from "../lib/wire.ts"

const a = flags(process.argv.slice(2))
const target = parseEndpoint(need(a, "target"))
const proxy = a.has("proxy") ? parseEndpoint(a.get("proxy")!) : undefined
const tunnels = Number(a.get("tunnels") ?? "1")
const total = Number(need(a, "bytes"))
const dir = a.get("dir") ?? "down"
guardProcess(Number(a.get("deadline-ms") ?? "120000"))
assertLoopback(target)
if (proxy !== undefined) assertLoopback(proxy)

const per = Math.floor(total / tunnels)
const CHUNK = Buffer.alloc(1024 * 1024, 0x63)

const down = (t: Tunnel): Promise<void> =>
  new Promise((resolve, reject) => {
    let left = per - t.rest.length
    const s = t.conn.socket
    s.once("error", reject)
    s.once("close", () => (left > 0 ? reject(new Error(`closed with ${left} bytes to go`)) : resolve()))
    t.conn.handler = (chunk) => {
      left -= chunk.length
      if (left <= 0) s.destroy()
    }
    s.write(`SRC ${per}\n`)
  })

const up = (t: Tunnel): Promise<void> =>
  new Promise((resolve, reject) => {
    const s = t.conn.socket
    let done = false
    s.once("error", reject)
    s.once("close", () => (done ? resolve() : reject(new Error("closed before DONE"))))
    t.conn.handler = (chunk) => {
      if (chunk.includes("DONE\n")) {
        done = true
        s.destroy()
      }
    }
    s.write(`SINK ${per}\n`)
    let left = per
    const pump = (): void => {
      while (left > 0) {
        const c = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left)
        left -= c.length
        if (!s.write(c)) {
          if (left > 0) s.once("drain", pump)
          return
        }
      }
    }
    pump()
  })

const open = await Promise.all(Array.from({ length: tunnels }, () => openTunnel(proxy, target)))
const cpu0 = cpuNow()
const t0 = process.hrtime.bigint()
await Promise.all(open.map((t) => (dir === "up" ? up(t) : down(t))))
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
report({ bytes: per * tunnels, seconds, cpuSeconds: cpuNow() - cpu0 })
process.exit(0)
