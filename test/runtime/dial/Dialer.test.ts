/**
 * The Dialer on its own, over loopback: every `connect` gets exactly one answer (or none after `cancel`),
 * and no socket it dialled is left open when it failed or was cancelled. Names come from a scripted
 * ResolveFn (never a real lookup); origins and parents are listeners on 127.0.0.1.
 */
import * as net from "node:net"
import { afterEach, describe, expect, it, vi } from "vitest"
import { defaultLimits } from "../../../src/core/limits.ts"
import { makePolicy } from "../../../src/runtime/dial/DestinationPolicy.ts"
import {
  type Connected,
  type ConnectFailed,
  connectFailure,
  type DialClient,
  Dialer,
  type DialerOptions,
  readUnowned,
} from "../../../src/runtime/dial/Dialer.ts"
import { OriginPool } from "../../../src/runtime/dial/OriginPool.ts"
import { ResolveError, type ResolveCallback, type Resolved } from "../../../src/runtime/dial/Resolver.ts"
import { UpstreamRoutes } from "../../../src/runtime/dial/Upstream.ts"
import { emptyStats } from "../../../src/runtime/observe/Stats.ts"
import { Deadlines } from "../../../src/runtime/timers/Deadlines.ts"
import { closeServer, echoServer, freePort, listen } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

const LOOPBACK: ReadonlyArray<Resolved> = [{ address: "127.0.0.1", family: 4 }]

/** A resolver that knows `names` and says "not found" for the rest; `lookups` lists what it was asked. */
const scriptedResolve = (names: Record<string, ReadonlyArray<Resolved>>) => {
  const lookups: Array<string> = []
  const resolve = (host: string, cb: ResolveCallback): void => {
    lookups.push(host)
    const found = names[host]
    if (found !== undefined) cb(undefined, found)
    else cb(new ResolveError({ host, reason: "notfound", code: "ENOTFOUND", message: `${host}: not found` }), [])
  }
  return { resolve, lookups }
}

/** A resolver that keeps its callbacks until the test answers them. */
const heldResolve = () => {
  const pending: Array<ResolveCallback> = []
  return { resolve: (_host: string, cb: ResolveCallback) => void pending.push(cb), pending }
}

/** A Dialer's client that records every answer and every socket it was asked to open (read through `readUnowned`). */
const recordingClient = () => {
  const listeners = (socket: net.Socket) => ["connect", "end", "error", "close"].map((e) => socket.listenerCount(e)).join(",")
  const baseline = new Map<net.Socket, string>()
  const answers: Array<{ connected?: Connected; failed?: ConnectFailed; socket?: net.Socket; key?: string; rest?: string }> = []
  const opened: Array<net.Socket> = []
  const client: DialClient = {
    clientAddress: "127.0.0.1",
    pinTag: undefined,
    openOrigin(address: Resolved, port: number): net.Socket {
      const socket = net.connect({
        host: address.address,
        port,
        family: address.family,
        allowHalfOpen: true,
        onread: {
          buffer: Buffer.alloc(16 * 1024),
          callback(this: net.Socket, n: number, buffer: Uint8Array): boolean {
            readUnowned(this, buffer as Buffer, n)
            return true
          },
        },
      })
      socket.on("error", () => {}) // after the answer, errors are the test's business, not the Dialer's
      baseline.set(socket, listeners(socket))
      opened.push(socket)
      cleanups.push(() => void socket.destroy())
      return socket
    },
    originConnected(socket, connected, key, rest) {
      answers.push({
        connected,
        socket,
        ...(key === undefined ? {} : { key }),
        ...(rest === undefined ? {} : { rest: Buffer.from(rest).toString() }),
      })
    },
    originFailed(failed) {
      answers.push({ failed })
    },
  }
  /** Resolves once there is an answer. */
  const answered = () => vi.waitFor(() => expect(answers.length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 })
  // `baseline`: the listeners a socket had when it was opened (the test's own); the Dialer must leave no more.
  return { client, answers, opened, answered, baseline, listeners }
}

const dialerWith = (options: Partial<DialerOptions> & Pick<DialerOptions, "resolve">) => {
  const deadlines = new Deadlines()
  cleanups.push(() => deadlines.stop())
  const stats = emptyStats()
  const dialer = new Dialer({ deadlines, stats, via: "dialer-test", limits: defaultLimits, ...options })
  return { dialer, stats, deadlines }
}

/** Resolves once `socket` has closed (at once if it has). */
const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once("close", () => resolve())))

/**
 * The rest of this turn of the event loop and the next one: a late callback that must not come would be
 * queued by then (the events that could cause one, a socket's connect or close, have been awaited).
 */
