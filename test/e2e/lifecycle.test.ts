/**
 * The process as a whole: graceful shutdown with a tunnel open, a worker crash and its replacement,
 * no leaked sockets after many aborted connections. Each test starts its own proxy.
 */
import { afterAll, beforeAll, describe, it } from "vitest"
import { startHttpOrigin, startSilentServer, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { canConnect, fdCount, startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, get, openTunnel, sleep, until } from "./support/wire.ts"

let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>
let silent: Awaited<ReturnType<typeof startSilentServer>>
const proxies: Proxy[] = []

beforeAll(async () => {
  ;[origin, echo, silent] = await Promise.all([startHttpOrigin("l"), startTcpServer("echo"), startSilentServer()])
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()))
  await Promise.all([origin?.close(), echo?.close(), silent?.close()])
})

const launch = async (...args: Parameters<typeof startProxy>): Promise<Proxy> => {
  const p = await startProxy(...args)
  proxies.push(p)
  return p
}

/** One GET on a fresh connection; the status, or the error code when the connection failed. */
const getOnce = async (port: number, url: string): Promise<{ status: number; body: string } | { error: string }> => {
  let c: Conn
  try {
    c = await Conn.open(port)
  } catch (e) {
    return { error: (e as NodeJS.ErrnoException).code ?? String(e) }
  }
  try {
    await c.write(get(url, "Connection: close\r\n"))
    const r = await c.readResponse({ timeoutMs: 5000 })
    return { status: r.status, body: r.body.toString() }
  } catch (e) {
    return { error: (e as Error).message }
  } finally {
    c.destroy()
  }
}

// Each test has a proxy of its own: they run concurrently.
describe.concurrent("graceful shutdown", () => {
  it("SIGTERM with a tunnel open: listeners close, the tunnel works until the grace period ends, exit 0", { timeout: 30_000 }, async ({
    expect,
  }) => {
    const p = await launch({ workers: 2, graceMs: 4000 })
    const accepted = echo.nextConnection()
    const tunnel = await openTunnel(p.port, `127.0.0.1:${echo.port}`)
    const o = await accepted
    await tunnel.write("before")
    expect((await tunnel.readBytes(6)).toString()).toBe("before")
    // An idle kept-alive connection: closed at once by a shutdown (nothing in flight).
    const idle = await Conn.open(p.port)
    await idle.write(get(`http://localhost:${origin.port}/small`))
    expect((await idle.readResponse()).status).toBe(200)

    p.child.kill("SIGTERM")
    await until("new connections are refused", async () => !(await canConnect(p.port)), 5000, 20)
    await idle.waitEnd(5000)
    // Still inside the grace period: the tunnel relays both ways.
    expect(p.child.exitCode).toBeNull()
    await tunnel.write("during grace")
    expect((await tunnel.readBytes(12)).toString()).toBe("during grace")
    // The grace period ends: the proxy closes the tunnel, both sides.
    await tunnel.readToEnd(15_000)
    await until("the origin side is closed too", () => o.ended || o.socket.destroyed, 5000)
    const exit = await p.exited
    expect(exit, p.output()).toEqual({ code: 0, signal: null })
    // The tunnel, and the idle connection: the proxy ended its side at once, but this client never closed
    // its own, so it was still open (lingering, LINGER_MS 5 s) when the grace period ended.
    expect(p.stdout, p.output()).toContain("WARN grace period over: closed 2 connections still open")
  })

  it("a second SIGTERM closes what is still open at once, says how many, and exits 0", { timeout: 30_000 }, async ({ expect }) => {
    // A grace period far longer than the test's timeout: only the second signal can end these tunnels in time.
    const p = await launch({ workers: 2, graceMs: 120_000 })
    const tunnels = [await openTunnel(p.port, `127.0.0.1:${echo.port}`), await openTunnel(p.port, `127.0.0.1:${echo.port}`)]
    p.child.kill("SIGTERM")
    await p.waitForLine(/shutting down: letting live connections finish for up to 120000 ms/)
    for (const t of tunnels) {
      await t.write("in grace")
      expect((await t.readBytes(8)).toString()).toBe("in grace")
    }
    p.child.kill("SIGTERM")
    for (const t of tunnels) await t.readToEnd(10_000)
    const exit = await p.exited
    expect(exit, p.output()).toEqual({ code: 0, signal: null })
    expect(
      p.stdout.filter((l) => l.startsWith("WARN second signal")),
      p.output(),
    ).toEqual(["WARN second signal: closed 2 connections at once"])
    expect(p.stdout.filter((l) => / CONNECT 127\.0\.0\.1:\d+ 200 .* shutdown: grace period cut short$/.test(l))).toHaveLength(2)
    expect(p.stderr.join("\n")).not.toMatch(/grace period/)
  })

  it("SIGTERM with nothing open exits 0", async ({ expect }) => {
    const p = await launch({ workers: 2, graceMs: 10_000 })
    expect(await getOnce(p.port, `http://localhost:${origin.port}/small`)).toEqual({ status: 200, body: "hello from l\n" })
    p.child.kill("SIGTERM")
    const exit = await p.exited
    expect(exit, p.output()).toEqual({ code: 0, signal: null })
  })
})

