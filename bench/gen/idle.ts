/**
 * Idle tunnels: open N CONNECT tunnels to the echo origin (at most --parallel handshakes in flight), count a
 * tunnel as open once its 200 arrived, check each one echoes, then print {ready:true, open, failed} and hold
 * them until stdin says "close" (or the deadline passes), then close them all and print {closed}. A line
 * "more N" opens N more the same way and prints {ready:true, ...} again (bench/idle-curve.ts).
 * Usage: node bench/gen/idle.ts --target H:P --proxy H:P --count N [--parallel 200] [--deadline-ms 180000]
 */
import { assertLoopback, flags, guardProcess, need, openTunnel, parseEndpoint, report, type Tunnel } from "../lib/wire.ts"

const a = flags(process.argv.slice(2))
const target = parseEndpoint(need(a, "target"))
const proxy = a.has("proxy") ? parseEndpoint(a.get("proxy")!) : undefined
let count = Number(need(a, "count"))
const parallel = Number(a.get("parallel") ?? "200")
guardProcess(Number(a.get("deadline-ms") ?? "180000"))
assertLoopback(target)
if (proxy !== undefined) assertLoopback(proxy)

const shared = Buffer.allocUnsafe(16 * 1024) // reads are tiny and handled synchronously: one buffer for all
const open: Tunnel[] = []
let failed = 0
let firstError: string | undefined
let next = 0

const ping = (t: Tunnel): Promise<void> =>
  new Promise((resolve, reject) => {
    let got = t.rest.length
    const timer = setTimeout(() => reject(new Error("no echo within 10 s")), 10_000)
    t.conn.handler = (chunk) => {
      got += chunk.length
      if (got >= 1) {
        clearTimeout(timer)
        t.conn.handler = () => {}
        resolve()
      }
    }
    t.conn.socket.write("x")
  })

const worker = async (): Promise<void> => {
  while (next < count) {
    next++
    try {
      const t = await openTunnel(proxy, target, shared)
      t.conn.socket.on("error", () => {})
      await ping(t)
      open.push(t)
    } catch (err) {
      failed++
      firstError ??= String(err)
      if (failed > 100 && failed > count / 10) return
    }
  }
}

const openAll = async (): Promise<void> => {
  const t0 = Date.now()
  await Promise.all(Array.from({ length: Math.min(parallel, count - next) }, worker))
  let closedEarly = 0
  for (const t of open) if (t.conn.socket.destroyed) closedEarly++
  report({
    ready: true,
    open: open.length - closedEarly,
    failed: failed + closedEarly,
    seconds: (Date.now() - t0) / 1000,
    ...(firstError === undefined ? {} : { firstError }),
  })
}
await openAll()

process.stdin.setEncoding("utf8")
process.stdin.on("data", (s: string) => {
  const more = /more (\d+)/.exec(s)
  if (more !== null) {
    count += Number(more[1])
    void openAll()
  } else if (s.includes("close")) {
    let stillOpen = 0
    for (const t of open) {
      if (!t.conn.socket.destroyed) stillOpen++
      t.conn.socket.destroy()
    }
    report({ closed: true, stillOpen })
    process.exit(0)
  }
})
