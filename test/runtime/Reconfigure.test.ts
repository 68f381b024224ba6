/**
 * ProxyServer.reconfigure (SIGHUP in a worker), in-process over loopback: every request or tunnel that
 * starts after it is judged by the new settings, also on a connection that was already open; exchanges
 * under way finish under the old ones (issue 17 item 5); proxy authentication can be turned on, moved to
 * another users file and turned off (issue 17 item 1).
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { LiveSettings, WorkerInit } from "../../src/runtime/protocol.ts"
import { baseInit, echoServer, httpServer, type RunningProxy, startProxy } from "./loopback.ts"

let origin: Awaited<ReturnType<typeof httpServer>>
let echo: Awaited<ReturnType<typeof echoServer>>
/** Responses to /slow wait here until the test lets them go. */
const held: Array<() => void> = []
let dir: string

beforeAll(async () => {
  origin = await httpServer((req, res) => {
    if (req.url === "/slow") held.push(() => res.end("slow"))
    else res.end("hello")
  })
  echo = await echoServer()
  dir = mkdtempSync(join(tmpdir(), "hctunnel-reconfigure-"))
})
afterAll(async () => {
  await Promise.all([origin.close(), echo.close()])
  rmSync(dir, { recursive: true, force: true })
})

const withProxy = async (overrides: Partial<WorkerInit>, body: (proxy: RunningProxy, init: WorkerInit) => Promise<void>) => {
  const init = baseInit(overrides)
  const proxy = await startProxy(init)
  try {
    await body(proxy, init)
  } finally {
    await proxy.stop()
  }
}

/** The live part of `init`, with `changes`. */
const settings = (init: WorkerInit, changes: Partial<LiveSettings>): LiveSettings => ({
  limits: init.limits,
  via: init.via,
  allow: init.allow,
  logFormat: init.logFormat,
  logLevel: init.logLevel,
  allowTo: init.allowTo ?? [],
  denyTo: init.denyTo ?? [],
  authFile: init.authFile,
  ...changes,
})

