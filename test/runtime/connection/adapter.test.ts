/**
 * The adapter rules of Connection, checked with a scripted engine in place of the Postman (over real
 * loopback sockets): re-entrant events are queued after the current action list, a Connect abandoned
 * by the engine never reports back, events after Close are not fed, a throwing engine is contained.
 */
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import type { Action } from "../../../src/core/actions.ts"
import type { Event } from "../../../src/core/events.ts"
import { defaultLimits } from "../../../src/core/limits.ts"
import { AccessLog } from "../../../src/runtime/observe/AccessLog.ts"
import { Connection, type ConnectionContext, type Engine } from "../../../src/runtime/connection/Connection.ts"
import { emptyStats } from "../../../src/runtime/observe/Stats.ts"
import { Deadlines } from "../../../src/runtime/timers/Deadlines.ts"
import { makeResolve } from "../../../src/runtime/dial/Resolver.ts"
import { Dialer } from "../../../src/runtime/dial/Dialer.ts"
import { closeServer, echoServer, listen, rawClient, sleep, until } from "../loopback.ts"

type Script = (event: Event, engine: ScriptedEngine) => ReadonlyArray<Action>

class ScriptedEngine implements Engine {
  closed = false
  readonly state = "AwaitingHead" as const
  readonly bufferedBytes = 0
  /** No exchange is read by a script: the route hook would see none. */
  readonly exchange = undefined
  readonly events: Array<Event> = []
  private inside = false
  private readonly script: Script
  constructor(script: Script) {
    this.script = script
  }
  start(): ReadonlyArray<Action> {
    return []
  }
  handle(event: Event): ReadonlyArray<Action> {
    if (this.inside) throw new Error("re-entrant handle")
    if (this.closed) throw new Error("fed after closed")
    this.inside = true
    try {
      this.events.push(event)
      let actions = this.script(event, this)
      // Like the Postman: a client that ended or failed is released.
      if (
        (event._tag === "Ended" || event._tag === "Errored") &&
        event.side === "client" &&
        !actions.some((a) => a._tag === "Close" && a.side === "client")
      ) {
        actions = [...actions, { _tag: "Close", side: "client", graceful: false, reusable: false }]
      }
      if (actions.some((a) => a._tag === "Close" && a.side === "client")) this.closed = true
      return actions
    } finally {
      this.inside = false
    }
  }
  shutdown(): ReadonlyArray<Action> {
    this.closed = true
    return [{ _tag: "Close", side: "client", graceful: true, reusable: false }]
  }
  abort(): ReadonlyArray<Action> {
    this.closed = true
    return [{ _tag: "Close", side: "client", graceful: false, reusable: false }]
  }
}

const text = (s: string) => new TextEncoder().encode(s)
const closeClient: Action = { _tag: "Close", side: "client", graceful: true, reusable: false }

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

/**
 * A listener whose connections are driven by `script`; returns the port, the engines and the shared context.
 * `clock`: the connections' clock (default the real one); a test that sets it fires the deadlines itself.
 */
const harness = async (script: Script, hosts: Record<string, string> = {}, lingerMs?: number, clock?: () => number) => {
  const engines: Array<ScriptedEngine> = []
  const lines: Array<string> = []
  const finished: Array<Connection> = []
  const deadlines = new Deadlines(clock === undefined ? {} : { clock })
  const stats = emptyStats()
  const ctx: ConnectionContext = {
    limits: defaultLimits,
    via: "t",
    deadlines,
    dialer: new Dialer({
      // Names outside `hosts` fail: the only DNS server is a closed loopback port (refused at once).
      resolve: makeResolve({ hosts, hostsFile: false, servers: ["127.0.0.1:1"] }),
      deadlines,
      stats,
      via: "t",
      limits: defaultLimits,
    }),
    log: new AccessLog({ format: "text", level: "debug", write: (s) => lines.push(s) }),
    stats,
    onFinished: (c) => finished.push(c),
    ...(lingerMs === undefined ? {} : { lingerMs }),
    makeEngine: () => {
      const e = new ScriptedEngine(script)
      engines.push(e)
      return e
    },
  }
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    new Connection(s, ctx)
  })
  const port = await listen(server)
  cleanups.push(async () => {
    for (const s of sockets) s.destroy()
    await closeServer(server)
    ctx.deadlines.stop()
  })
  return { port, engines, ctx, lines, finished }
}

