/**
 * hctunnel as a library (src/index.ts, docs/library.md), in this process, against loopback origins only:
 * startProxy with every call of its handle; two proxies in one program with their own ports, settings and
 * workers, one the other's per-request parent through a route hook; the hooks' answers, errors and
 * timeouts; anonymizeProxy in front of an authenticated parent; start-up failures; no signal handler
 * installed. (A program that exits by itself after close() is test/e2e/library-exit.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { anonymizeProxy, closeAnonymizedProxy, ProxyError, startProxy } from "../../src/index.ts"
import type { RunningProxy } from "../../src/lib/api.ts"
import { type HttpOrigin, startHttpOrigin, startTcpServer } from "./support/origins.ts"
import { canConnect, startProxy as startCommand } from "./support/proxy.ts"
import { Conn, get, type Response, until } from "./support/wire.ts"

// Each start of a proxy spawns worker threads: on a busy machine a test may take a while.
vi.setConfig({ testTimeout: 90_000 })

const basic = (user: string, password: string) => `Proxy-Authorization: Basic ${Buffer.from(`${user}:${password}`).toString("base64")}\r\n`

/** One request through `proxy` (its port from the URL), the connection closed after it. */
const through = async (proxy: string, url: string, extra = ""): Promise<Response> => {
  const c = await Conn.open(Number(new URL(proxy).port))
  try {
    await c.write(get(url, `Connection: close\r\n${extra}`))
    return await c.readResponse({ timeoutMs: 20_000 })
  } finally {
    c.destroy()
  }
}