/** A kept-alive client from `localAddress`: sends requests one after the other, reads whole responses. */
const client = async (port: number, localAddress = "127.0.0.1") => {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress })
  socket.on("error", () => {})
  let text = ""
  let closed = false
  const waiters: Array<() => void> = []
  const poke = () => {
    for (const w of waiters.splice(0)) w()
  }
  socket.on("data", (d: Buffer) => {
    text += d.toString("latin1")
    poke()
  })
  socket.on("close", () => {
    closed = true
    poke()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve)
    socket.once("error", reject)
  })
  const until = (done: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(text)}`)), 5_000)
      const check = () => {
        if (done()) {
          clearTimeout(timer)
          resolve()
        } else if (closed) {
          clearTimeout(timer)
          reject(new Error(`closed while waiting for ${what}; got ${JSON.stringify(text)}`))
        } else waiters.push(check)
      }
      check()
    })
  /** One whole response (head and Content-Length body) after `from`; its status. */
  const response = async (from: number): Promise<number> => {
    const whole = () => {
      const rest = text.slice(from)
      const end = rest.indexOf("\r\n\r\n")
      if (end < 0) return false
      const length = /\r\ncontent-length: *(\d+)/i.exec(rest.slice(0, end))
      return rest.length >= end + 4 + Number(length?.[1] ?? 0)
    }
    await until(whole, "a response")
    return Number(text.slice(from + 9, from + 12))
  }
  return {
    socket,
    isClosed: () => closed,
    waitClose: () => until(() => closed, "the close").catch((e: unknown) => (closed ? undefined : Promise.reject(e))),
    /** Send a GET for `path`; resolves with the status once its response is whole. */
    get: async (path: string, extra = ""): Promise<number> => {
      const from = text.length
      socket.write(`GET http://origin.test:${origin.port}${path} HTTP/1.1\r\nHost: origin.test:${origin.port}\r\n${extra}\r\n`)
      return response(from)
    },
    /** Send a GET whose response is awaited later. */
    start: (path: string): (() => Promise<number>) => {
      const from = text.length
      socket.write(`GET http://origin.test:${origin.port}${path} HTTP/1.1\r\nHost: origin.test:${origin.port}\r\n\r\n`)
      return () => response(from)
    },
    /** CONNECT to the echo server; then `relay` sends and reads back. */
    tunnel: async (): Promise<number> => {
      socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`)
      await until(() => text.includes("\r\n\r\n"), "the CONNECT answer")
      return Number(text.slice(9, 12))
    },
    relay: async (data: string): Promise<boolean> => {
      const from = text.length
      socket.write(data)
      await until(() => text.length >= from + data.length, "the echo")
      return text.slice(from) === data
    },
  }
}

/** Until `held` has `n` responses waiting (the origin got the requests). */
const heldCount = async (n: number) => {
  for (let i = 0; i < 500 && held.length < n; i++) await new Promise((r) => setTimeout(r, 10))
  expect(held.length).toBe(n)
}

describe("after a reload, new requests on open connections are judged by the new settings (issue 17 item 5)", () => {
  it("a deny rule reaches the next request of a kept-alive connection; an exchange under way finishes under the old rules", () =>
    withProxy({}, async (proxy, init) => {
      const kept = await client(proxy.port)
      expect(await kept.get("/")).toBe(200)
      const busy = await client(proxy.port)
      const slow = busy.start("/slow")
      await heldCount(1)
      proxy.server.reconfigure(settings(init, { denyTo: ["origin.test"] }))
      held.shift()?.()
      expect(await slow()).toBe(200)
      // The same connections, not closed by the reload (nothing they fixed at accept changed): the rule answers.
      expect(await kept.get("/")).toBe(403)
      expect(await busy.get("/")).toBe(403)
      kept.socket.destroy()
      busy.socket.destroy()
    }))

  it("a narrowed allow-list closes the connections of clients it no longer admits once their exchange is done; their tunnels relay on", () =>
    withProxy({}, async (proxy, init) => {
      const idle = await client(proxy.port, "127.0.0.5")
      expect(await idle.get("/")).toBe(200)
      const busy = await client(proxy.port, "127.0.0.5")
      const slow = busy.start("/slow")
      await heldCount(1)
      const tunnel = await client(proxy.port, "127.0.0.5")
      expect(await tunnel.tunnel()).toBe(200)
      const still = await client(proxy.port, "127.0.0.1")
      expect(await still.get("/")).toBe(200)

      proxy.server.reconfigure(settings(init, { allow: ["127.0.0.1/32"] }))
      await idle.waitClose()
      held.shift()?.()
      expect(await slow()).toBe(200)
      await busy.waitClose()
      expect(await tunnel.relay("still relaying")).toBe(true)
      // A client the new list admits keeps its connection and goes on.
      expect(await still.get("/")).toBe(200)
      expect(still.isClosed()).toBe(false)
      // And a new connection from the one no longer admitted is refused.
      const again = await client(proxy.port, "127.0.0.5")
      expect(await again.get("/")).toBe(403)
      for (const c of [tunnel, still, again]) c.socket.destroy()
    }))

  it("new limits or Via apply to new connections; a kept-alive connection keeps the ones it started with and stays open", () =>
    withProxy({}, async (proxy, init) => {
      const kept = await client(proxy.port)
      expect(await kept.get("/")).toBe(200)
      proxy.server.reconfigure(settings(init, { limits: { ...init.limits, maxRequestLine: 64 } }))
      const fresh = await client(proxy.port)
      expect(await fresh.get(`/?${"q".repeat(100)}`)).toBe(414)
      fresh.socket.destroy()
      // The open connection was not asked to finish: its next request is served, under its own limits.
      expect(await kept.get(`/?${"q".repeat(100)}`)).toBe(200)
      kept.socket.destroy()
    }))
})

/** A users file written by the real htpasswd (bcrypt, cost 5 keeps the test quick). */
const htpasswd = (file: string, user: string, password: string): string => {
  execFileSync("/usr/bin/htpasswd", ["-bBc", "-C", "5", file, user, password], { stdio: "ignore" })
  return file
}
const basic = (credentials: string) => `Proxy-Authorization: Basic ${Buffer.from(credentials).toString("base64")}\r\n`

describe("proxy authentication follows a reload (issue 17 item 1)", () => {
  it("turned on, moved to another file, turned off; connections admitted under the other mode finish and close", () =>
    withProxy({}, async (proxy, init) => {
      const first = htpasswd(join(dir, "first"), "erin", "five")
      const second = htpasswd(join(dir, "second"), "frank", "six")
      const before = await client(proxy.port)
      expect(await before.get("/")).toBe(200)

      proxy.server.reconfigure(settings(init, { authFile: first }))
      // Admitted without authentication: it must not carry requests that now need it.
      await before.waitClose()
      const on = await client(proxy.port)
      expect(await on.get("/")).toBe(407)
      expect(await on.get("/", basic("erin:five"))).toBe(200)

      proxy.server.reconfigure(settings(init, { authFile: second }))
      // Same mode: the connection stays, its next request is judged by the new users.
      expect(await on.get("/", basic("erin:five"))).toBe(407)
      expect(await on.get("/", basic("frank:six"))).toBe(200)

      proxy.server.reconfigure(settings(init, { authFile: undefined }))
      await on.waitClose()
      const off = await client(proxy.port)
      expect(await off.get("/")).toBe(200)
      off.socket.destroy()
    }))
})
