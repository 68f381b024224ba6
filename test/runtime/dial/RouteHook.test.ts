/**
 * The Dialer with a route hook (RouteHook.ts), over loopback: the hook is asked once per connect with the
 * request's facts, before any lookup; each of its answers is carried out (deny, a parent, direct, as
 * configured), the destination policy still judges what it chose, and a hook that throws, answers
 * nonsense or never answers fails that connect with `unrouted`. A connect cancelled while the hook thinks
 * is never answered. Names come from a scripted resolver; the clock of the hook's deadline is a variable.
 */
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { defaultLimits } from "../../../src/core/limits.ts"
import { makePolicy } from "../../../src/runtime/dial/DestinationPolicy.ts"
import {
  type ConnectFailed,
  type Connected,
  type DialClient,
  Dialer,
  type DialerOptions,
  readUnowned,
} from "../../../src/runtime/dial/Dialer.ts"
import type { ResolveCallback, Resolved } from "../../../src/runtime/dial/Resolver.ts"
import { type RouteFunction, RouteHook, type RouteRequest } from "../../../src/runtime/dial/RouteHook.ts"
import { UpstreamRoutes } from "../../../src/runtime/dial/Upstream.ts"
import { AccessLog } from "../../../src/runtime/observe/AccessLog.ts"
import { HookProblems } from "../../../src/runtime/observe/HookProblems.ts"
import { emptyStats } from "../../../src/runtime/observe/Stats.ts"
import { Deadlines } from "../../../src/runtime/timers/Deadlines.ts"
import { echoServer } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

const LOOPBACK: ReadonlyArray<Resolved> = [{ address: "127.0.0.1", family: 4 }]

const setup = (route: RouteFunction, options: Partial<DialerOptions> = {}) => {
  let now = 0
  const deadlines = new Deadlines({ clock: () => now })
  cleanups.push(() => deadlines.stop())
  const lines: Array<string> = []
  const log = new AccessLog({ format: "text", level: "info", write: (chunk) => void lines.push(chunk), batchMs: 0 })
  const lookups: Array<string> = []
  const resolve = (host: string, cb: ResolveCallback) => {
    lookups.push(host)
    cb(undefined, LOOPBACK)
  }
  const hook = new RouteHook(route, { deadlines, timeoutMs: 200 }, new HookProblems(log, () => now))
  const dialer = new Dialer({ resolve, deadlines, stats: emptyStats(), via: "route-test", limits: defaultLimits, route: hook, ...options })
  const answers: Array<{ connected?: Connected; failed?: ConnectFailed }> = []
  const client: DialClient = {
    clientAddress: "192.0.2.9",
    pinTag: undefined,
    exchange: { method: "POST", target: "http://x/", user: "alice" },
    openOrigin(address: Resolved, port: number): net.Socket {
      const socket = net.connect({
        host: address.address,
        port,
        onread: {
          buffer: Buffer.alloc(4096),
          callback(this: net.Socket, n: number, buffer: Uint8Array): boolean {
            readUnowned(this, buffer as Buffer, n)
            return true
          },
        },
      })
      socket.on("error", () => {})
      cleanups.push(() => void socket.destroy())
      return socket
    },
    originConnected(socket, connected) {
      cleanups.push(() => void socket.destroy())
      answers.push({ connected })
    },
    originFailed(failed) {
      answers.push({ failed })
    },
  }
  return {
    dialer,
    client,
    answers,
    lookups,
    advance: (ms: number) => {
      now += ms
      deadlines.fire(now)
    },
    logged: () => {
      log.flush()
      return lines.join("")
    },
  }
}

const until = async (f: () => boolean) => {
  for (let i = 0; i < 400 && !f(); i++) await new Promise((r) => setTimeout(r, 5))
}

