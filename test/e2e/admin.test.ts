/**
 * The admin endpoint (`--admin`) of the built proxy: /healthz through a graceful shutdown, /stats,
 * /metrics checked by the real `promtool check metrics` and moving with traffic, and the answers to
 * other paths and methods. Each test starts its own proxy with `--admin 127.0.0.1:0`.
 */
import { afterAll, beforeAll, describe, it } from "vitest"
import { startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { canConnect, startProxy, type Proxy, type ProxyOptions } from "./support/proxy.ts"
import { Conn, get, openTunnel, until } from "./support/wire.ts"

let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>
const proxies: Proxy[] = []

beforeAll(async () => {
  ;[origin, echo] = await Promise.all([startHttpOrigin("a"), startTcpServer("echo")])
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()))
  await Promise.all([origin?.close(), echo?.close()])
})

/** A proxy with the admin endpoint on a free loopback port; `admin` is its base URL, from the start-up line. */
const launch = async (options: ProxyOptions = {}): Promise<{ p: Proxy; admin: string }> => {
  const p = await startProxy({ ...options, extraArgs: ["--admin", "127.0.0.1:0", ...(options.extraArgs ?? [])] })
  proxies.push(p)
  const line = await p.waitForLine(/listening/)
  const m = /admin endpoint on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(line)
  if (m === null) throw new Error(`no admin address in the start-up line: ${line}`)
  return { p, admin: m[1] as string }
}

const fetchText = async (url: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; body: string; allow: string | null }> => {
  const r = await fetch(url, init)
  return { status: r.status, type: r.headers.get("content-type"), body: await r.text(), allow: r.headers.get("allow") }
}

describe.concurrent("admin endpoint", () => {
  it("/healthz is 200 ok while serving, 503 from SIGTERM while a tunnel holds the grace period open", { timeout: 30_000 }, async ({ expect }) => {
    const { p, admin } = await launch({ workers: 2, graceMs: 4000 })
    expect(await fetchText(`${admin}/healthz`)).toMatchObject({ status: 200, body: "ok\n" })
    const tunnel = await openTunnel(p.port, `127.0.0.1:${echo.port}`)
    await tunnel.write("x")
    expect((await tunnel.readBytes(1)).toString()).toBe("x")

    p.child.kill("SIGTERM")
    await until("/healthz says draining", async () => (await fetchText(`${admin}/healthz`)).status === 503, 5000, 20)
    expect(await fetchText(`${admin}/healthz`)).toMatchObject({ status: 503, body: "draining\n" })
    // The proxy listeners are closed, the tunnel still relays, and the admin endpoint still answers.
    await until("new proxy connections are refused", async () => !(await canConnect(p.port)), 5000, 20)
    await tunnel.write("y")
    expect((await tunnel.readBytes(1)).toString()).toBe("y")
    expect(p.child.exitCode).toBeNull()
    expect((await fetchText(`${admin}/stats`)).status).toBe(200)
    tunnel.destroy()
    expect(await p.exited, p.output()).toEqual({ code: 0, signal: null })
  })

  it("/stats is the stats line's figures as JSON", { timeout: 30_000 }, async ({ expect }) => {
    const { p, admin } = await launch({ workers: 2 })
    const c = await Conn.open(p.port)
    await c.write(get(`http://127.0.0.1:${origin.port}/small`))
    expect((await c.readResponse()).status).toBe(200)
    const r = await fetchText(`${admin}/stats`)
    expect(r.status).toBe(200)
    expect(r.type).toBe("application/json")
    const s = JSON.parse(r.body) as Record<string, number>
    expect(s["pid"]).toBe(p.pid)
    expect(s["workers"]).toBe(2)
    expect(s["workersRunning"]).toBe(2)
    // Fetched from the workers at scrape time: the request just made is counted.
    expect(s["requests"]).toBe(1)
    // (startProxy's readiness probes are connections too.)
    expect(s["connectionsAccepted"]).toBeGreaterThanOrEqual(1)
    expect(s["connectionsLive"]).toBeGreaterThanOrEqual(1)
    c.destroy()
  })

  it("other paths are 404, other methods 405, HEAD has no body", { timeout: 30_000 }, async ({ expect }) => {
    const { admin } = await launch({ workers: 1 })
    expect((await fetchText(`${admin}/`)).status).toBe(404)
    expect((await fetchText(`${admin}/metricsx`)).status).toBe(404)
    const post = await fetchText(`${admin}/metrics`, { method: "POST", body: "x" })
    expect(post.status).toBe(405)
    expect(post.allow).toBe("GET, HEAD")
    expect(await fetchText(`${admin}/healthz`, { method: "HEAD" })).toMatchObject({ status: 200, body: "" })
    expect((await fetchText(`${admin}/healthz?probe=1`)).status).toBe(200)
  })
})
