/**
 * Loopback helpers for the runtime tests: a proxy (ProxyServer in-process), origins and raw clients,
 * all on 127.0.0.1 with port 0. Nothing here resolves a real name or touches a non-loopback address.
 */
import * as http from "node:http"
import * as net from "node:net"
import { defaultLimits, type Limits } from "../../src/core/limits.ts"
import { ProxyServer, type ProxyServerOptions } from "../../src/runtime/ProxyServer.ts"
import type { WorkerInit } from "../../src/runtime/protocol.ts"
import { until } from "../e2e/support/wire.ts"

export const baseInit = (overrides: Partial<WorkerInit> = {}, limits: Partial<Limits> = {}): WorkerInit => ({
  id: 0,
  listen: [{ host: "127.0.0.1", port: 0 }],
  reusePort: false,
  limits: { ...defaultLimits, ...limits },
  via: "hctunnel-test",
  allow: ["127.0.0.0/8", "::1/128"],
  logFormat: "text",
  logLevel: "info",
  hosts: { "origin.test": "127.0.0.1" },
  statsIntervalMs: 0,
  // Never the system's DNS servers: a closed loopback port refuses every query at once (a test that
  // needs answers starts its own server, test/e2e/support/dns.ts).
  dnsServers: ["127.0.0.1:1"],
  ...overrides,
})

export interface RunningProxy {
  readonly server: ProxyServer
  readonly port: number
  readonly lines: Array<string>
  /** Shut down gracefully and resolve when drained. */
  readonly stop: (graceMs?: number) => Promise<void>
}

export const startProxy = (init: WorkerInit, options: ProxyServerOptions = {}): Promise<RunningProxy> =>
  new Promise((resolve, reject) => {
    const lines: Array<string> = []
    const server = new ProxyServer(init, { write: (s) => lines.push(...s.split("\n").filter((l) => l !== "")), ...options })
    server.listen((result) => {
      if (!result.ok) return reject(new Error(`${result.code}: ${result.message}`))
      resolve({
        server,
        port: result.addresses[0]!.port,
        lines,
        stop: (graceMs = 200) => new Promise<void>((done) => server.shutdown(graceMs, () => done())),
      })
    })
  })

export const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, () => resolve((server.address() as net.AddressInfo).port)))

export const closeServer = (server: net.Server): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => resolve())
    ;(server as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.()
  })

/** An echo origin that remembers its sockets so a test can close them. */
export const echoServer = async () => {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
    s.on("error", () => {})
    s.pipe(s)
  })
  const port = await listen(server)
  return {
    port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy()
      await closeServer(server)
    },
  }
}

export const httpServer = async (handler: http.RequestListener) => {
  const server = http.createServer(handler)
  const port = await listen(server)
  return { port, close: () => closeServer(server) }
}

/** A raw client: collects everything it reads, can wait for text or for the close. */
export const rawClient = (port: number) => {
  // Like a real client, it closes its side when the proxy closes its own (no half-open).
  const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: false })
  const chunks: Array<Buffer> = []
  let length = 0
  let joined = Buffer.alloc(0)
  const all = () => {
    if (joined.length !== length) joined = Buffer.concat(chunks, length)
    return joined
  }
  const waiters: Array<() => void> = []
  let closed = false
  socket.on("data", (d: Buffer) => {
    chunks.push(d)
    length += d.length
    for (const w of waiters.splice(0)) w()
  })
  socket.on("error", () => {})
  socket.on("close", () => {
    closed = true
    for (const w of waiters.splice(0)) w()
  })
  const arrived = (pred: () => boolean, what: string, ms = 5_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(all().toString("latin1").slice(0, 300))}`)),
        ms,
      )
      const check = () => {
        if (pred()) {
          clearTimeout(timer)
          resolve()
        } else if (closed) {
          clearTimeout(timer)
          pred()
            ? resolve()
            : reject(new Error(`closed while waiting for ${what}; got ${JSON.stringify(all().toString("latin1").slice(0, 300))}`))
        } else waiters.push(check)
      }
      check()
    })
  return {
    socket,
    text: () => all().toString("latin1"),
    bytes: () => all(),
    waitFor: (s: string, ms?: number) => arrived(() => all().toString("latin1").includes(s), JSON.stringify(s), ms),
    waitForBytes: (n: number, ms?: number) => arrived(() => length >= n, `${n} bytes`, ms),
    waitClose: (ms?: number) =>
      new Promise<void>((resolve, reject) => {
        if (closed) return resolve()
        const timer = setTimeout(() => reject(new Error("timed out waiting for close")), ms ?? 5_000)
        socket.once("close", () => {
          clearTimeout(timer)
          resolve()
        })
      }),
    isClosed: () => closed,
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Bounded waits (a bound, never a measurement: tests assert what happened, not how long it took). */
export { until } from "../e2e/support/wire.ts"

/** The first line of `p`'s log that matches, once it is there. */
export const waitForLine = async (p: RunningProxy, pattern: RegExp): Promise<string> => {
  let line: string | undefined
  await until(`a log line matching ${String(pattern)}`, () => (line = p.lines.find((l) => pattern.test(l))) !== undefined, 5_000, 5).catch(
    (e: unknown) => Promise.reject(new Error(`${String(e)}; the log:\n${p.lines.join("\n")}`)),
  )
  return line as string
}

/** A port on 127.0.0.1 that nobody listens on (bound, then released). */
export const freePort = async (): Promise<number> => {
  const s = net.createServer()
  const port = await listen(s)
  await closeServer(s)
  return port
}