describe.concurrent("worker crash", () => {
  it("a crashed worker is replaced and the proxy keeps serving with 2 workers", { timeout: 30_000 }, async ({ expect }) => {
    const p = await launch({ workers: 2, graceMs: 2000, logFormat: "json", env: { HCTUNNEL_TEST_HOOKS: "1" } })
    expect(await getOnce(p.port, `http://localhost:${origin.port}/small`)).toEqual({ status: 200, body: "hello from l\n" })
    // The documented test hook: this request makes the worker that reads it crash.
    const c = await Conn.open(p.port)
    await c.write(get("http://crash.hctunnel.invalid/"))
    await c.readToEnd(10_000).catch(() => Buffer.alloc(0))
    c.destroy()
    // The replacement takes a moment (longer on a loaded machine). Meanwhile the other worker serves: every
    // request must succeed. Go on until the access log shows both workers serving requests made after the crash.
    const afterCrash = (): number[] =>
      p.stdout.filter((l) => l.includes("after-crash=")).map((l) => (JSON.parse(l) as { worker: number }).worker)
    const failures: unknown[] = []
    let i = 0
    await until(
      "both workers to serve again",
      async () => {
        const r = await getOnce(p.port, `http://localhost:${origin.port}/small?after-crash=${i++}`)
        if (!("status" in r) || r.status !== 200) failures.push(r)
        return i >= 20 && new Set(afterCrash()).size === 2
      },
      40_000,
      20,
    )
    expect(failures, p.output()).toEqual([])
    expect(p.child.exitCode, p.output()).toBeNull()
    expect(p.stdout.some((l) => /crashing this worker/.test(l)) || p.stderr.some((l) => /crashing this worker/.test(l))).toBe(true)
    // Steady state: 40 more requests, all served, by both workers.
    const mark = p.stdout.length
    const results = []
    for (let k = 0; k < 40; k++) results.push(await getOnce(p.port, `http://localhost:${origin.port}/small?steady=${k}`))
    expect(results.filter((r) => !("status" in r) || r.status !== 200)).toEqual([])
    await until("40 access lines", () => p.stdout.slice(mark).filter((l) => l.includes("steady=")).length >= 40, 5000)
    const workers = new Set(
      p.stdout
        .slice(mark)
        .filter((l) => l.includes("steady="))
        .map((l) => (JSON.parse(l) as { worker?: number }).worker),
    )
    expect(workers.size, `worker ids in the access log: ${[...workers].join(", ")}`).toBe(2)
  })
})

describe.concurrent("client allow-list", () => {
  it("a client outside --allow gets 403 and nothing is forwarded", async ({ expect }) => {
    const p = await launch({ workers: 2, graceMs: 2000, extraArgs: ["--allow", "10.0.0.0/8"] })
    const before = origin.seen.length
    const c = await Conn.open(p.port)
    try {
      await c.write(get(`http://localhost:${origin.port}/small?forbidden`))
      const r = await c.readResponse()
      expect(r.status).toBe(403)
      await c.waitEnd()
    } finally {
      c.destroy()
    }
    expect(origin.seen.slice(before).filter((s) => s.url === "/small?forbidden")).toEqual([])
  })
})

describe.concurrent("no leaked sockets", () => {
  it("after 1,000 aborted connections the proxy holds as many sockets as before", { timeout: 60_000 }, async ({ expect }) => {
    const p = await launch({ workers: 2, graceMs: 2000 })
    const settle = async (): Promise<Awaited<ReturnType<typeof fdCount>>> => {
      let last = await fdCount(p.pid)
      for (let stable = 0; stable < 3; ) {
        await sleep(200)
        const now = await fdCount(p.pid)
        stable = now.total === last.total && now.sockets === last.sockets ? stable + 1 : 0
        last = now
      }
      return last
    }
    // Warm up: one request and one tunnel, so lazily created things exist before the baseline.
    expect(await getOnce(p.port, `http://localhost:${origin.port}/small`)).toEqual({ status: 200, body: "hello from l\n" })
    const t = await openTunnel(p.port, `127.0.0.1:${echo.port}`)
    t.destroy()
    const before = await settle()

    const abortOne = async (i: number): Promise<void> => {
      let c: Conn
      try {
        c = await Conn.open(p.port)
      } catch {
        return
      }
      try {
        switch (i % 5) {
          case 0: // partial head
            await c.write(`GET http://localhost:${origin.port}/small HTTP/1.1\r\nHo`)
            break
          case 1: // CONNECT head, gone before the 200
            await c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`)
            break
          case 2: // tunnel established, then reset
            await c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\nhello`)
            await c.readHead(5000)
            break
          case 3: // request in flight to an origin that takes its time
            await c.write(get(`http://localhost:${origin.port}/slow?ms=2000`))
            await sleep(5)
            break
          case 4: // CONNECT to an origin that accepts and never answers
            await c.write(`CONNECT 127.0.0.1:${silent.port} HTTP/1.1\r\nHost: x\r\n\r\n`)
            await c.readHead(5000)
            break
        }
      } catch {
        // the abort is the point
      } finally {
        c.destroy()
      }
    }
    const N = 1000
    let next = 0
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < N) await abortOne(next++)
      }),
    )
    // Still serving.
    expect(await getOnce(p.port, `http://localhost:${origin.port}/small`)).toEqual({ status: 200, body: "hello from l\n" })
    // Sockets are released (some linger a few seconds after a graceful close): wait for the count to come back.
    let after = await fdCount(p.pid)
    try {
      await until(
        "the socket count to return to the baseline",
        async () => {
          after = await fdCount(p.pid)
          return after.sockets <= before.sockets + 2
        },
        20_000,
        250,
      )
    } catch {
      // fall through to the assertion, which shows the numbers
    }
    const numbers = `before ${JSON.stringify(before.kinds)}, after ${JSON.stringify(after.kinds)}\n${p.output().slice(-3000)}`
    expect(after.sockets, numbers).toBeLessThanOrEqual(before.sockets + 2)
    expect(after.total, numbers).toBeLessThanOrEqual(before.total + 2)
  })
})