/** A CONNECT through `proxy`: its status line, and (on 200) what the echo server sent back of `ping`. */
const tunnel = async (proxy: string, authority: string, extra = "", ping = "ping"): Promise<{ status: number; echoed?: string }> => {
  const c = await Conn.open(Number(new URL(proxy).port))
  try {
    await c.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${extra}\r\n`)
    const head = await c.readHead(20_000)
    if (head.status !== 200) return { status: head.status }
    await c.write(ping)
    return { status: 200, echoed: (await c.readBytes(ping.length, 20_000)).toString() }
  } finally {
    c.destroy()
  }
}

let dir: string
let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>
/** The parent: authentication by hook (alice:secret, bob:pw renamed robert), two workers. */
let parent: RunningProxy
/** The child: authentication and routing by hooks; some destinations go through `parent`. */
let child: RunningProxy
const signalsBefore = { hup: 0, term: 0, int: 0 }

/** A hooks module in the test's directory, by file URL. */
const hooksModule = (name: string, source: string): URL => {
  const path = join(dir, `${name}.mjs`)
  writeFileSync(path, source)
  return pathToFileURL(path)
}

const AUTH_HOOK = `
export async function authenticate({ user, password, client }) {
  if (user === "throws") throw new Error("the user database is down")
  if (user === "silent") return new Promise(() => {})
  if (user === "alice" && password === "secret") return true
  if (user === "bob" && password === "pw") return { user: "robert" }
  return false
}
`

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hctunnel-lib-"))
  ;[origin, echo] = await Promise.all([startHttpOrigin("library"), startTcpServer("echo")])
  signalsBefore.hup = process.listenerCount("SIGHUP")
  signalsBefore.term = process.listenerCount("SIGTERM")
  signalsBefore.int = process.listenerCount("SIGINT")
  const hosts = { "origin.test": "127.0.0.1", "chained.test": "127.0.0.1", "deny.test": "127.0.0.1", "direct.test": "127.0.0.1" }
  parent = await startProxy({ workers: 2, hosts, hooks: hooksModule("parent", AUTH_HOOK) })
  const parentWithCredentials = parent.url.replace("http://", "http://alice:secret@")
  const routeHook = `
${AUTH_HOOK}
export function route({ method, host, port, tunnel, user, client }) {
  switch (host) {
    case "chained.test": return { upstream: ${JSON.stringify(parentWithCredentials)} }
    case "direct.test": return { upstream: null }
    case "deny.test": return { deny: \`no \${method} for \${user} from \${client} (tunnel: \${tunnel}, port \${port > 0})\` }
    case "throws.test": throw new Error("the routing table is gone")
    case "slow.test": return new Promise(() => {})
    case "odd.test": return 42
    case "badparent.test": return { upstream: "ftp://user:hunter2@127.0.0.1:21" }
    default: return undefined
  }
}
`
  child = await startProxy({ workers: 1, hosts, hooks: hooksModule("child", routeHook), hookTimeout: "500ms", via: "child" })
}, 120_000)

afterAll(async () => {
  await Promise.all([child?.close(0), parent?.close(0)])
  await Promise.all([origin?.close(), echo?.close()])
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe("startProxy", () => {
  it("resolves once it listens: its URL on loopback, its own port and workers, no signal handler installed", () => {
    expect(parent.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(child.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(child.url).not.toBe(parent.url)
    expect(parent.workers).toBe(2)
    expect(child.workers).toBe(1)
    expect(parent.addresses[0]?.port).toBe(Number(new URL(parent.url).port))
    expect(process.listenerCount("SIGHUP")).toBe(signalsBefore.hup)
    expect(process.listenerCount("SIGTERM")).toBe(signalsBefore.term)
    expect(process.listenerCount("SIGINT")).toBe(signalsBefore.int)
  })

  it("forwards a request and opens a tunnel for an authenticated client; the rest get 407", async () => {
    const ok = await through(parent.url, `http://origin.test:${origin.port}/small`, basic("alice", "secret"))
    expect(ok.status).toBe(200)
    expect(ok.body.toString()).toBe("hello from library\n")
    expect(await tunnel(parent.url, `127.0.0.1:${echo.port}`, basic("alice", "secret"))).toEqual({ status: 200, echoed: "ping" })
    expect((await through(parent.url, `http://origin.test:${origin.port}/small`)).status).toBe(407)
    expect((await through(parent.url, `http://origin.test:${origin.port}/small`, basic("alice", "wrong"))).status).toBe(407)
  })

  it("stats() counts what went through", async () => {
    const stats = await parent.stats()
    expect(stats.workers).toBe(2)
    expect(stats.workersRunning).toBe(2)
    expect(stats.requests).toBeGreaterThanOrEqual(3)
    expect(stats.tunnels).toBeGreaterThanOrEqual(1)
    expect(stats.authOk).toBeGreaterThanOrEqual(2)
    expect(stats.authFailed).toBeGreaterThanOrEqual(2)
    expect(stats.pid).toBe(process.pid)
  })
})

describe("the authenticate hook", () => {
  it("may rename the user; the route hook is told the name it gave", async () => {
    const r = await through(child.url, `http://deny.test:${origin.port}/small`, basic("bob", "pw"))
    expect(r.status).toBe(403)
    expect(r.body.toString()).toBe("403 Forbidden: no GET for robert from 127.0.0.1 (tunnel: false, port true)\n")
    const t = await through(child.url, `http://deny.test:${origin.port}/small`, basic("alice", "secret"))
    expect(t.body.toString()).toContain("no GET for alice from 127.0.0.1")
  })

  it("that throws or does not answer in time fails that request with 503, and the proxy goes on", async () => {
    const thrown = await through(child.url, `http://origin.test:${origin.port}/small`, basic("throws", "x"))
    expect(thrown.status).toBe(503)
    expect(thrown.body.toString()).toBe("503 Service Unavailable: the proxy's authenticate hook failed\n")
    const silent = await through(child.url, `http://origin.test:${origin.port}/small`, basic("silent", "x"))
    expect(silent.status).toBe(503)
    expect(silent.body.toString()).toBe("503 Service Unavailable: the proxy's authenticate hook did not answer within 500 ms\n")
    expect((await through(child.url, `http://origin.test:${origin.port}/small`, basic("alice", "secret"))).status).toBe(200)
  })
})

describe("the route hook", () => {
  const alice = basic("alice", "secret")

  it("denies with its own words (403), for requests and tunnels", async () => {
    const r = await through(child.url, `http://deny.test:${origin.port}/small`, alice)
    expect(r.status).toBe(403)
    const t = await tunnel(child.url, `deny.test:${echo.port}`, alice)
    expect(t.status).toBe(403)
  })

  it("sends a request and a tunnel through another embedded proxy, with that proxy's credentials", async () => {
    const before = await parent.stats()
    const r = await through(child.url, `http://chained.test:${origin.port}/small`, alice)
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe("hello from library\n")
    // The origin saw both proxies in Via: the child's, then the parent's.
    const seen = origin.seen.at(-1)
    expect(seen?.headers["via"]).toMatch(/1\.1 child, 1\.1 hctunnel/)
    expect(await tunnel(child.url, `chained.test:${echo.port}`, alice, "through two")).toEqual({ status: 200, echoed: "through two" })
    // A tunnel is counted when it ends, which the parent learns a moment after the client closed.
    let after = await parent.stats()
    await until("the parent counted the tunnel", async () => {
      after = await parent.stats()
      return after.tunnels > before.tunnels
    })
    expect(after.requests - before.requests).toBeGreaterThanOrEqual(1)
    expect(after.authOk - before.authOk).toBeGreaterThanOrEqual(2)
  })

  it("goes direct on { upstream: null } and as configured on undefined", async () => {
    expect((await through(child.url, `http://direct.test:${origin.port}/small`, alice)).status).toBe(200)
    expect((await through(child.url, `http://origin.test:${origin.port}/small`, alice)).status).toBe(200)
  })

  it("fails one request with 503 when it throws, hangs, answers nonsense or names a bad parent; the worker goes on", async () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["throws.test", "the proxy's route hook failed"],
      ["slow.test", "the proxy's route hook did not answer within 500 ms"],
      ["odd.test", "the proxy's route hook gave an answer it does not understand"],
      ["badparent.test", "the proxy's route hook named an invalid parent proxy"],
    ]
    for (const [host, message] of cases) {
      const r = await through(child.url, `http://${host}:${origin.port}/small`, alice)
      expect([host, r.status, r.body.toString()]).toEqual([host, 503, `503 Service Unavailable: ${message}\n`])
    }
    const t = await tunnel(child.url, `throws.test:${echo.port}`, alice)
    expect(t.status).toBe(503)
    expect((await through(child.url, `http://origin.test:${origin.port}/small`, alice)).status).toBe(200)
    expect((await child.stats()).restarts).toBe(0)
  })
})

describe("reload()", () => {
  it("applies new settings to new connections of that proxy only", async () => {
    await parent.reload({ denyTo: ["origin.test"] })
    const denied = await through(parent.url, `http://origin.test:${origin.port}/small`, basic("alice", "secret"))
    expect(denied.status).toBe(403)
    expect(denied.body.toString()).toContain("--deny-to origin.test")
    // The other proxy keeps its own settings.
    expect((await through(child.url, `http://origin.test:${origin.port}/small`, basic("alice", "secret"))).status).toBe(200)
    // A key set to undefined goes back to its default.
    await parent.reload({ denyTo: undefined })
    expect((await through(parent.url, `http://origin.test:${origin.port}/small`, basic("alice", "secret"))).status).toBe(200)
  })

  it("refuses, changing nothing, a setting only a restart can change, and an invalid value", async () => {
    const restart = await parent.reload({ workers: 3 }).catch((e: unknown) => e)
    expect(restart).toBeInstanceOf(ProxyError)
    expect((restart as ProxyError).code).toBe("ERR_HCTUNNEL_RELOAD")
    expect((restart as ProxyError).message).toBe(
      "cannot change workers while the proxy runs (nothing was changed): close it and start another",
    )
    const invalid = await parent.reload({ idleTimeout: "soon" }).catch((e: unknown) => e)
    expect((invalid as ProxyError).code).toBe("ERR_HCTUNNEL_CONFIG")
    expect((invalid as ProxyError).message).toMatch(/^invalid configuration: startProxy options: "idleTimeout": "soon": /)
    expect((await parent.stats()).workers).toBe(2)
  })
})

describe("anonymizeProxy", () => {
  it("puts a local proxy without credentials in front of an authenticated parent, and closes it", async () => {
    const local = await anonymizeProxy(parent.url.replace("http://", "http://alice:secret@"))
    expect(local).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const r = await through(local, `http://origin.test:${origin.port}/small`)
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe("hello from library\n")
    expect(await tunnel(local, `127.0.0.1:${echo.port}`, "", "anonymous")).toEqual({ status: 200, echoed: "anonymous" })
    expect(await closeAnonymizedProxy(local, true)).toBe(true)
    expect(await closeAnonymizedProxy(local, true)).toBe(false)
    expect(await canConnect(Number(new URL(local).port))).toBe(false)
  })
})

describe("start-up failures and close()", () => {
  it("rejects bad options with the command's words, and starts nothing", async () => {
    const e = await startProxy({ port: 70_000, idleTimeot: "1s" } as never).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ProxyError)
    expect((e as ProxyError).code).toBe("ERR_HCTUNNEL_CONFIG")
    expect((e as ProxyError).message).toContain('startProxy options: unknown key "idleTimeot"; known keys: listen, port, workers,')
    expect((e as ProxyError).message).toContain('startProxy options: "port": 70000: 70000 is not a valid port')
    const open = await startProxy({ listen: "0.0.0.0:0" }).catch((x: unknown) => x)
    expect((open as ProxyError).message).toMatch(
      /refusing to listen on 0\.0\.0\.0:0 \(not a loopback address\) without an explicit client allow-list/,
    )
  })

  it("rejects a hooks module that cannot be loaded, or that exports no hook", async () => {
    const missing = await startProxy({ workers: 1, hooks: join(dir, "nope.mjs") }).catch((x: unknown) => x)
    expect((missing as ProxyError).code).toBe("ERR_HCTUNNEL_START")
    expect((missing as ProxyError).message).toMatch(/^a worker could not start: cannot load the hooks module file:\/\/.*nope\.mjs: /)
    const empty = await startProxy({ workers: 1, hooks: hooksModule("empty", "export const nothing = 1\n") }).catch((x: unknown) => x)
    expect((empty as ProxyError).message).toMatch(/exports neither authenticate nor route/)
  })

  it("rejects a port in use, and close() frees its own port", async () => {
    const holder = net.createServer()
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve))
    const port = (holder.address() as net.AddressInfo).port
    const busy = await startProxy({ workers: 1, listen: `127.0.0.1:${port}` }).catch((x: unknown) => x)
    await new Promise((resolve) => holder.close(resolve))
    expect((busy as ProxyError).code).toBe("ERR_HCTUNNEL_START")
    expect((busy as ProxyError).message).toMatch(/^cannot listen on 127\.0\.0\.1:\d+: the address is already in use/)

    const proxy = await startProxy({ workers: 1, listen: `127.0.0.1:${port}` })
    expect(proxy.url).toBe(`http://127.0.0.1:${port}`)
    const closing = proxy.close()
    expect(proxy.close()).toBe(closing)
    await closing
    await proxy.closed
    expect(await canConnect(port)).toBe(false)
    const after = await proxy.stats().catch((x: unknown) => x)
    expect((after as ProxyError).code).toBe("ERR_HCTUNNEL_CLOSED")
  })
})

describe("the command with --hooks", () => {
  it("imports the module a relative path names, and its route hook decides", async () => {
    writeFileSync(
      join(dir, "command-hooks.mjs"),
      'export const route = ({ host }) => (host === "deny.test" ? { deny: "not from the command" } : undefined)\n',
    )
    const command = await startCommand({
      workers: 1,
      cwd: dir,
      extraArgs: ["--hooks", "./command-hooks.mjs", "--hosts", "origin.test=127.0.0.1"],
    })
    try {
      const denied = await through(command.url, `http://deny.test:${origin.port}/small`)
      expect(denied.status).toBe(403)
      expect(denied.body.toString()).toBe("403 Forbidden: not from the command\n")
      expect((await through(command.url, `http://origin.test:${origin.port}/small`)).status).toBe(200)
    } finally {
      await command.stop()
    }
  })
})