describe("Connection adapter rules", () => {
  it("Blocked from a write is fed after the current action list, then Drained", async () => {
    const big = new Uint8Array(32 * 1024 * 1024)
    let requestsSeenAtBlocked = -1
    const h = await harness((event, _engine) => {
      switch (event._tag) {
        case "Received":
          return [
            { _tag: "Write", side: "client", bytes: big },
            {
              _tag: "Log",
              record: {
                kind: "http",
                method: "GET",
                target: "/",
                status: 200,
                bytesFromClient: 0,
                bytesFromOrigin: 0,
                startedAt: 0,
                endedAt: 1,
                outcome: "ok",
              },
            },
            { _tag: "Write", side: "client", bytes: text("END") },
          ]
        case "Blocked":
          requestsSeenAtBlocked = h.ctx.stats.requests
          return []
        case "Drained":
          return [closeClient]
        default:
          return []
      }
    })
    const c = rawClient(h.port)
    c.socket.write("go")
    await c.waitClose(20_000)
    expect(c.bytes().length).toBe(big.length + 3)
    // Every refused write is a Blocked (the second Write too), then one Drained.
    const tags = h.engines[0]!.events.map((e) => e._tag).filter((t, i, all) => t !== "Blocked" || all[i - 1] !== "Blocked")
    expect(tags).toEqual(["Received", "Blocked", "Drained"])
    expect(requestsSeenAtBlocked).toBe(1) // the Log after the blocked Write had already been carried out
  })

  it("a Connect abandoned by the engine (Close origin while connecting) never reports back and leaves no socket", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    // "go": Connect, and give it up at once. "probe" (a second client, afterwards): Connect, and report the
    // echo of "hi" to the client, which tells the test that a dial made later than the abandoned one is done.
    const h = await harness(
      (event) => {
        if (event._tag === "Received" && event.side === "client") {
          return new TextDecoder().decode(event.bytes) === "go"
            ? [
                { _tag: "Connect", host: "origin.test", port: echo.port },
                { _tag: "Close", side: "origin", graceful: false, reusable: false },
              ]
            : [{ _tag: "Connect", host: "origin.test", port: echo.port }]
        }
        if (event._tag === "Connected") return [{ _tag: "Write", side: "origin", bytes: text("hi") }]
        if (event._tag === "Received") return [{ _tag: "Write", side: "client", bytes: text("probe done") }]
        return []
      },
      { "origin.test": "127.0.0.1" },
    )
    const c = rawClient(h.port)
    c.socket.write("go")
    await until("the engine to read", () => h.engines[0]?.events.length === 1)
    const probe = rawClient(h.port)
    probe.socket.write("probe")
    await probe.waitFor("probe done")
    expect(h.engines[0]!.events.map((e) => e._tag)).toEqual(["Received"])
    expect(echo.accepted()).toBe(1) // the probe's: the abandoned attempt never connected
    c.socket.destroy()
    await until("the connection to finish", () => h.finished.length === 1)
    probe.socket.destroy()
  })

  it("a second Connect replaces the first; only the current one reports Connected", async () => {
    const echo = await echoServer()
    cleanups.push(echo.close)
    const h = await harness(
      (event) => {
        if (event._tag === "Received" && event.side === "client") {
          return [
            { _tag: "Connect", host: "origin.test", port: echo.port },
            { _tag: "Connect", host: "origin.test", port: echo.port },
          ]
        }
        if (event._tag === "Connected") return [{ _tag: "Write", side: "origin", bytes: text("hi") }]
        if (event._tag === "Received" && event.side === "origin") return [{ _tag: "Write", side: "client", bytes: text("echoed") }]
        return []
      },
      { "origin.test": "127.0.0.1" },
    )
    const c = rawClient(h.port)
    c.socket.write("go")
    // The echo of "hi" came back from the current origin; the first attempt, dialled earlier, would have
    // connected by then.
    await c.waitFor("echoed")
    const tags = h.engines[0]!.events.map((e) => e._tag)
    expect(tags.filter((t) => t === "Connected")).toEqual(["Connected"])
    expect(echo.accepted()).toBe(1)
    c.socket.destroy()
  })

  it("ConnectFailed maps ECONNREFUSED to refused and a resolver failure to unresolved", async () => {
    const closed = net.createServer()
    const port = await listen(closed)
    await closeServer(closed)
    const h = await harness((event) =>
      event._tag === "Received"
        ? [{ _tag: "Connect", host: new TextDecoder().decode((event as { bytes: Uint8Array }).bytes), port }]
        : event._tag === "ConnectFailed"
          ? [closeClient]
          : [],
    )
    const a = rawClient(h.port)
    a.socket.write("127.0.0.1")
    await a.waitClose()
    const b = rawClient(h.port)
    b.socket.write("nothing.invalid")
    await b.waitClose()
    const failures = h.engines.map((e) => e.events.find((x) => x._tag === "ConnectFailed"))
    expect(failures.map((f) => (f?._tag === "ConnectFailed" ? f.reason : undefined))).toEqual(["refused", "unresolved"])
  })

  it("bytes that arrive after the engine closed the client are not fed", async () => {
    const h = await harness((event) =>
      event._tag === "Received" ? [{ _tag: "Write", side: "client", bytes: text("bye") }, closeClient] : [],
    )
    const c = rawClient(h.port)
    c.socket.write("first")
    await c.waitFor("bye")
    if (!c.isClosed()) c.socket.write("late bytes")
    await c.waitClose()
    expect(h.engines[0]!.events.map((e) => e._tag)).toEqual(["Received"])
    await until("the connection to finish", () => h.finished.length === 1)
  })

  it("an engine that throws is contained: logged, counted, connection destroyed", async () => {
    const h = await harness(() => {
      throw new Error("boom")
    })
    const c = rawClient(h.port)
    c.socket.write("x")
    await c.waitClose()
    await until("the connection to finish", () => h.finished.length === 1)
    expect(h.ctx.stats.errors).toBe(1)
    await until("the log line", () => h.lines.join("").includes("internal error: Error: boom"))
  })

  it("an origin released gracefully may flush after the client is gone, but only for the linger time", async () => {
    // An origin that never ends its side: our FIN does not make it close.
    const originSockets: Array<net.Socket> = []
    let originClosed = false
    let originRead = ""
    let originEnded = false
    const stubborn = net.createServer({ allowHalfOpen: true }, (s) => {
      originSockets.push(s)
      s.on("error", () => {})
      s.on("close", () => (originClosed = true))
      s.on("data", (d: Buffer) => (originRead += d.toString()))
      s.on("end", () => (originEnded = true))
    })
    const port = await listen(stubborn)
    cleanups.push(async () => {
      for (const s of originSockets) s.destroy()
      await closeServer(stubborn)
    })
    let now = 0
    const h = await harness(
      (event) =>
        event._tag === "Received" && event.side === "client"
          ? [{ _tag: "Connect", host: "127.0.0.1", port }]
          : event._tag === "Connected"
            ? [
                { _tag: "Write", side: "origin", bytes: text("last words") },
                { _tag: "Close", side: "origin", graceful: true, reusable: false },
                closeClient,
              ]
            : [],
      {},
      150,
      () => now,
    )
    const c = rawClient(h.port)
    c.socket.write("go")
    await c.waitClose()
    // The origin got the last words and our FIN, and never ends its side: the linger deadline decides.
    await until("the origin to read our FIN", () => originEnded)
    expect(originRead).toBe("last words")
    expect(h.finished.length).toBe(0) // the origin is still lingering
    now = 149
    h.ctx.deadlines.fire()
    expect(h.finished.length).toBe(0)
    expect(originClosed).toBe(false)
    now = 150
    h.ctx.deadlines.fire()
    await until("the connection to finish", () => h.finished.length === 1)
    // Our origin socket is gone: a write from the origin now meets a reset.
    // (The first write draws the reset, the next one sees it.)
    for (let i = 0; i < 50 && !originClosed; i++) {
      if (!originSockets[0]!.destroyed) originSockets[0]!.write("anyone?")
      await sleep(10)
    }
    expect(originClosed).toBe(true)
  })
})
