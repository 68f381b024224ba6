/**
 * Misbehaving origins: each route breaks one rule at one known point, so the client knows exactly what
 * the proxy must make of it (design §6.4, §6.9, §6.11).
 *
 *   /reset-before            reset (RST) as soon as the head is read          -> 502
 *   /reset-mid?o=&n=&k=      head (Content-Length n), k body bytes, then RST   -> 200, a prefix of ≤ k bytes, a cut
 *   /stall-head              never answers                                     -> 504 after idleTimeout
 *   /stall-mid?o=&n=&k=      head, k bytes, then nothing                       -> 200, exactly k bytes, a cut after idleTimeout
 *   /stray?o=&n=             a complete response plus stray bytes after it     -> 200, exactly n bytes; that
 *                                                                                  origin connection never used again
 * And the flaky origin: it serves the first request of each connection and closes the connection when a
 * second request arrives on it (an origin closing a kept-alive connection just as the proxy reuses it): a
 * GET must still get its 200 (the proxy's one retry, design §6.3).
 */
import type net from "node:net"
import { head, readBody, requestFraming, writeAll } from "../wire/http1.ts"
import { type After, num, type OriginContext, serveHttp } from "./serve.ts"

export const STRAY = "STRAY BYTES AFTER THE RESPONSE\r\n"

export const badOrigin = (ctx: OriginContext) => (socket: net.Socket) => {
  let spoiled = false
  serveHttp(ctx, socket, async (req, url, r, s): Promise<After> => {
    if (spoiled) {
      ctx.ledger.record("origin: stray", "unexpected", "the proxy reused an origin connection that had sent bytes after its response")
      s.destroy()
      return "done"
    }
    await readBody(r, requestFraming(req), () => {})
    const o = num(url, "o")
    const n = num(url, "n")
    const k = num(url, "k")
    switch (url.pathname) {
      case "/reset-before":
        s.resetAndDestroy()
        return "done"
      case "/reset-mid":
        await writeAll(s, [head("HTTP/1.1 200 OK", [["Content-Length", String(n)]]), ctx.pool.copy(o, k)])
        setTimeout(() => s.resetAndDestroy(), 100)
        return "done"
      case "/stall-head":
        await r.closing()
        s.destroy()
        return "done"
      case "/stall-mid":
        await writeAll(s, [head("HTTP/1.1 200 OK", [["Content-Length", String(n)]]), ctx.pool.copy(o, k)])
        await r.closing()
        s.destroy()
        return "done"
      case "/stray":
        spoiled = true
        s.write(Buffer.concat([head("HTTP/1.1 200 OK", [["Content-Length", String(n)]]), ctx.pool.copy(o, n), Buffer.from(STRAY)]))
        return "next"
      default:
        s.destroy()
        return "done"
    }
  })
}

/** Counts how often it closed a connection on reuse (the fault happened), and answers the first requests. */
export const flakyOrigin = (ctx: OriginContext, counts: { closedOnReuse: number }) => (socket: net.Socket) =>
  serveHttp(ctx, socket, async (req, url, r, s, index): Promise<After> => {
    await readBody(r, requestFraming(req), () => {})
    if (index > 0) {
      counts.closedOnReuse++
      if (counts.closedOnReuse % 2 === 0) s.end()
      else s.resetAndDestroy()
      return "done"
    }
    const o = num(url, "o")
    const n = num(url, "n")
    s.write(Buffer.concat([head("HTTP/1.1 200 OK", [["Content-Length", String(n)]]), ctx.pool.copy(o, n)]))
    return "next"
  })
