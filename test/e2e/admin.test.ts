/**
 * The admin endpoint (`--admin`) of the built proxy: /healthz through a graceful shutdown, /stats,
 * /metrics checked by the real `promtool check metrics` and moving with traffic, and the answers to
 * other paths and methods, who may ask (sources outside --admin-allow are closed before anything is
 * read and cannot use up the allowed sources' slots; a Host that is not the endpoint's own address gets
 * 421). Each test starts its own proxy with `--admin 127.0.0.1:0`.
 */
import net from "node:net"
import { afterAll, beforeAll, describe, it } from "vitest"
import { refusedPort, startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { canConnect, CLI, startProxy, type Proxy, type ProxyOptions } from "./support/proxy.ts"
import { curl, run } from "./support/run.ts"
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

const fetchText = async (
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; type: string | null; body: string; allow: string | null }> => {
  const r = await fetch(url, init)
  return { status: r.status, type: r.headers.get("content-type"), body: await r.text(), allow: r.headers.get("allow") }
}

/** Parse the exposition's samples: `name{labels}` -> value. */
const samples = (text: string): Map<string, number> => {
  const out = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const sp = line.lastIndexOf(" ")
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)))
  }
  return out
}
const value = (m: Map<string, number>, series: string): number => {
  const v = m.get(series)
  if (v === undefined) throw new Error(`no series ${series} in /metrics`)
  return v
}

/** `promtool check metrics` (Debian package prometheus) on the text: its exit code and what it said. */
const promtool = async (text: string): Promise<{ code: number | null; said: string }> => {
  const r = await run("promtool", ["check", "metrics"], { input: text, timeoutMs: 20_000 })
  return { code: r.code, said: `${r.stdout.toString()}${r.stderr}` }
}