const settle = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)))
/** The next turn of the event loop: a connection put in the pool can be taken from then on. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("connectFailure", () => {
  it.each([
    ["ENOTFOUND", "unresolved"],
    ["EAI_AGAIN", "unresolved"],
    ["ECONNREFUSED", "refused"],
    ["EHOSTUNREACH", "unreachable"],
    ["ENETUNREACH", "unreachable"],
    ["EADDRNOTAVAIL", "unreachable"],
    ["ETIMEDOUT", "timeout"],
    ["ECONNRESET", "error"],
    [undefined, "error"],
  ] as const)("%s -> %s", (code, reason) => {
    expect(connectFailure(code)).toBe(reason)
  })
})

describe("Dialer", () => {
  it("answers Connected once with a connected socket to the resolved address, keyed for the pool", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const { resolve, lookups } = scriptedResolve({ "origin.test": LOOPBACK })
    const { dialer } = dialerWith({ resolve, pool: new OriginPool(new Deadlines()) })
    const c = recordingClient()
    const attempt = dialer.connect("origin.test", echo.port, false, c.client)
    expect(attempt).toBeDefined() // a dial takes time: not answered yet
    await c.answered()
    await settle()
    expect(lookups).toEqual(["origin.test"])
    expect(c.answers).toHaveLength(1)
    const [answer] = c.answers
    expect(answer?.connected).toEqual({ _tag: "Connected" })
    expect(answer?.key).toBe(`origin.test:${echo.port}`)
    expect(answer?.socket?.remotePort).toBe(echo.port)
    expect(answer?.socket?.destroyed).toBe(false)
    expect(c.listeners(answer!.socket!)).toBe(c.baseline.get(answer!.socket!)) // none of the Dialer's listeners left
    expect(c.opened).toEqual([answer?.socket])
  })

  it("a tunnel's socket is not keyed for the pool", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const { dialer } = dialerWith({ resolve: scriptedResolve({ "origin.test": LOOPBACK }).resolve, pool: new OriginPool(new Deadlines()) })
    const c = recordingClient()
    dialer.connect("origin.test", echo.port, true, c.client)
    await c.answered()
    expect(c.answers[0]?.connected).toEqual({ _tag: "Connected" })
    expect(c.answers[0]?.key).toBeUndefined()
  })

  it("answers ConnectFailed(refused) once for a closed port and leaves no socket open", async () => {
    const port = await freePort()
    const codes: Array<string | undefined> = []
    const { dialer } = dialerWith({
      resolve: scriptedResolve({ "origin.test": LOOPBACK }).resolve,
      onConnectError: (code) => void codes.push(code),
    })
    const c = recordingClient()
    dialer.connect("origin.test", port, false, c.client)
    await c.answered()
    await Promise.all(c.opened.map(closed))
    await settle()
    expect(c.answers).toEqual([{ failed: { _tag: "ConnectFailed", reason: "refused", message: expect.stringContaining("ECONNREFUSED") } }])
    expect(codes).toEqual(["ECONNREFUSED"])
    expect(c.opened.every((s) => s.destroyed)).toBe(true)
  })

  it("answers ConnectFailed(unresolved) once for a name the resolver does not know, and dials nothing", async () => {
    const { dialer } = dialerWith({ resolve: scriptedResolve({}).resolve })
    const c = recordingClient()
    // The scripted resolver answers at once: so does the Dialer, before connect returns.
    expect(dialer.connect("nowhere.test", 80, false, c.client)).toBeUndefined()
    await settle()
    expect(c.answers).toEqual([{ failed: { _tag: "ConnectFailed", reason: "unresolved", message: "nowhere.test: not found" } }])
    expect(c.opened).toEqual([])
  })

  it("denies a name a deny rule names before resolving it, and counts the denial", () => {
    const { resolve, lookups } = scriptedResolve({ "origin.test": LOOPBACK })
    const policy = makePolicy({ listen: [{ host: "127.0.0.1", port: 3128 }], clientAllow: ["127.0.0.0/8"], denyTo: ["origin.test"] })
    const { dialer, stats } = dialerWith({ resolve, policy })
    const c = recordingClient()
    expect(dialer.connect("origin.test", 80, false, c.client)).toBeUndefined()
    expect(c.answers).toHaveLength(1)
    expect(c.answers[0]?.failed).toMatchObject({ _tag: "ConnectFailed", reason: "denied", message: expect.stringContaining("origin.test") })
    expect(lookups).toEqual([])
    expect(c.opened).toEqual([])
    expect(stats.deniedRule).toBe(1)
  })

  it("denies on the resolved address, without dialling it", () => {
    const { resolve, lookups } = scriptedResolve({ "origin.test": LOOPBACK })
    const policy = makePolicy({ listen: [{ host: "127.0.0.1", port: 3128 }], clientAllow: ["127.0.0.0/8"], denyTo: ["127.0.0.0/8"] })
    const { dialer, stats } = dialerWith({ resolve, policy })
    const c = recordingClient()
    expect(dialer.connect("origin.test", 80, false, c.client)).toBeUndefined()
    expect(lookups).toEqual(["origin.test"])
    expect(c.answers.map((a) => a.failed?.reason)).toEqual(["denied"])
    expect(c.opened).toEqual([])
    expect(stats.deniedRule).toBe(1)
  })

  it("the policy set on the Dialer later (the worker's bound ports) is the one applied", () => {
    const { dialer, stats } = dialerWith({ resolve: scriptedResolve({ "origin.test": LOOPBACK }).resolve })
    dialer.policy = makePolicy({ listen: [{ host: "127.0.0.1", port: 3128 }], clientAllow: ["127.0.0.0/8"] })
    const c = recordingClient()
    dialer.connect("origin.test", 3128, false, c.client) // the proxy's own socket
    expect(c.answers.map((a) => a.failed?.reason)).toEqual(["denied"])
    expect(stats.deniedSelf).toBe(1)
  })

  it("reuses a pooled connection: Connected { reused } at once, no lookup, no dial", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const deadlines = new Deadlines()
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines)
    cleanups.push(() => pool.close())
    const { resolve, lookups } = scriptedResolve({ "origin.test": LOOPBACK })
    const { dialer } = dialerWith({ resolve, pool })
    const first = recordingClient()
    dialer.connect("origin.test", echo.port, false, first.client)
    await first.answered()
    const socket = first.answers[0]!.socket!
    dialer.keepIdle(first.answers[0]!.key!, socket)
    expect(pool.size).toBe(1)
    await nextTurn()

    const second = recordingClient()
    expect(dialer.connect("origin.test", echo.port, false, second.client)).toBeUndefined()
    expect(second.answers).toHaveLength(1)
    expect(second.answers[0]).toMatchObject({ connected: { _tag: "Connected", reused: true }, key: `origin.test:${echo.port}` })
    expect(second.answers[0]?.socket).toBe(socket)
    expect(second.opened).toEqual([])
    expect(lookups).toEqual(["origin.test"])
    expect(pool.size).toBe(0)
  })

  /** A Dialer with a pool, and one connection to `origin.test` on the echo server kept idle in it by a first client. */
  const withPooled = async (policy?: Parameters<typeof makePolicy>[0]) => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const deadlines = new Deadlines()
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines)
    cleanups.push(() => pool.close())
    const { resolve, lookups } = scriptedResolve({ "origin.test": LOOPBACK })
    const { dialer, stats } = dialerWith({ resolve, pool, ...(policy === undefined ? {} : { policy: makePolicy(policy) }) })
    const first = recordingClient()
    dialer.connect("origin.test", echo.port, false, first.client)
    await first.answered()
    return { echo, pool, dialer, stats, lookups, first, socket: first.answers[0]!.socket!, key: first.answers[0]!.key! }
  }
  const loopbackPolicy = (denyTo: ReadonlyArray<string> = []) => ({
    listen: [{ host: "127.0.0.1", port: 3128 }],
    clientAllow: ["127.0.0.0/8"],
    denyTo,
  })

  it("judges a pooled connection again by the policy in force: after a reload denies its address, a plain request does not reuse it (issue 17 item 5)", async () => {
    const { echo, pool, dialer, lookups, socket, key } = await withPooled(loopbackPolicy())
    dialer.keepIdle(key, socket)
    await nextTurn()
    const reloaded = dialer.with({ policy: makePolicy(loopbackPolicy([`127.0.0.1:${echo.port}`])) })
    const c = recordingClient()
    expect(reloaded.connect("origin.test", echo.port, false, c.client)).toBeUndefined()
    // Answered as a fresh dial is: the name resolved, the address judged, nothing dialled.
    expect(c.answers.map((a) => a.failed?.reason)).toEqual(["denied"])
    expect(c.answers[0]?.failed?.message).toContain(`--deny-to 127.0.0.1:${echo.port}`)
    expect(c.opened).toEqual([])
    expect(lookups).toEqual(["origin.test", "origin.test"])
    expect(reloaded.options.stats.deniedRule).toBe(1)
    // Useless to plain requests now: destroyed, not left for the next one.
    expect(pool.size).toBe(0)
    await closed(socket)
  })

  it("a tunnel denied a pooled connection's address leaves it in the pool (it was dialled for plain requests)", async () => {
    const { echo, pool, dialer, socket, key } = await withPooled(loopbackPolicy())
    dialer.keepIdle(key, socket)
    await nextTurn()
    dialer.policy = makePolicy(loopbackPolicy([`127.0.0.1:${echo.port}`]))
    const tunnel = recordingClient()
    dialer.connect("origin.test", echo.port, true, tunnel.client)
    expect(tunnel.answers.map((a) => a.failed?.reason)).toEqual(["denied"])
    expect(pool.size).toBe(1)
    expect(socket.destroyed).toBe(false)
  })

  it("keeps a pinned connection for its client only, and pinned when that client releases it again (issue 17 item 7)", async () => {
    const { echo, pool, dialer, first, socket, key } = await withPooled()
    dialer.keepPinned(key, socket, first.client)
    expect(first.client.pinTag).toBeDefined()
    await nextTurn()
    // Another client does not get it: it dials its own.
    const other = recordingClient()
    dialer.connect("origin.test", echo.port, false, other.client)
    await other.answered()
    expect(other.answers[0]?.connected?.reused).toBeUndefined()
    expect(other.answers[0]?.socket).not.toBe(socket)
    expect(pool.size).toBe(1)
    // Nor does a tunnel of the same client.
    const firstAgain = first.answers.length
    dialer.connect("origin.test", echo.port, true, first.client)
    await vi.waitFor(() => expect(first.answers.length).toBe(firstAgain + 1), { timeout: 5_000, interval: 5 })
    expect(first.answers.at(-1)?.socket).not.toBe(socket)
    // Its client's next plain request gets it, under a key of its own.
    expect(dialer.connect("origin.test", echo.port, false, first.client)).toBeUndefined()
    const again = first.answers.at(-1)!
    expect(again).toMatchObject({ connected: { _tag: "Connected", reused: true } })
    expect(again.socket).toBe(socket)
    expect(again.key).not.toBe(key)
    // Released reusable after a request without credentials, it is still the client's only.
    dialer.keepIdle(again.key!, socket)
    await nextTurn()
    const third = recordingClient()
    dialer.connect("origin.test", echo.port, false, third.client)
    await third.answered()
    expect(third.answers[0]?.socket).not.toBe(socket)
    expect(pool.size).toBeGreaterThanOrEqual(1)
    expect(dialer.connect("origin.test", echo.port, false, first.client)).toBeUndefined()
    expect(first.answers.at(-1)?.socket).toBe(socket)
  })

  it("a fresh Connect (the core's retry, design §6.3) dials a new connection and leaves the pooled one idle", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const deadlines = new Deadlines()
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines)
    cleanups.push(() => pool.close())
    const { resolve, lookups } = scriptedResolve({ "origin.test": LOOPBACK })
    const { dialer } = dialerWith({ resolve, pool })
    const first = recordingClient()
    dialer.connect("origin.test", echo.port, false, first.client)
    await first.answered()
    const pooled = first.answers[0]!.socket!
    dialer.keepIdle(first.answers[0]!.key!, pooled)
    await settle()
    expect(pool.size).toBe(1)

    const retry = recordingClient()
    dialer.connect("origin.test", echo.port, false, retry.client, undefined, true)
    await retry.answered()
    expect(retry.answers[0]).toMatchObject({ connected: { _tag: "Connected" }, key: `origin.test:${echo.port}` })
    expect(retry.answers[0]?.connected?.reused).toBeUndefined()
    expect(retry.opened).toHaveLength(1)
    expect(retry.answers[0]?.socket).toBe(retry.opened[0])
    expect(retry.answers[0]?.socket).not.toBe(pooled)
    expect(lookups).toEqual(["origin.test", "origin.test"])
    expect(echo.accepted()).toBe(2)
    expect(pool.size).toBe(1)
  })

  it("cancel while resolving: the late answer of the resolver is dropped, nothing is dialled or answered", async () => {
    const held = heldResolve()
    const { dialer } = dialerWith({ resolve: held.resolve })
    const c = recordingClient()
    const attempt = dialer.connect("origin.test", 80, false, c.client)
    expect(attempt).toBeDefined()
    attempt?.cancel()
    held.pending[0]?.(undefined, LOOPBACK)
    await settle()
    expect(c.opened).toEqual([])
    expect(c.answers).toEqual([])
  })

  it("cancel while dialling: the socket is destroyed and nothing is answered", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const { dialer } = dialerWith({ resolve: scriptedResolve({ "origin.test": LOOPBACK }).resolve })
    const c = recordingClient()
    const attempt = dialer.connect("origin.test", echo.port, false, c.client)
    expect(c.opened).toHaveLength(1) // resolved at once: the connect is under way
    expect(c.opened[0]?.connecting).toBe(true)
    attempt?.cancel()
    await closed(c.opened[0]!)
    await settle()
    expect(c.opened[0]?.destroyed).toBe(true)
    expect(c.answers).toEqual([])
  })

  it("cancel while racing several addresses (Happy Eyeballs): every attempt is destroyed, nothing is answered", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const two: ReadonlyArray<Resolved> = [
      { address: "127.0.0.1", family: 4 },
      { address: "127.0.0.2", family: 4 },
    ]
    const { dialer } = dialerWith({ resolve: scriptedResolve({ "origin.test": two }).resolve })
    const c = recordingClient()
    const attempt = dialer.connect("origin.test", echo.port, false, c.client)
    attempt?.cancel()
    await Promise.all(c.opened.map(closed))
    await settle()
    expect(c.opened.length).toBeGreaterThan(0)
    expect(c.opened.every((s) => s.destroyed)).toBe(true)
    expect(c.answers).toEqual([])
  })
})

