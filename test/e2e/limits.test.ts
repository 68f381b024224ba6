/**
 * Connection limits (issue 9 §3), on the built proxy with two workers: --max-connections and
 * --max-connections-per-client are exact across workers (shared counts), a connection over a cap is
 * closed at once without a byte, the log says so in one rate-limited line, the connections already open
 * are not disturbed, and a freed slot is usable again. And running out of file descriptors (a proxy
 * started under `ulimit -n 64`) pauses accepting without crashing, spinning or dropping open tunnels.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTcpServer } from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, sleep } from "./support/wire.ts"

let echo: Awaited<ReturnType<typeof startTcpServer>>
const proxies: Proxy[] = []
const open: Conn[] = []

beforeAll(async () => {
  echo = await startTcpServer("echo")
})

afterAll(async () => {
  for (const c of open) c.destroy()
  await Promise.all(proxies.map((p) => p.stop()))
  await echo?.close()
})

const launch = async (...args: Parameters<typeof startProxy>): Promise<Proxy> => {
  const p = await startProxy(...args)
  proxies.push(p)
  return p
}

/**
 * A CONNECT to the echo origin from `localAddress`: the tunnel (after a round trip through it), or
 * "closed" when the proxy closed the connection without answering.
 */
const tunnel = async (port: number, localAddress = "127.0.0.1", proxyHeader = ""): Promise<Conn | "closed" | `status ${number}`> => {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress, allowHalfOpen: true })
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve)
    socket.once("error", reject)
  })
  const c = new Conn(socket)
  try {
    await c.write(`${proxyHeader}CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`)
  } catch {
    // Closed before the write: the same answer as below.
  }
  let status: number
  try {
    status = (await c.readHead(10_000)).status
  } catch (e) {
    // Closed at once: nothing at all was received.
    expect(c.pending.length, String(e)).toBe(0)
    c.destroy()
    return "closed"
  }
  if (status !== 200) {
    c.destroy()
    return `status ${status}`
  }
  await c.write("ping")
  expect((await c.readBytes(4)).toString()).toBe("ping")
  open.push(c)
  return c
}

const limitLines = (p: Proxy, flag: string) => p.stdout.filter((l) => l.includes("connection limit reached") && l.includes(flag))

describe("--max-connections", () => {
  it("admits exactly N connections over two workers, closes the others at once, and frees slots on close", async () => {
    const p = await launch({ workers: 2, extraArgs: ["--max-connections", "3"] })
    // Open 3 tunnels. (A "closed" on the way can only be the launcher's readiness probe, still counted until
    // the proxy sees its close: retry, bounded.)
    const tunnels: Conn[] = []
    for (let i = 0; i < 100 && tunnels.length < 3; i++) {
      const r = await tunnel(p.port)
      if (r instanceof Conn) tunnels.push(r)
      else await sleep(50)
    }
    expect(tunnels).toHaveLength(3)
    // Full, whichever worker accepts: the next ones are closed at once.
    const results: Array<Awaited<ReturnType<typeof tunnel>>> = []
    for (let i = 0; i < 5; i++) results.push(await tunnel(p.port))
    expect(results).toEqual(["closed", "closed", "closed", "closed", "closed"])
    // One line per worker per interval, not one per connection.
    await p.waitForLine(/connection limit reached: 3 connections open.*--max-connections/)
    const lines = limitLines(p, "--max-connections)").length
    expect(lines).toBeGreaterThanOrEqual(1)
    expect(lines).toBeLessThan(5)
    // The open tunnels are not disturbed.
    for (const t of tunnels) {
      await t.write("still")
      expect((await t.readBytes(5)).toString()).toBe("still")
    }
    // One closed: its slot is free again (the proxy notices the close asynchronously: retry, bounded).
    tunnels[0]!.destroy()
    let again: Awaited<ReturnType<typeof tunnel>> = "closed"
    for (let i = 0; i < 50 && again === "closed"; i++) {
      again = await tunnel(p.port)
      if (again === "closed") await sleep(50)
    }
    expect(again).toBeInstanceOf(Conn)
    expect(await tunnel(p.port)).toBe("closed")
  })
})