describe.concurrent("admin endpoint", () => {
  it("/metrics passes promtool and its counters and histograms move with the traffic", { timeout: 60_000 }, async ({ expect }) => {
    const { p, admin } = await launch({ workers: 2, extraArgs: ["--allow", "127.0.0.1/32"] })
    const before = await fetchText(`${admin}/metrics`)
    expect(before.status).toBe(200)
    expect(before.type).toBe("text/plain; version=0.0.4; charset=utf-8")
    expect(await promtool(before.body)).toEqual({ code: 0, said: "" })
    const m0 = samples(before.body)
    expect(value(m0, 'hctunnel_requests_total{method="GET",status="2xx"}')).toBe(0)
    expect(value(m0, "hctunnel_workers_running")).toBe(2)
    expect(m0.has('hctunnel_worker_event_loop_delay_p99_seconds{worker="0"}')).toBe(true)
    expect(m0.has('hctunnel_worker_event_loop_delay_p99_seconds{worker="1"}')).toBe(true)

    // Traffic: two GETs on one kept-alive connection (the second reuses the pooled origin connection),
    // a POST with a body, a GET to a closed port (502, connect refused), a client outside --allow, and a
    // tunnel left open.
    const c = await Conn.open(p.port)
    for (let i = 0; i < 2; i++) {
      await c.write(get(`http://127.0.0.1:${origin.port}/small`))
      expect((await c.readResponse()).status).toBe(200)
    }
    const post = await curl(p.url, [
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--data-binary",
      "hello",
      `http://127.0.0.1:${origin.port}/echo`,
    ])
    expect(post.stdout.toString()).toBe("200")
    const closed = await refusedPort()
    const bad = await curl(p.url, ["-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${closed}/`])
    expect(bad.stdout.toString()).toBe("502")
    const outsider = await run("/usr/bin/curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--interface",
      "127.0.0.3",
      "-x",
      p.url,
      `http://127.0.0.1:${origin.port}/small`,
    ])
    expect(outsider.stdout.toString()).toBe("403")
    const tunnel = await openTunnel(p.port, `127.0.0.1:${echo.port}`)
    await tunnel.write("ping")
    expect((await tunnel.readBytes(4)).toString()).toBe("ping")

    const after = await fetchText(`${admin}/metrics`)
    expect(await promtool(after.body)).toEqual({ code: 0, said: "" })
    const m = samples(after.body)
    expect(value(m, 'hctunnel_requests_total{method="GET",status="2xx"}')).toBe(2)
    expect(value(m, 'hctunnel_requests_total{method="POST",status="2xx"}')).toBe(1)
    expect(value(m, 'hctunnel_requests_total{method="GET",status="5xx"}')).toBe(1)
    expect(value(m, 'hctunnel_request_outcomes_total{outcome="origin_error"}')).toBe(1)
    expect(value(m, 'hctunnel_origin_connect_failures_total{reason="refused"}')).toBe(1)
    expect(value(m, 'hctunnel_connections_refused_total{reason="not_allowed"}')).toBe(1)
    // Five dials asked for; the second GET reuses the first one's origin connection (the POST may too, if
    // it lands on the same worker: each worker has its own pool).
    const hits = value(m, 'hctunnel_origin_pool_lookups_total{result="hit"}')
    expect(hits).toBeGreaterThanOrEqual(1)
    expect(hits + value(m, 'hctunnel_origin_pool_lookups_total{result="miss"}')).toBe(5)
    expect(value(m, "hctunnel_tunnels_open")).toBe(1)
    expect(value(m, "hctunnel_tunnels_opened_total")).toBe(1)
    expect(value(m, 'hctunnel_bytes_total{direction="from_client"}')).toBeGreaterThan(
      value(m0, 'hctunnel_bytes_total{direction="from_client"}'),
    )
    expect(value(m, 'hctunnel_bytes_total{direction="from_origin"}')).toBeGreaterThan(
      value(m0, 'hctunnel_bytes_total{direction="from_origin"}'),
    )
    // Histograms: one observation per plain exchange; one connect per dial that succeeded.
    expect(value(m, "hctunnel_request_duration_seconds_count")).toBe(4)
    expect(value(m, 'hctunnel_request_duration_seconds_bucket{le="+Inf"}')).toBe(4)
    expect(value(m, "hctunnel_time_to_first_byte_seconds_count")).toBe(3)
    expect(value(m, "hctunnel_origin_connect_duration_seconds_count")).toBe(5 - hits - 1)
    expect(value(m, "hctunnel_request_duration_seconds_sum")).toBeGreaterThan(0)

    // The tunnel ends: it moves from open to closed, and opened stays.
    tunnel.destroy()
    await until(
      "the tunnel is counted closed",
      async () => value(samples((await fetchText(`${admin}/metrics`)).body), "hctunnel_tunnels_open") === 0,
    )
    const m2 = samples((await fetchText(`${admin}/metrics`)).body)
    expect(value(m2, "hctunnel_tunnels_opened_total")).toBe(1)
    expect(value(m2, "hctunnel_tunnels_closed_total")).toBe(1)
    expect(value(m2, 'hctunnel_requests_total{method="CONNECT",status="2xx"}')).toBe(1)
    expect(value(m2, "hctunnel_tunnel_duration_seconds_count")).toBe(1)
    c.destroy()
  })

  it("/healthz is 200 ok while serving, 503 from SIGTERM while a tunnel holds the grace period open", { timeout: 30_000 }, async ({
    expect,
  }) => {
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

  it("a worker that crashes is replaced: restarts counted, its counters kept", { timeout: 60_000 }, async ({ expect }) => {
    const { p, admin } = await launch({ workers: 2, env: { HCTUNNEL_TEST_HOOKS: "1" } })
    for (let i = 0; i < 6; i++) {
      const c = await Conn.open(p.port)
      await c.write(get(`http://127.0.0.1:${origin.port}/small`, "Connection: close\r\n"))
      expect((await c.readResponse()).status).toBe(200)
      c.destroy()
    }
    const series = 'hctunnel_requests_total{method="GET",status="2xx"}'
    // This scrape fetches both workers' figures, so whichever worker crashes next has reported its share.
    expect(value(samples((await fetchText(`${admin}/metrics`)).body), series)).toBe(6)
    const c = await Conn.open(p.port)
    await c.write(get("http://crash.hctunnel.invalid/"))
    await c.readToEnd(10_000).catch(() => Buffer.alloc(0))
    c.destroy()
    let m = new Map<string, number>()
    await until(
      "the worker is replaced",
      async () => {
        m = samples((await fetchText(`${admin}/metrics`)).body)
        return value(m, "hctunnel_worker_restarts_total") === 1 && value(m, "hctunnel_workers_running") === 2
      },
      40_000,
      50,
    )
    expect(value(m, series)).toBe(6)
    expect(await promtool((await fetchText(`${admin}/metrics`)).body)).toEqual({ code: 0, said: "" })
  })

  it("an --admin port in use: exit 1 with a message naming --admin", { timeout: 30_000 }, async ({ expect }) => {
    const { admin } = await launch({ workers: 1 })
    const port = new URL(admin).port
    const r = await run(process.execPath, [CLI, "--listen", "127.0.0.1:0", "--workers", "1", "--admin", `127.0.0.1:${port}`], {
      timeoutMs: 20_000,
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(
      `hctunnel: cannot serve the admin endpoint on 127.0.0.1:${port}: the address is already in use. Choose another port with --admin.\n`,
    )
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

  it("80 partial heads from outside --admin-allow are closed at once; /healthz answers the allowed source; a rebound Host gets 421", {
    timeout: 30_000,
  }, async ({ expect }) => {
    const { admin } = await launch({ workers: 1, extraArgs: ["--admin-allow", "127.0.0.1/32"] })
    const port = Number(new URL(admin).port)
    const raw = (text: string, localAddress: string) => {
      const socket = net.connect({ host: "127.0.0.1", port, localAddress })
      socket.on("error", () => {})
      let got = ""
      socket.on("data", (d: Buffer) => (got += d.toString("latin1")))
      socket.write(text)
      return { socket, closed: new Promise<string>((resolve) => socket.once("close", () => resolve(got))) }
    }
    const refused = Array.from({ length: 80 }, () => raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", "127.0.0.2"))
    for (const r of refused) expect(await r.closed).toBe("")
    expect(await fetchText(`${admin}/healthz`)).toMatchObject({ status: 200, body: "ok\n" })
    const rebound = await raw(`GET /stats HTTP/1.1\r\nHost: attacker.example:${port}\r\nConnection: close\r\n\r\n`, "127.0.0.1").closed
    expect(rebound).toMatch(/^HTTP\/1\.1 421 /)
    expect(rebound).not.toContain("pid")
  })
})
