/**
 * The well-behaved origin: keep-alive HTTP/1.1 with every kind of body the soak checks.
 *
 *   GET|HEAD /data?o=&n=&te=cl|ch&tr=1  n bytes of the pool from o, Content-Length or chunked (random chunk
 *                                       sizes, extensions now and then), with trailers when tr=1: the
 *                                       stream's SHA-256, and an `Expires` the proxy must drop
 *   POST /up?id=&o=&n=&stall=ms         checks the request body (either framing, and its trailers) byte
 *                                       for byte; answers `ok <n>` or `bad <why>`. `Expect: 100-continue`
 *                                       gets its 100 first; stall=ms stops reading for that long first
 *   POST /sink?id=&o=&n=                a body the client will cut: says "started" when the head is in,
 *                                       then checks that what came is a prefix of the stream
 *   GET /nocontent                      204
 *   GET /cond                           304 with a Content-Length (that no body follows) when
 *                                       If-None-Match matches, else 200
 *   GET /upgrade (Upgrade: soak-stream) 101, then the stream protocol (stream.ts)
 *
 * The same handler serves several ports (the destinations the configurations deny), so a request that
 * should have been denied and was not is answered, and caught by the client.
 */
import type net from "node:net"
import { Rng, StreamCheck } from "../rng.ts"
import { type Fields, field, hasToken, head, readBody, requestFraming, writeAll, chunkedBody } from "../wire/http1.ts"
import type { Reader } from "../wire/Reader.ts"
import { type After, num, type OriginContext, serveHttp } from "./serve.ts"
import { serveStream } from "./stream.ts"

export const TRAILER_SUM = "X-Soak-Sum"
/** A trailer the proxy must drop (RFC 9110 §6.5.1, design §6.2): responses carry Expires, requests Cookie. */
export const FORBIDDEN_RESPONSE_TRAILER = ["Expires", "0"] as const
export const FORBIDDEN_REQUEST_TRAILER = ["Cookie", "soak=1"] as const
export const ETAG = '"soak-v1"'
export const COND_BODY = "the conditional body\n"

const closeAfter = (req: { fields: Fields; version: string }): boolean =>
  hasToken(req.fields, "connection", "close") || (req.version === "HTTP/1.0" && !hasToken(req.fields, "connection", "keep-alive"))

export const goodOrigin = (ctx: OriginContext & { pace: (n: number) => Promise<void> }) => (socket: net.Socket) =>
  serveHttp(ctx, socket, async (req, url, r, s, _index): Promise<After> => {
    const close = closeAfter(req)
    const conn: Fields = close ? [["Connection", "close"]] : []
    const finish = (): After => {
      if (close) {
        s.end()
        return "done"
      }
      return "next"
    }
    switch (url.pathname) {
      case "/data": {
        const o = num(url, "o")
        const n = num(url, "n")
        const chunked = url.searchParams.get("te") === "ch"
        const trailers = url.searchParams.get("tr") === "1"
        const fields: Fields = [
          ["X-Soak", "data"],
          chunked ? ["Transfer-Encoding", "chunked"] : ["Content-Length", String(n)],
          ...(trailers ? ([["Trailer", TRAILER_SUM]] as Fields) : []),
          ...conn,
        ]
        await drain(r, req)
        s.write(head("HTTP/1.1 200 OK", fields))
        if (req.method !== "HEAD") {
          const body = chunked
            ? chunkedBody(
                ctx.pool,
                o,
                n,
                new Rng(ctx.seed ^ o, n),
                trailers ? [[TRAILER_SUM, ctx.pool.sha256(o, n)], FORBIDDEN_RESPONSE_TRAILER] : [],
              )
            : ctx.pool.slices(o, n)
          await writeAll(s, body, n > 1024 * 1024 ? ctx.pace : undefined)
        }
        return finish()
      }
      case "/up": {
        const o = num(url, "o")
        const n = num(url, "n")
        if (hasToken(req.fields, "expect", "100-continue")) s.write("HTTP/1.1 100 Continue\r\n\r\n")
        const stall = num(url, "stall")
        if (stall > 0) {
          s.pause()
          await new Promise((resolve) => setTimeout(resolve, stall))
          s.resume()
        }
        const check = new StreamCheck(ctx.pool, o, n)
        const trailers = await readBody(r, requestFraming(req), check.feed)
        let verdict = check.complete
          ? `ok ${n}`
          : `bad ${check.mismatchAt !== undefined ? `byte ${check.mismatchAt} differs` : `${check.received} bytes`}`
        if (verdict.startsWith("ok") && hasToken(req.fields, "transfer-encoding", "chunked")) {
          const expected = `${TRAILER_SUM}: ${ctx.pool.sha256(o, n)}`
          const got = trailers.map(([k, v]) => `${k}: ${v}`).join(" | ")
          if (got !== expected) verdict = `bad trailers ${got}`
        }
        const body = `${verdict}\n`
        s.write(head("HTTP/1.1 200 OK", [["Content-Length", String(body.length)], ...conn]))
        s.write(body)
        return finish()
      }
      case "/sink": {
        const id = url.searchParams.get("id") ?? ""
        const check = new StreamCheck(ctx.pool, num(url, "o"), num(url, "n"))
        ctx.verdicts.settle(`${id}:started`, "started")
        try {
          await readBody(r, requestFraming(req), check.feed)
        } catch {
          // The client cut it: what arrived must be a prefix.
        }
        ctx.verdicts.settle(id, check.mismatchAt === undefined ? `prefix ${check.received}` : `mismatch at byte ${check.mismatchAt}`)
        s.destroy()
        return "done"
      }
      case "/nocontent":
        await drain(r, req)
        s.write(head("HTTP/1.1 204 No Content", [["X-Soak", "204"], ...conn]))
        return finish()
      case "/cond":
        await drain(r, req)
        if (field(req.fields, "if-none-match") === ETAG) {
          s.write(head("HTTP/1.1 304 Not Modified", [["ETag", ETAG], ["Content-Length", "1234"], ...conn]))
        } else {
          s.write(head("HTTP/1.1 200 OK", [["ETag", ETAG], ["Content-Length", String(COND_BODY.length)], ...conn]))
          s.write(COND_BODY)
        }
        return finish()
      case "/upgrade":
        if (!hasToken(req.fields, "connection", "upgrade") || field(req.fields, "upgrade") !== "soak-stream") {
          ctx.ledger.record("origin: upgrade", "unexpected", "the upgrade request lost its Connection/Upgrade fields")
          s.destroy()
          return "done"
        }
        s.write(
          head("HTTP/1.1 101 Switching Protocols", [
            ["Upgrade", "soak-stream"],
            ["Connection", "upgrade"],
          ]),
        )
        await serveStream(ctx, s, r)
        return "done"
      default:
        await drain(r, req)
        s.write(head("HTTP/1.1 404 Not Found", [["Content-Length", "0"], ...conn]))
        return finish()
    }
  })

/** Reads and drops a request body the route does not use. */
const drain = (r: Reader, req: Parameters<typeof requestFraming>[0]): Promise<unknown> => readBody(r, requestFraming(req), () => {})
