/**
 * AdminServer: the operator's HTTP endpoint (`--admin HOST:PORT`), served by the main thread.
 *
 * Owns one `node:http` server and its routes:
 *   GET /healthz  200 `ok` while serving; 503 `starting` before the workers listen and `draining` from
 *                 the first SIGTERM/SIGINT on, so a load balancer stops sending new clients while live
 *                 ones finish (the server keeps answering through the whole grace period);
 *   GET /stats    the stats line's figures as JSON;
 *   GET /metrics  Prometheus text exposition (see Metrics.ts / Exposition.ts);
 * HEAD is answered like GET without the body; other methods get 405, other paths 404.
 *
 * Who gets an answer (issue 17 items 8 and 15):
 * - a connection from outside the admin allow-list is destroyed when it is accepted, before a byte is
 *   read: it holds nothing, so such clients cannot take the slots of the allowed ones, which have
 *   MAX_ADMIN_CONNECTIONS of their own (one more from an allowed source is destroyed the same way);
 * - a request whose `Host` names anything but this endpoint's own address is answered 421 (the
 *   DNS-rebinding guard: a page a browser loaded from a name that now resolves to this address sends
 *   that name). Accepted: the IP literal the connection arrived on with the endpoint's port, and
 *   `localhost:PORT` when that address is loopback; an HTTP/1.0 request without `Host` (a load
 *   balancer's check) too, since no browser sends one.
 *
 * It never touches the proxy's listeners or client sockets, and never computes a figure itself: the
 * supervisor hands it the three sources. A failing source is a 500 with a one-line reason, never a
 * crash of the main thread.
 */
import * as Data from "effect/Data"
import type * as Http from "node:http"
import type * as Net from "node:net"

/**
 * node:http as `require` loads it. An ESM `import` of it builds the module namespace, which reads every
 * export, lazy ones included, and so loads crypto, tls and http2 too (the RSS of each: docs/performance.md,
 * "The admin endpoint's cost").
 */
const http = process.getBuiltinModule("node:http")

/** What /healthz reports. */
export type Health = "starting" | "serving" | "draining"

export interface AdminSources {
  readonly health: () => Health
  /** The stats line's figures (any JSON-able value). */
  readonly stats: () => Promise<unknown>
  /** The whole /metrics body. */
  readonly metrics: () => Promise<string>
}

/** An address and port the endpoint listens on (or asks to: port 0 is any). */
export interface AdminAddress {
  readonly host: string
  readonly port: number
}

/** Who may use the endpoint (the supervisor passes `--admin-allow` parsed: access/Allow.ts AllowList). */
export interface AdminClients {
  readonly allows: (address: string | undefined) => boolean
}

export interface AdminOptions {
  readonly address: AdminAddress
  readonly allow: AdminClients
  readonly sources: AdminSources
}

/** Why the admin endpoint could not listen (the CLI words it, naming the flag). */
export class AdminListenError extends Data.TaggedError("AdminListenError")<{
  /** The system's error code: EADDRINUSE, EACCES... (the CLI words it: src/cli/wording.ts). */
  readonly reason: string
  /** The system's own message. */
  readonly detail: string
}> {}

/** The content type Prometheus expects for the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

const ROUTES = new Set(["/healthz", "/stats", "/metrics"])

/** Connections from allowed sources at once: a scraper or two and a load balancer's checks need a few. */
export const MAX_ADMIN_CONNECTIONS = 64

/** The text `Host` would carry for `address` (IPv6 in brackets, an IPv4-mapped IPv6 address as IPv4), canonical as URLs write it. */
const hostText = (address: string): string | undefined => {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  const literal = mapped !== null ? mapped[1]! : address.includes(":") ? `[${address}]` : address
  try {
    return new URL(`http://${literal}/`).hostname
  } catch {
    return undefined // a scoped IPv6 address (fe80::1%eth0): no Host names it
  }
}

const isLoopback = (address: string): boolean => /^(127\.|::ffff:127\.)/i.test(address) || address === "::1"

/**
 * Whether a request's `Host` names this endpoint: the address the connection arrived on (`localAddress`,
 * compared in canonical form) or `localhost` when that is loopback, with the endpoint's port (or none when
 * it is 80). Undefined (HTTP/1.0 without Host) is accepted: a browser always sends one.
 */