describe("Dialer through a parent proxy", () => {
  /** A parent on loopback that hands each connection, once its head is complete, to `answer`. */
  const parent = async (answer: (socket: net.Socket, head: string) => void) => {
    const heads: Array<string> = []
    const sockets = new Set<net.Socket>()
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket)
      socket.on("error", () => {})
      let got = ""
      socket.on("data", (d: Buffer) => {
        if (got.includes("\r\n\r\n")) return // answered already
        got += d.toString("latin1")
        if (got.includes("\r\n\r\n")) {
          heads.push(got)
          answer(socket, got)
        }
      })
    })
    const port = await listen(server)
    cleanups.push(async () => {
      for (const s of sockets) s.destroy()
      await closeServer(server)
    })
    return { port, heads, sockets }
  }
  const through = (port: number) => {
    const { resolve, lookups } = scriptedResolve({ "parent.test": LOOPBACK })
    const { dialer } = dialerWith({ resolve, upstream: new UpstreamRoutes({ host: "parent.test", port }, []) })
    return { dialer, lookups }
  }

  it("a tunnel is Connected once after the parent's 2xx, with the bytes that followed its head", async () => {
    const p = await parent((socket) => socket.write("HTTP/1.1 200 Connection established\r\n\r\nhello"))
    const { dialer, lookups } = through(p.port)
    const c = recordingClient()
    dialer.connect("origin.test", 443, true, c.client)
    await c.answered()
    await settle()
    expect(lookups).toEqual(["parent.test"]) // the parent resolves the origin's name
    expect(p.heads[0]).toMatch(/^CONNECT origin\.test:443 HTTP\/1\.1\r\nHost: origin\.test:443\r\n/)
    expect(p.heads[0]).toContain("Via: 1.1 dialer-test\r\n")
    expect(c.answers).toHaveLength(1)
    expect(c.answers[0]).toMatchObject({ connected: { _tag: "Connected" }, rest: "hello" })
    const socket = c.answers[0]!.socket!
    expect(c.listeners(socket)).toBe(c.baseline.get(socket)) // none of the Dialer's listeners left
  })

  it("a parent that refuses the CONNECT is ConnectFailed(upstream) once, naming it, and its socket is closed", async () => {
    const p = await parent((socket) => socket.write("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"))
    const { dialer } = through(p.port)
    const c = recordingClient()
    dialer.connect("origin.test", 443, true, c.client)
    await c.answered()
    await Promise.all(c.opened.map(closed))
    await settle()
    expect(c.answers).toEqual([
      {
        failed: {
          _tag: "ConnectFailed",
          reason: "upstream",
          message: `upstream proxy parent.test:${p.port} answered 407 Proxy Authentication Required`,
        },
      },
    ])
  })

  it("cancel while waiting for the parent's answer: the socket is destroyed and nothing is answered", async () => {
    let answerNow: (() => void) | undefined
    const p = await parent((socket) => {
      answerNow = () => socket.write("HTTP/1.1 200 OK\r\n\r\n")
    })
    const { dialer } = through(p.port)
    const c = recordingClient()
    const attempt = dialer.connect("origin.test", 443, true, c.client)
    await vi.waitFor(() => expect(p.heads).toHaveLength(1), { timeout: 5_000, interval: 5 })
    attempt?.cancel()
    answerNow?.() // too late: the parent may answer, nobody listens
    await Promise.all(c.opened.map(closed))
    await settle()
    expect(c.opened.every((s) => s.destroyed)).toBe(true)
    expect(c.answers).toEqual([])
  })
})