describe("the route hook in the Dialer", () => {
  it("is asked once per connect with the request's facts, before any lookup", () => {
    const asked: Array<RouteRequest> = []
    const s = setup((request) => {
      asked.push(request)
      return { deny: "not today" }
    })
    expect(s.dialer.connect("origin.test", 8080, false, s.client)).toBeUndefined()
    expect(asked).toEqual([{ method: "POST", host: "origin.test", port: 8080, tunnel: false, user: "alice", client: "192.0.2.9" }])
    expect(s.answers).toEqual([{ failed: { _tag: "ConnectFailed", reason: "denied", message: "not today" } }])
    expect(s.lookups).toEqual([])
  })

  it("a deny message is made one line of text, cut when endless, and never empty", () => {
    const messages = ["two\nlines\r\n", "x".repeat(600), "  "]
    const s = setup(() => ({ deny: messages.shift() as string }))
    for (let i = 0; i < 3; i++) s.dialer.connect("origin.test", 80, false, s.client)
    expect(s.answers.map((a) => a.failed?.message)).toEqual(["two lines", `${"x".repeat(512)}…`, "denied by the proxy's route hook"])
  })

  it("undefined goes as configured (here: through --upstream); { upstream: null } goes direct", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const upstream = new UpstreamRoutes({ host: "parent.test", port: echo.port }, [])
    const answers: Array<RouteFunction> = [() => undefined, async () => ({ upstream: null })]
    const s = setup((r) => (answers.shift() as RouteFunction)(r), { upstream })
    s.dialer.connect("origin.test", echo.port, false, s.client)
    await until(() => s.answers.length === 1)
    expect(s.answers[0]?.connected).toEqual({ _tag: "Connected", upstream: { proxy: `parent.test:${echo.port}` } })
    expect(s.dialer.connect("origin.test", echo.port, false, s.client)).toBeDefined()
    await until(() => s.answers.length === 2)
    expect(s.answers[1]?.connected).toEqual({ _tag: "Connected" })
    expect(s.lookups).toEqual(["parent.test", "origin.test"])
  })

  it("{ upstream: url } goes through that parent with the URL's credentials", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const s = setup(async () => ({ upstream: `http://u:p@chosen.test:${echo.port}` }))
    s.dialer.connect("origin.test", 80, false, s.client)
    await until(() => s.answers.length === 1)
    expect(s.answers[0]?.connected).toEqual({
      _tag: "Connected",
      upstream: { proxy: `chosen.test:${echo.port}`, authorization: "Basic dTpw" },
    })
    expect(s.lookups).toEqual(["chosen.test"])
  })

  it("the destination policy judges what the hook chose", () => {
    const policy = makePolicy({ listen: [{ host: "127.0.0.1", port: 3128 }], clientAllow: ["127.0.0.0/8"], denyTo: ["origin.test"] })
    const s = setup(() => ({ upstream: null }), { policy })
    s.dialer.connect("origin.test", 80, false, s.client)
    expect(s.answers[0]?.failed).toMatchObject({ reason: "denied", message: expect.stringContaining("--deny-to origin.test") })
    expect(s.lookups).toEqual([])
  })

  it("a hook that throws, answers nonsense or names a bad parent fails that connect with unrouted", () => {
    const answers: Array<RouteFunction> = [
      () => {
        throw new Error("no table")
      },
      () => ({ upstream: 3 }) as never,
      () => ({ upstream: "socks5://127.0.0.1:1080" }),
    ]
    const s = setup((r) => (answers.shift() as RouteFunction)(r))
    for (let i = 0; i < 3; i++) s.dialer.connect("origin.test", 80, true, s.client)
    expect(s.answers.map((a) => [a.failed?.reason, a.failed?.message])).toEqual([
      ["unrouted", "the proxy's route hook failed"],
      ["unrouted", "the proxy's route hook gave an answer it does not understand"],
      ["unrouted", "the proxy's route hook named an invalid parent proxy"],
    ])
    expect(s.logged()).toBe("ERROR route hook: failed for CONNECT origin.test:80: Error: no table\n")
  })

  it("a hook that never answers fails the connect when its deadline passes", () => {
    const s = setup(() => new Promise(() => {}))
    expect(s.dialer.connect("origin.test", 80, false, s.client)).toBeDefined()
    s.advance(199)
    expect(s.answers).toEqual([])
    s.advance(1)
    expect(s.answers).toEqual([
      { failed: { _tag: "ConnectFailed", reason: "unrouted", message: "the proxy's route hook did not answer within 200 ms" } },
    ])
  })

  it("a connect cancelled while the hook thinks is never answered, and nothing is dialled", async () => {
    let decide: (answer: undefined) => void = () => {}
    const s = setup(
      () =>
        new Promise((resolve) => {
          decide = resolve
        }),
    )
    const attempt = s.dialer.connect("origin.test", 80, false, s.client)
    attempt?.cancel()
    decide(undefined)
    await new Promise((r) => setTimeout(r, 20))
    s.advance(1_000)
    expect(s.answers).toEqual([])
    expect(s.lookups).toEqual([])
  })
})