export const hostNamesEndpoint = (host: string | undefined, localAddress: string | undefined, localPort: number | undefined): boolean => {
  if (host === undefined) return true
  if (localAddress === undefined || localPort === undefined || !/^[A-Za-z0-9.:[\]-]+$/.test(host)) return false
  let url: URL
  try {
    url = new URL(`http://${host}/`)
  } catch {
    return false
  }
  if ((url.port === "" ? 80 : Number(url.port)) !== localPort) return false
  return url.hostname === hostText(localAddress) || (url.hostname === "localhost" && isLoopback(localAddress))
}

export class AdminServer {
  private readonly server: Http.Server
  private readonly allow: AdminClients
  private readonly sources: AdminSources
  private readonly requested: AdminAddress

  constructor(options: AdminOptions) {
    this.requested = options.address
    this.allow = options.allow
    this.sources = options.sources
    this.server = http.createServer(
      {
        // Scrapers and health checkers send small heads quickly; nobody needs more.
        maxHeaderSize: 8 * 1024,
        headersTimeout: 10_000,
        requestTimeout: 15_000,
        keepAliveTimeout: 5_000,
      },
      (req, res) => this.handle(req, res),
    )
    // Before node:http's own listener: a refused connection is gone before anything reads from it.
    this.server.prependListener("connection", (socket: Net.Socket) => this.accept(socket))
  }

  /** Connections from allowed sources now. */
  private live = 0

  /** The gate of every accepted connection: its source, then the allowed sources' capacity. */
  private accept(socket: Net.Socket): void {
    if (!this.allow.allows(socket.remoteAddress) || this.live >= MAX_ADMIN_CONNECTIONS) {
      socket.destroy()
      return
    }
    this.live++
    socket.once("close", () => this.live--)
  }

  /** Listen; resolves with the bound address (port 0 resolved). */
  listen(): Promise<AdminAddress> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        const code = e.code ?? "EUNKNOWN"
        reject(new AdminListenError({ reason: code, detail: e.message }))
      }
      this.server.once("error", onError)
      this.server.listen({ host: this.requested.host, port: this.requested.port, exclusive: true }, () => {
        this.server.off("error", onError)
        const a = this.server.address()
        resolve(typeof a === "object" && a !== null ? { host: a.address, port: a.port } : this.requested)
      })
    })
  }

  /** Stop listening and close every admin connection (idle or not). */
  close(): void {
    this.server.close()
    this.server.closeAllConnections()
  }

  private handle(req: Http.IncomingMessage, res: Http.ServerResponse): void {
    const { localAddress, localPort } = req.socket
    if (!hostNamesEndpoint(req.headers.host, localAddress, localPort)) {
      const own = `${hostText(localAddress ?? "") ?? "?"}:${localPort}`
      return send(
        res,
        421,
        "text/plain; charset=utf-8",
        `421 Misdirected Request: this endpoint answers to its own address (Host: ${own})\n`,
        {
          Connection: "close",
        },
      )
    }
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q < 0 ? url : url.slice(0, q)
    if (!ROUTES.has(path)) return send(res, 404, "text/plain; charset=utf-8", "404 Not Found: try /metrics, /healthz or /stats\n")
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(res, 405, "text/plain; charset=utf-8", `405 Method Not Allowed: ${path} answers GET and HEAD\n`, { Allow: "GET, HEAD" })
    }
    switch (path) {
      case "/healthz": {
        const health = this.sources.health()
        return send(res, health === "serving" ? 200 : 503, "text/plain; charset=utf-8", health === "serving" ? "ok\n" : `${health}\n`)
      }
      case "/stats":
        return answer(
          res,
          this.sources.stats().then((s) => JSON.stringify(s) + "\n"),
          "application/json",
        )
      case "/metrics":
        return answer(res, this.sources.metrics(), PROMETHEUS_CONTENT_TYPE)
    }
  }
}

const send = (
  res: Http.ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Readonly<Record<string, string>> = {},
): void => {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store", ...headers })
  res.end(body)
}

const answer = (res: Http.ServerResponse, body: Promise<string>, type: string): void => {
  body.then(
    (text) => send(res, 200, type, text),
    (e: unknown) =>
      send(res, 500, "text/plain; charset=utf-8", `500 Internal Server Error: ${e instanceof Error ? e.message : String(e)}\n`),
  )
}
