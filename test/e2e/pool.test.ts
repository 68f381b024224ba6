/**
 * Origin connections kept for reuse, end to end (issue 17 items 6 and 7): a hand-written origin on
 * loopback that misbehaves in the ways the audit found, the real proxy, raw clients. What must hold: bytes
 * an origin sends beyond a response never become another request's response, and a connection that
 * authenticated with NTLM or Negotiate never serves anyone but the client connection that authenticated it.
 */
import net from "node:net"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, get } from "./support/wire.ts"

/** What the scripted origin was asked, and on which of its connections (numbered from 1 in accept order). */
interface Asked {
  readonly connection: number
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
}

/** An answer of the scripted origin: bytes to write now, and optionally bytes to write `strayAfterMs` later. */
interface Answer {
  readonly now: string
  readonly stray?: { readonly bytes: string; readonly afterMs: number }
}

/**
 * A keep-alive HTTP/1.1 origin written by hand (node:http would never misbehave this way). Requests have no
 * body. It answers in order on each connection: a request that arrives while stray bytes are pending is
 * answered after them, as a real origin's bytes leave in the order it writes them. Each connection has its
 * own `state`, for connection-based authentication.
 */
const startScriptedOrigin = async (answer: (asked: Asked, state: Map<string, string>) => Answer) => {
  const asked: Asked[] = []
  const sockets = new Set<net.Socket>()
  let accepted = 0
  let strayWritten = 0
  const server = net.createServer((socket) => {
    const connection = ++accepted
    const state = new Map<string, string>()
    sockets.add(socket)
    socket.on("error", () => {})
    socket.once("close", () => sockets.delete(socket))
    let buffered = ""
    let busy: Promise<void> = Promise.resolve()
    socket.on("data", (d: Buffer) => {
      buffered += d.toString("latin1")
      for (let end = buffered.indexOf("\r\n\r\n"); end >= 0; end = buffered.indexOf("\r\n\r\n")) {
        const head = buffered.slice(0, end)
        buffered = buffered.slice(end + 4)
        const [method = "", path = ""] = head.split(" ")
        const authorization = /^authorization:[ \t]*(.*)$/im.exec(head)?.[1]?.trim()
        const one: Asked = { connection, method, path, authorization }
        busy = busy.then(async () => {
          asked.push(one)
          const { now, stray } = answer(one, state)
          socket.write(now)
          if (stray === undefined) return
          await new Promise((resolve) => (stray.afterMs === 0 ? setImmediate(resolve) : setTimeout(resolve, stray.afterMs)))
          if (!socket.destroyed) socket.write(stray.bytes)
          strayWritten++
        })
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    asked,
    strayWritten: () => strayWritten,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

const ok = (body: string, extra = ""): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`
/** A whole second response, as an origin that desynchronised would send it. */
const STRAY = ok("stray", "X-Stray: yes\r\n")

let proxy: Proxy
const origins: Array<{ close(): Promise<void> }> = []

beforeAll(async () => {
  proxy = await startProxy({ workers: 1 })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all(origins.map((o) => o.close()))
})

/** One request on `conn`; the response (`head` for a HEAD request). */
const exchange = async (conn: Conn, request: string, head = false) => {
  await conn.write(request)
  return conn.readResponse({ head, timeoutMs: 5000 })
}

describe("bytes an origin sends after a response (issue 17 item 6)", () => {
  it.each([
    ["a response to HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"],
    ["a 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n"],
    ["a 304", "GET", 'HTTP/1.1 304 Not Modified\r\nETag: "1"\r\n\r\n'],
  ])(
    "after %s, stray bytes a moment later never reach the next request, the same client's or another's",
    {
      timeout: 20_000,
    },
    async (_, method, bodiless) => {
      const origin = await startScriptedOrigin(({ path, connection }) =>
        path === "/bodiless" ? { now: bodiless, stray: { bytes: STRAY, afterMs: 30 } } : { now: ok(`real ${connection}`) },
      )
      origins.push(origin)
      const url = (path: string) => `http://127.0.0.1:${origin.port}${path}`
      const a = await Conn.open(proxy.port)
      const b = await Conn.open(proxy.port)
      try {
        const first = await exchange(a, `${method} ${url("/bodiless")} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, method === "HEAD")
        // The next requests leave at once, before the origin's stray bytes: the connection they went out on
        // must not be the one that answered without a body.
        const [again, other] = await Promise.all([exchange(a, get(url("/page"))), exchange(b, get(url("/page")))])
        for (const r of [again, other]) {
          expect(r.headers["x-stray"]).toBeUndefined()
          expect(r.body.toString()).toMatch(/^real \d+$/)
        }
        expect(first.body.length).toBe(0)
        const bodilessOn = origin.asked.find((q) => q.path === "/bodiless")!.connection
        expect(origin.asked.filter((q) => q.path === "/page").map((q) => q.connection)).not.toContain(bodilessOn)
        // Once the stray bytes were sent, later requests still get real answers.
        await vi.waitFor(() => expect(origin.strayWritten()).toBe(1), { timeout: 5000, interval: 10 })
        for (const conn of [a, b]) expect((await exchange(conn, get(url("/page")))).body.toString()).toMatch(/^real \d+$/)
      } finally {
        a.destroy()
        b.destroy()
      }
    },
  )

  it.each([
    ["at once", 0],
    ["a moment later", 30],
  ])(
    "a pipelined request is not sent on a connection whose origin sent more than its response announced (%s)",
    {
      timeout: 20_000,
    },
    async (_, afterMs) => {
      const origin = await startScriptedOrigin(({ path, connection }) =>
        path === "/short" ? { now: ok("real"), stray: { bytes: STRAY, afterMs } } : { now: ok(`real ${connection}`) },
      )
      origins.push(origin)
      const url = (path: string) => `http://127.0.0.1:${origin.port}${path}`
      const a = await Conn.open(proxy.port)
      try {
        await a.write(get(url("/short")) + get(url("/page")))
        expect((await a.readResponse({ timeoutMs: 5000 })).body.toString()).toBe("real")
        const second = await a.readResponse({ timeoutMs: 5000 })
        expect(second.headers["x-stray"]).toBeUndefined()
        expect(second.body.toString()).toMatch(/^real \d+$/)
        expect(origin.asked.map((q) => q.connection)).toEqual([1, 2])
      } finally {
        a.destroy()
      }
    },
  )
})

describe("connection-based authentication pins the origin connection to its client (issue 17 item 7)", () => {
  /** NTLM's three messages, as far as this origin cares: it only tells them apart by their first bytes. */
  const NEGOTIATE_MESSAGE = `NTLM ${Buffer.from("NTLMSSP\0\x01\0\0\0", "latin1").toString("base64")}`
  const AUTHENTICATE_MESSAGE = `NTLM ${Buffer.from("NTLMSSP\0\x03\0\0\0alice", "latin1").toString("base64")}`

  /**
   * As IIS does: the handshake authenticates the TCP connection, and every later request on it is served as
   * that user, with or without an Authorization field.
   */
  const startNtlmOrigin = () =>
    startScriptedOrigin(({ authorization }, state) => {
      if (state.get("user") !== undefined) return { now: ok(`private page of ${state.get("user")}`) }
      if (authorization === NEGOTIATE_MESSAGE) {
        state.set("step", "challenged")
        return { now: "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAA\r\nContent-Length: 0\r\n\r\n" }
      }
      if (authorization === AUTHENTICATE_MESSAGE && state.get("step") === "challenged") {
        state.set("user", "alice")
        return { now: ok("private page of alice") }
      }
      return { now: "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n" }
    })

  it("client B, without credentials, never gets client A's authenticated connection; A keeps it", { timeout: 20_000 }, async ({
    expect,
  }) => {
    const origin = await startNtlmOrigin()
    origins.push(origin)
    const url = `http://127.0.0.1:${origin.port}/private`
    const a = await Conn.open(proxy.port)
    const b = await Conn.open(proxy.port)
    try {
      expect((await exchange(a, get(url))).status).toBe(401)
      expect((await exchange(a, get(url, `Authorization: ${NEGOTIATE_MESSAGE}\r\n`))).status).toBe(401)
      const page = await exchange(a, get(url, `Authorization: ${AUTHENTICATE_MESSAGE}\r\n`))
      expect(page.status).toBe(200)
      expect(page.body.toString()).toBe("private page of alice")
      // The handshake went over one origin connection: it is A's from its first challenge on.
      expect(new Set(origin.asked.map((q) => q.connection))).toEqual(new Set([1]))

      // B asks for the same page with no credentials, on a connection of its own: a new origin connection.
      for (let i = 0; i < 3; i++) {
        const r = await exchange(b, get(url))
        expect(r.status).toBe(401)
        expect(r.body.toString()).not.toContain("alice")
      }
      expect(origin.asked.slice(3).map((q) => q.connection)).not.toContain(1)

      // A's next request, without credentials, still goes over its authenticated connection.
      const later = await exchange(a, get(url))
      expect(later.body.toString()).toBe("private page of alice")
      expect(origin.asked.at(-1)?.connection).toBe(1)
    } finally {
      a.destroy()
      b.destroy()
    }
  })

  it("an authenticated connection outlives none of its client: once A is gone, B gets a new one", { timeout: 20_000 }, async ({
    expect,
  }) => {
    const origin = await startNtlmOrigin()
    origins.push(origin)
    const url = `http://127.0.0.1:${origin.port}/private`
    const a = await Conn.open(proxy.port)
    await exchange(a, get(url, `Authorization: ${NEGOTIATE_MESSAGE}\r\n`))
    expect((await exchange(a, get(url, `Authorization: ${AUTHENTICATE_MESSAGE}\r\n`))).status).toBe(200)
    a.end()
    await a.closedPromise
    const b = await Conn.open(proxy.port)
    try {
      const r = await exchange(b, get(url))
      expect(r.status).toBe(401)
      expect(origin.asked.at(-1)?.connection).toBe(2)
    } finally {
      b.destroy()
    }
  })
})