describe("refused clients and the caps (issue 17 item 12)", () => {
  it("clients outside --allow get their 403 without taking a slot of --max-connections", async () => {
    const p = await launch({ workers: 2, extraArgs: ["--max-connections", "2", "--allow", "127.0.0.1/32"] })
    // Refused clients that read their 403 and keep their side open: each 403 lingers (up to 2 s) on the proxy.
    for (let i = 0; i < 4; i++) {
      const socket = net.connect({ port: p.port, host: "127.0.0.1", localAddress: "127.0.0.5", allowHalfOpen: true })
      const c = new Conn(socket)
      open.push(c)
      await c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`)
      expect((await c.readHead(10_000)).status).toBe(403)
    }
    // Both slots are still there for allowed clients. (A "closed" can only be the launcher's readiness
    // probe, counted until the proxy sees its close: a few retries, far within the 403s' linger.)
    const tunnels: Conn[] = []
    for (let i = 0; i < 10 && tunnels.length < 2; i++) {
      const r = await tunnel(p.port)
      if (r instanceof Conn) tunnels.push(r)
      else await sleep(20)
    }
    expect(tunnels).toHaveLength(2)
    expect(await tunnel(p.port)).toBe("closed")
  })
})

describe("--max-connections-per-client", () => {
  it("counts each client address apart, exactly, across two workers", async () => {
    const p = await launch({ workers: 2, extraArgs: ["--max-connections-per-client", "2"] })
    // (Not from 127.0.0.1: the launcher's readiness probes come from there, and their closes may not be seen yet.)
    const a = [
      await tunnel(p.port, "127.0.0.3"),
      await tunnel(p.port, "127.0.0.3"),
      await tunnel(p.port, "127.0.0.3"),
      await tunnel(p.port, "127.0.0.3"),
    ]
    expect(a.map((r) => (r === "closed" ? "closed" : "open"))).toEqual(["open", "open", "closed", "closed"])
    // Another address has its own count.
    const b = [await tunnel(p.port, "127.0.0.2"), await tunnel(p.port, "127.0.0.2"), await tunnel(p.port, "127.0.0.2")]
    expect(b.map((r) => (r === "closed" ? "closed" : "open"))).toEqual(["open", "open", "closed"])
    // One line per worker per interval for this cap, whichever client met it.
    await p.waitForLine(/connection limit reached for client 127\.0\.0\.[23]: 2 connections open.*--max-connections-per-client/)
  })

  it("behind a load balancer counts the client the PROXY header names, not the balancer (issue 17 item 2)", async () => {
    // The headers name documentation addresses: bytes sent to the proxy on loopback, nothing is sent there.
    const p = await launch({
      workers: 2,
      extraArgs: [
        "--max-connections-per-client",
        "2",
        "--proxy-protocol-from",
        "127.0.0.1/32",
        "--allow",
        "192.0.2.0/24",
        "--allow-to",
        "127.0.0.0/8",
      ],
    })
    const as = (client: string) => tunnel(p.port, "127.0.0.1", `PROXY TCP4 ${client} 127.0.0.1 40000 ${p.port}\r\n`)
    const a = [await as("192.0.2.7"), await as("192.0.2.7"), await as("192.0.2.7")]
    expect(a.map((r) => (r === "closed" ? "closed" : "open"))).toEqual(["open", "open", "closed"])
    const b = [await as("192.0.2.8"), await as("192.0.2.8")]
    expect(b.map((r) => (r === "closed" ? "closed" : "open"))).toEqual(["open", "open"])
    await p.waitForLine(/connection limit reached for client 192\.0\.2\.7: 2 connections open/)
    expect(p.stdout.some((l) => l.includes("limit reached for client 127.0.0.1"))).toBe(false)
  })

  it("is read from the environment and the config file like every setting", async () => {
    const p = await launch({ workers: 1, env: { HCTUNNEL_MAX_CONNECTIONS_PER_CLIENT: "1" } })
    expect(await tunnel(p.port, "127.0.0.4")).toBeInstanceOf(Conn)
    expect(await tunnel(p.port, "127.0.0.4")).toBe("closed")
    const dir = mkdtempSync(join(tmpdir(), "hctunnel-limits-"))
    writeFileSync(join(dir, "h.json"), JSON.stringify({ maxConnectionsPerClient: 1 }))
    const q = await launch({ workers: 1, extraArgs: ["--config", join(dir, "h.json")] })
    expect(await tunnel(q.port, "127.0.0.4")).toBeInstanceOf(Conn)
    expect(await tunnel(q.port, "127.0.0.4")).toBe("closed")
  })
})

describe("out of file descriptors (ulimit -n 64)", () => {
  it("pauses accepting, logs once per interval, keeps serving open tunnels, and recovers", async () => {
    const p = await launch({ workers: 1, wrap: ["bash", "-c", 'ulimit -n 64 && exec "$@"', "hctunnel-ulimit"] })
    // Each tunnel takes two descriptors: open tunnels until the proxy cannot accept or connect any more.
    const tunnels: Conn[] = []
    let refused = 0
    for (let i = 0; i < 60 && refused < 5; i++) {
      let r: Awaited<ReturnType<typeof tunnel>>
      try {
        r = await tunnel(p.port)
      } catch {
        r = "closed" // refused while the listener is paused
      }
      // Closed at once, refused, or a 502 for a connect without a descriptor.
      if (r instanceof Conn) tunnels.push(r)
      else refused++
    }
    expect(refused).toBe(5)
    expect(tunnels.length).toBeGreaterThan(0)
    await p.waitForLine(/out of file descriptors \((fewer than 8 of 64 left|EMFILE on connect)\): pausing accepting/)
    // Still alive, and the tunnels it has are served.
    expect(p.child.exitCode).toBeNull()
    for (const t of tunnels) {
      await t.write("alive")
      expect((await t.readBytes(5)).toString()).toBe("alive")
    }
    // Rate-limited: far fewer lines than failures.
    expect(p.stdout.filter((l) => l.includes("out of file descriptors")).length).toBeLessThanOrEqual(2)
    // Free descriptors: new tunnels work again once the pause is over (bounded retries).
    for (const t of tunnels.splice(0, 10)) t.destroy()
    let again: Awaited<ReturnType<typeof tunnel>> = "closed"
    for (let i = 0; i < 100 && !(again instanceof Conn); i++) {
      try {
        again = await tunnel(p.port)
      } catch {
        again = "closed"
      }
      if (!(again instanceof Conn)) await sleep(100)
    }
    expect(again).toBeInstanceOf(Conn)
    expect(p.child.exitCode).toBeNull()
  })
})
