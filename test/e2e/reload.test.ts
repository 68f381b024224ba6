/**
 * SIGHUP: the configuration file is read again and applied as a whole or not at all; requests and
 * tunnels that start afterwards are judged by the new settings, those under way finish under the old
 * ones, and a broken, unsafe or restart-only change changes nothing (issue 17 items 1 and 5).
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import net from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, describe, it } from "vitest"
import { startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, get, openTunnel } from "./support/wire.ts"

let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>
let dir: string
const proxies: Proxy[] = []

beforeAll(async () => {
  ;[origin, echo] = await Promise.all([startHttpOrigin("r"), startTcpServer("echo")])
  dir = mkdtempSync(join(tmpdir(), "hctunnel-reload-"))
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()))
  await Promise.all([origin?.close(), echo?.close()])
  rmSync(dir, { recursive: true, force: true })
})

/** One GET on a fresh connection: the status. */
const status = async (port: number, url: string): Promise<number> => {
  const c = await Conn.open(port)
  try {
    await c.write(get(url, "Connection: close\r\n"))
    return (await c.readResponse({ timeoutMs: 5000 })).status
  } finally {
    c.destroy()
  }
}

/** One GET with `extra` head fields on a fresh connection: the status. */
const statusWith = async (port: number, url: string, extra: string): Promise<number> => {
  const c = await Conn.open(port)
  try {
    await c.write(get(url, `${extra}Connection: close\r\n`))
    return (await c.readResponse({ timeoutMs: 5000 })).status
  } finally {
    c.destroy()
  }
}

/** One GET with proxy credentials (or none): the status. */
const statusAs = async (port: number, url: string, user?: string): Promise<number> => {
  const c = await Conn.open(port)
  try {
    const auth = user === undefined ? "" : `Proxy-Authorization: Basic ${Buffer.from(user).toString("base64")}\r\n`
    await c.write(get(url, `${auth}Connection: close\r\n`))
    return (await c.readResponse({ timeoutMs: 5000 })).status
  } finally {
    c.destroy()
  }
}

/** A users file written by the real htpasswd (bcrypt, cost 5 keeps the test quick). */
const htpasswd = (file: string, user: string, password: string, create: boolean): void => {
  execFileSync("/usr/bin/htpasswd", [create ? "-bBc" : "-bB", "-C", "5", file, user, password], { stdio: "ignore" })
}

/** Send SIGHUP and wait for the n-th line that says how the reload ended. */
const reload = async (p: Proxy, n: number): Promise<string> => {
  p.child.kill("SIGHUP")
  let seen = 0
  return p.waitForLine((line) => /configuration reloaded|reload rejected/.test(line) && ++seen === n)
}

describe("reload on SIGHUP", () => {
  it("switches the allow list for new connections, keeps an open tunnel relaying, and ignores a broken file", { timeout: 40_000 }, async ({
    expect,
  }) => {
    const file = join(dir, "config.json")
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"] }))
    const p = await startProxy({ workers: 2, extraArgs: ["--config", file] })
    proxies.push(p)
    const url = `http://127.0.0.1:${origin.port}/small`
    expect(await status(p.port, url)).toBe(200)
    const tunnel = await openTunnel(p.port, `127.0.0.1:${echo.port}`)

    // Loopback clients are no longer allowed: new connections get 403, the tunnel keeps relaying.
    writeFileSync(file, JSON.stringify({ allow: ["10.0.0.0/8"] }))
    expect(await reload(p, 1)).toMatch(/configuration reloaded: 2 workers/)
    for (let i = 0; i < 4; i++) expect(await status(p.port, url)).toBe(403)
    await tunnel.write("still here")
    expect((await tunnel.readBytes(10)).toString()).toBe("still here")

    // A file that does not validate is rejected with its error, and the running settings stay.
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"], idleTimeout: "soon" }))
    const rejected = await reload(p, 2)
    expect(rejected).toMatch(/reload rejected/)
    expect(rejected).toMatch(/idleTimeout/)
    expect(await status(p.port, url)).toBe(403)
    writeFileSync(file, "{ not json")
    expect(await reload(p, 3)).toMatch(/reload rejected.*not valid JSON/)
    expect(await status(p.port, url)).toBe(403)

    // A setting that needs a restart refuses the whole file, in one line: the allow-list in it is not applied.
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"], statsInterval: "5s" }))
    expect(await reload(p, 4)).toMatch(
      /reload rejected, the running configuration stays: --stats-interval changed, and only a restart applies it: nothing was applied/,
    )
    expect(await status(p.port, url)).toBe(403)
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"] }))
    expect(await reload(p, 5)).toMatch(/configuration reloaded/)
    for (let i = 0; i < 4; i++) expect(await status(p.port, url)).toBe(200)
    await tunnel.write("and now")
    expect((await tunnel.readBytes(7)).toString()).toBe("and now")
    tunnel.destroy()
  })

  it("applies new limits to new requests only: one under way finishes under the old", { timeout: 30_000 }, async ({ expect }) => {
    const file = join(dir, "limits.json")
    writeFileSync(file, JSON.stringify({ maxRequestLine: "8KiB", maxHeadBytes: "64KiB" }))
    const p = await startProxy({ workers: 1, extraArgs: ["--config", file] })
    proxies.push(p)
    const long = `http://127.0.0.1:${origin.port}/small?${"q".repeat(2000)}`
    const pad = `X-Pad: ${"p".repeat(6000)}\r\n` // a head of ~8 KB: within 64 KiB, beyond 4 KiB
    expect(await status(p.port, long)).toBe(200)
    // A request under way at the reload: its head has started to arrive (the request line; the proxy read it
    // long before the reload's round trip through the main thread), the rest comes after the reload.
    const underWay = await Conn.open(p.port)
    const head = get(long, pad)
    const lineEnd = head.indexOf("\r\n") + 2
    await underWay.write(head.slice(0, lineEnd))
    writeFileSync(file, JSON.stringify({ maxRequestLine: "1KiB", maxHeadBytes: "4KiB" }))
    expect(await reload(p, 1)).toMatch(/configuration reloaded: 1 worker /)
    await underWay.write(head.slice(lineEnd))
    // Served under the limits it started with: the new 4 KiB head limit would have answered 431.
    const r = await underWay.readResponse({ timeoutMs: 5000 })
    expect(r.status).toBe(200)
    // Its connection was accepted under the old limits and keeps them: it stays open (a reload closes no
    // connection for a limit), and its next request is read under those limits still.
    expect(r.headers["connection"]).not.toBe("close")
    await underWay.write(get(long, pad))
    expect((await underWay.readResponse({ timeoutMs: 5000 })).status).toBe(200)
    underWay.destroy()
    // A new connection is read under the new ones.
    expect(await status(p.port, long)).toBe(414)
    expect(await statusWith(p.port, `http://127.0.0.1:${origin.port}/small`, pad)).toBe(431)
  })

  it("a new log format and level apply at once to the main thread's lines too: reloads, stats, shutdown", { timeout: 30_000 }, async ({
    expect,
  }) => {
    const file = join(dir, "log.json")
    writeFileSync(file, JSON.stringify({ logFormat: "json", logLevel: "warn" }))
    const p = await startProxy({ workers: 1, logFormat: "config", extraArgs: ["--config", file] })
    proxies.push(p)
    const url = `http://127.0.0.1:${origin.port}/small`
    // To text and info: the confirmation, an info line of the main thread, is there and in text.
    writeFileSync(file, JSON.stringify({ logFormat: "text", logLevel: "info" }))
    expect(await reload(p, 1)).toMatch(/^INFO configuration reloaded: 1 worker /)
    expect(await status(p.port, `${url}?text`)).toBe(200)
    expect(await p.waitForLine((l) => l.includes("/small?text"))).toMatch(/^127\.0\.0\.1:\d+ GET /)
    // Back to JSON: from the confirmation on, every line is a JSON object, the main thread's as well.
    writeFileSync(file, JSON.stringify({ logFormat: "json", logLevel: "info" }))
    const confirmation = await reload(p, 2)
    const from = p.stdout.indexOf(confirmation)
    expect(JSON.parse(confirmation)).toMatchObject({ level: "info", message: expect.stringMatching(/^configuration reloaded/) })
    expect(await status(p.port, `${url}?json`)).toBe(200)
    await p.waitForLine((l) => l.includes("/small?json"))
    process.kill(p.pid, "SIGUSR1")
    await p.waitForLine((l) => l.includes('"message":"stats"'))
    expect(await p.stop()).toEqual({ code: 0, signal: null })
    const after = p.stdout.slice(from).map((l) => JSON.parse(l) as { message?: string; target?: string })
    expect(after.map((o) => o.message ?? o.target)).toEqual([
      expect.stringMatching(/^configuration reloaded/),
      `${url}?json`,
      "stats",
      expect.stringMatching(/^shutting down/),
      expect.stringMatching(/^stopped: stats/),
    ])
  })

  it("switches the users of --auth-file; a config change that breaks the users file changes nothing", { timeout: 40_000 }, async ({
    expect,
  }) => {
    const users = join(dir, "users")
    htpasswd(users, "alice", "one", true)
    const file = join(dir, "auth.json")
    writeFileSync(file, JSON.stringify({ authFile: users }))
    const p = await startProxy({ workers: 2, extraArgs: ["--config", file] })
    proxies.push(p)
    const url = `http://127.0.0.1:${origin.port}/small`
    expect(await statusAs(p.port, url)).toBe(407)
    expect(await statusAs(p.port, url, "alice:one")).toBe(200)
    const tunnel = await Conn.open(p.port)
    await tunnel.write(
      `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nProxy-Authorization: Basic ${Buffer.from("alice:one").toString("base64")}\r\n\r\n`,
    )
    expect((await tunnel.readHead()).status).toBe(200)

    // bob replaces alice: after SIGHUP, new requests need bob's password; alice's tunnel keeps relaying.
    htpasswd(users, "bob", "two", true)
    expect(await reload(p, 1)).toMatch(/configuration reloaded/)
    for (let i = 0; i < 4; i++) {
      expect(await statusAs(p.port, url, "alice:one")).toBe(407)
      expect(await statusAs(p.port, url, "bob:two")).toBe(200)
    }
    await tunnel.write("old tunnel")
    expect((await tunnel.readBytes(10)).toString()).toBe("old tunnel")

    // A users file that is not bcrypt fails the new configuration: rejected, bob still works.
    writeFileSync(users, "carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    const rejected = await reload(p, 2)
    expect(rejected).toMatch(/reload rejected/)
    expect(await statusAs(p.port, url, "bob:two")).toBe(200)
    tunnel.destroy()
  })

  it("from allow-only to authFile-only: 407 without credentials and 200 with, at once (issue 17 item 1)", { timeout: 40_000 }, async ({
    expect,
  }) => {
    const users = join(dir, "users-1")
    htpasswd(users, "carol", "three", true)
    const file = join(dir, "allow-to-auth.json")
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.1/32"] }))
    const p = await startProxy({ workers: 2, extraArgs: ["--config", file] })
    proxies.push(p)
    const url = `http://127.0.0.1:${origin.port}/small`
    expect(await statusAs(p.port, url)).toBe(200)
    writeFileSync(file, JSON.stringify({ authFile: users }))
    expect(await reload(p, 1)).toMatch(/configuration reloaded: 2 workers/)
    for (let i = 0; i < 4; i++) {
      expect(await statusAs(p.port, url)).toBe(407)
      expect(await statusAs(p.port, url, "carol:three")).toBe(200)
    }
    // And back: authentication off again, the allow-list alone.
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.1/32"] }))
    expect(await reload(p, 2)).toMatch(/configuration reloaded/)
    for (let i = 0; i < 4; i++) expect(await statusAs(p.port, url)).toBe(200)
  })

  it("on an exposed listener: allow replaced by authFile is applied whole or not at all, and a reload that would open the proxy is refused", {
    timeout: 60_000,
  }, async ({ expect }) => {
    const users = join(dir, "users-2")
    htpasswd(users, "dave", "four", true)
    const file = join(dir, "exposed.json")
    // Listens on 0.0.0.0 (as test/e2e/policy.test.ts does), but every request here goes to 127.0.0.1; the
    // origin there is opened to it (an exposed proxy denies loopback destinations by default).
    const to = { allowTo: [`127.0.0.1:${origin.port}`] }
    writeFileSync(file, JSON.stringify({ ...to, allow: ["127.0.0.2/32"] }))
    const p = await startProxy({ workers: 2, listenHost: "0.0.0.0", extraArgs: ["--config", file] })
    proxies.push(p)
    const url = `http://127.0.0.1:${origin.port}/small`
    expect(await statusAs(p.port, url)).toBe(403)

    // The audit's file: allow replaced by authFile, with a setting only a restart applies. Before, the
    // widened allow-list applied and authFile waited for a restart: no allow-list and no authentication.
    writeFileSync(file, JSON.stringify({ ...to, authFile: users, statsInterval: "5s" }))
    expect(await reload(p, 1)).toMatch(/reload rejected.*--stats-interval changed.*nothing was applied/)
    for (let i = 0; i < 4; i++) expect(await statusAs(p.port, url)).toBe(403)

    // The same without it: applied as a whole.
    writeFileSync(file, JSON.stringify({ ...to, authFile: users }))
    expect(await reload(p, 2)).toMatch(/configuration reloaded/)
    for (let i = 0; i < 4; i++) {
      expect(await statusAs(p.port, url)).toBe(407)
      expect(await statusAs(p.port, url, "dave:four")).toBe(200)
    }

    // Neither allow nor authFile on a public listener: an open proxy, refused; authentication stays.
    writeFileSync(file, JSON.stringify(to))
    expect(await reload(p, 3)).toMatch(
      /reload rejected.*refusing to listen on 0\.0\.0\.0:\d+ \(not a loopback address\) without an explicit client allow-list/,
    )
    for (let i = 0; i < 4; i++) expect(await statusAs(p.port, url)).toBe(407)
    expect(await statusAs(p.port, url, "dave:four")).toBe(200)
  })

  it("reaches kept-alive connections: a new deny rule answers their next request, a narrowed allow-list closes them (issue 17 item 5)", {
    timeout: 40_000,
  }, async ({ expect }) => {
    const file = join(dir, "kept-alive.json")
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"] }))
    const p = await startProxy({ workers: 1, extraArgs: ["--config", file, "--hosts", "origin.test=127.0.0.1"] })
    proxies.push(p)
    const url = `http://origin.test:${origin.port}/small`
    const kept = await Conn.open(p.port)
    await kept.write(get(url))
    expect((await kept.readResponse({ timeoutMs: 5000 })).status).toBe(200)
    const other = new Conn(net.connect({ port: p.port, host: "127.0.0.1", localAddress: "127.0.0.5" }))
    await other.write(get(url))
    expect((await other.readResponse({ timeoutMs: 5000 })).status).toBe(200)

    // (A name rule; one on the address is the next test's: it must reach the pooled origin connection.)
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.1/32"], denyTo: ["origin.test"] }))
    expect(await reload(p, 1)).toMatch(/configuration reloaded/)
    // The same connection: its next request is judged by the new rule.
    await kept.write(get(url))
    expect((await kept.readResponse({ timeoutMs: 5000 })).status).toBe(403)
    // 127.0.0.5 is no longer allowed: its idle connection was closed by the reload.
    expect((await other.readToEnd()).length).toBe(0)
    kept.destroy()
    other.destroy()
  })

  it("reaches pooled origin connections: a deny rule on the origin's address answers the next plain request, which does not reuse one (issue 17 item 5)", {
    timeout: 40_000,
  }, async ({ expect }) => {
    const file = join(dir, "pooled.json")
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"] }))
    const p = await startProxy({ workers: 1, extraArgs: ["--config", file, "--hosts", "origin.test=127.0.0.1"] })
    proxies.push(p)
    const url = `http://origin.test:${origin.port}/small`
    // A kept-alive client connection, and an origin connection left idle in the worker's pool by its request.
    const kept = await Conn.open(p.port)
    await kept.write(get(url))
    expect((await kept.readResponse({ timeoutMs: 5000 })).status).toBe(200)

    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"], denyTo: [`127.0.0.1:${origin.port}`] }))
    expect(await reload(p, 1)).toMatch(/configuration reloaded/)
    // The address is judged at reuse as at a dial: denied on the same client connection and on a new one.
    await kept.write(get(url))
    const again = await kept.readResponse({ timeoutMs: 5000 })
    expect(again.status).toBe(403)
    expect(again.body.toString()).toContain(`--deny-to 127.0.0.1:${origin.port}`)
    expect(await status(p.port, url)).toBe(403)
    kept.destroy()
  })
})
