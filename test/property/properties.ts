/**
 * The properties of docs/design.md §7, as arbitraries and predicates shared by the vitest files
 * (test/property/*.test.ts, few runs) and by `npm run fuzz` (test/property/fuzz.ts, many runs under a
 * time budget). Each `PropertySpec` names the invariant it checks.
 *
 * Runs scale with HCTUNNEL_FUZZ_RUNS (a multiplier, default 1) for the vitest files.
 */
import * as fc from "fast-check"
import type { Action } from "../../src/core/actions.ts"
import type { AuthFailure, Side } from "../../src/core/events.ts"
import { defaultLimits, type Limits } from "../../src/core/limits.ts"
import { connectEstablished } from "../../src/core/responses.ts"
import {
  blocked,
  check,
  concat,
  connected,
  connectFailed,
  count,
  deliver,
  drained,
  ended,
  errored,
  expectBytes,
  expectEqual,
  firstStatus,
  Harness,
  latin1,
  normalize,
  received,
  segment,
  timeout,
} from "./support.ts"

export interface PropertySpec<T> {
  /** The invariant, as in docs/design.md §7. */
  readonly name: string
  readonly arbitrary: fc.Arbitrary<T>
  /** Throws when the property does not hold. */
  readonly predicate: (value: T) => void
  /** Runs in `npm test` (before the HCTUNNEL_FUZZ_RUNS multiplier). */
  readonly runs: number
}

const scale = (() => {
  const raw = typeof process !== "undefined" ? process.env["HCTUNNEL_FUZZ_RUNS"] : undefined
  const n = raw === undefined ? 1 : Number(raw)
  return Number.isFinite(n) && n > 0 ? n : 1
})()
export const runsFor = (spec: { readonly runs: number }): number => Math.max(1, Math.round(spec.runs * scale))

// -----------------------------------------------------------------------------------------------
// Arbitraries

/** Segment sizes: mostly small (byte-by-byte splits are where parsers break), sometimes large. */
export const cutsArb: fc.Arbitrary<number[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 64 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: 100_000 }),
    },
  ),
  { minLength: 1, maxLength: 12, size: "medium" },
)

const bytesArb = (maxLength: number) => fc.uint8Array({ maxLength, size: "max" })

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
const tchars = [...(alnum + "!#$%&'*+-.^_`|~")]
/** Field-value bytes: VCHAR, obs-text, SP, HTAB (leading/trailing whitespace is OWS and allowed). */
const valueChars = [
  ...Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)),
  ...Array.from({ length: 0x80 }, (_, i) => String.fromCharCode(0x80 + i)),
  " ",
  "\t",
]
const pchars = [...(alnum + "-._~!$&'()*+,;=:@%/")].filter((c) => c !== "%")

/** Names the proxy treats specially (framing, hop-by-hop, Host, Via): random fields avoid them. */
const reserved = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "proxy-connection",
  "keep-alive",
  "te",
  "trailer",
  "upgrade",
  "via",
  "proxy-authorization",
  "proxy-authenticate",
  // and the fields dropped from trailers (RFC 9110 §6.5.1), so that random trailers go through
  "max-forwards",
  "authorization",
  "www-authenticate",
  "cookie",
  "set-cookie",
  "cache-control",
  "pragma",
  "expect",
  "range",
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "if-range",
  "age",
  "expires",
  "date",
  "location",
  "retry-after",
  "vary",
  "content-type",
  "content-encoding",
  "content-range",
  "content-location",
])

export const fieldNameArb = fc
  .string({ unit: fc.constantFrom(...tchars), minLength: 1, maxLength: 12 })
  .filter((n) => !reserved.has(n.toLowerCase()))
export const fieldValueArb = fc.string({ unit: fc.constantFrom(...valueChars), maxLength: 24 }).map((v) => v.replace(/^[ \t]+/, ""))
export const fieldsArb = fc.array(fc.tuple(fieldNameArb, fieldValueArb), { maxLength: 6 })

const hostArb = fc.constantFrom("example.com", "a.test", "10.0.0.1", "[::1]", "WWW.Example.ORG")
const portArb = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })
const pathArb = fc.string({ unit: fc.constantFrom(...pchars), maxLength: 20 }).map((p) => "/" + p)
const queryArb = fc.option(fc.string({ unit: fc.constantFrom(...alnum, "=", "&"), maxLength: 10 }), { nil: undefined })

export type Body =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly data: Uint8Array }
  | {
      readonly kind: "chunked"
      readonly chunks: ReadonlyArray<Uint8Array>
      readonly upper: boolean
      readonly ext: boolean
      readonly trailers: ReadonlyArray<readonly [string, string]>
    }

const bodyArb: fc.Arbitrary<Body> = fc.oneof(
  fc.constant<Body>({ kind: "none" }),
  bytesArb(300).map((data): Body => ({ kind: "length", data })),
  fc
    .record({
      chunks: fc.array(fc.uint8Array({ minLength: 1, maxLength: 120 }), { maxLength: 4 }),
      upper: fc.boolean(),
      ext: fc.boolean(),
      trailers: fc.array(fc.tuple(fieldNameArb, fieldValueArb), { maxLength: 2 }),
    })
    .map((r): Body => ({ kind: "chunked", ...r })),
)

/**
 * A body as sent, and as the proxy forwards it (`sent`): chunk extensions are dropped (docs/design.md
 * §6.2); the random trailer names avoid the forbidden ones, so trailers go through.
 */
export const encodeBody = (body: Body, forwarded = false): { fields: string; bytes: Uint8Array } => {
  switch (body.kind) {
    case "none":
      return { fields: "", bytes: new Uint8Array(0) }
    case "length":
      return { fields: `Content-Length: ${body.data.length}\r\n`, bytes: body.data }
    case "chunked": {
      const parts: Uint8Array[] = []
      for (const c of body.chunks) {
        const size = c.length.toString(16)
        parts.push(latin1(`${body.upper ? size.toUpperCase() : size}${body.ext && !forwarded ? ";name=value" : ""}\r\n`), c, latin1("\r\n"))
      }
      parts.push(latin1(`0\r\n${body.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`))
      return { fields: "Transfer-Encoding: chunked\r\n", bytes: concat(parts) }
    }
  }
}

export interface Request {
  readonly method: "GET" | "POST" | "PUT" | "HEAD"
  readonly host: string
  readonly port: number | undefined
  readonly path: string
  readonly query: string | undefined
  readonly fields: ReadonlyArray<readonly [string, string]>
  readonly body: Body
  readonly version: "1.1" | "1.0"
}

export const requestArb: fc.Arbitrary<Request> = fc
  .record({
    method: fc.constantFrom("GET", "POST", "PUT", "HEAD"),
    host: hostArb,
    port: portArb,
    path: pathArb,
    query: queryArb,
    fields: fieldsArb,
    body: bodyArb,
    version: fc.constantFrom("1.1", "1.1", "1.1", "1.0"),
  })
  .map((r): Request => (r.version === "1.0" && r.body.kind === "chunked" ? { ...r, version: "1.1" } : r))

export const encodeRequest = (r: Request, extra = ""): { head: string; body: Uint8Array } => {
  const authority = r.port === undefined ? r.host : `${r.host}:${r.port}`
  const target = `http://${authority}${r.path}${r.query === undefined ? "" : "?" + r.query}`
  const body = encodeBody(r.body)
  const keepAlive = r.version === "1.0" ? "Connection: keep-alive\r\n" : ""
  const head =
    `${r.method} ${target} HTTP/${r.version}\r\nHost: ${authority}\r\n` +
    r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("") +
    body.fields +
    keepAlive +
    extra +
    "\r\n"
  return { head, body: body.bytes }
}

export interface Response {
  readonly interim: boolean
  readonly status: 200 | 204 | 404
  readonly fields: ReadonlyArray<readonly [string, string]>
  readonly body: Body
}

export const responseArb: fc.Arbitrary<Response> = fc.record({
  interim: fc.boolean(),
  status: fc.constantFrom(200, 204, 404),
  fields: fieldsArb,
  body: bodyArb,
})

export const encodeResponse = (r: Response, method: string): Uint8Array => {
  const interim = r.interim ? "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" : ""
  const noBody = r.status === 204 || method === "HEAD"
  const body = r.status === 204 ? { fields: "", bytes: new Uint8Array(0) } : encodeBody(r.body)
  // A body-less response still declares its framing (as a HEAD response would), but sends no bytes.
  const headText = `${interim}HTTP/1.1 ${r.status} X\r\n${r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}${body.fields || "Content-Length: 0\r\n"}\r\n`
  return concat([latin1(headText), noBody ? new Uint8Array(0) : body.bytes])
}

// -----------------------------------------------------------------------------------------------
// 1. Byte conservation in tunnels

const connectHead = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"

type TunnelOp = "client" | "origin" | "connect" | "blockClient" | "drainClient" | "blockOrigin" | "drainOrigin" | "clientEnd" | "originEnd"

export interface TunnelScenario {
  readonly clientBytes: Uint8Array
  readonly originBytes: Uint8Array
  readonly clientCuts: number[]
  readonly originCuts: number[]
  readonly ops: TunnelOp[]
  readonly clientEnds: boolean
  readonly originEnds: boolean
  readonly maxBufferedBytes: number
}

export const tunnelScenarioArb: fc.Arbitrary<TunnelScenario> = fc.record({
  clientBytes: bytesArb(2000),
  originBytes: bytesArb(2000),
  clientCuts: cutsArb,
  originCuts: cutsArb,
  ops: fc.array(
    fc.constantFrom<TunnelOp>(
      "client",
      "client",
      "origin",
      "origin",
      "connect",
      "blockClient",
      "drainClient",
      "blockOrigin",
      "drainOrigin",
      "clientEnd",
      "originEnd",
    ),
    { maxLength: 80, size: "max" },
  ),
  clientEnds: fc.boolean(),
  originEnds: fc.boolean(),
  maxBufferedBytes: fc.constantFrom(16, 256, defaultLimits.maxBufferedBytes),
})

export const byteConservation: PropertySpec<TunnelScenario> = {
  name: "byte conservation: a tunnel relays every byte, in order, both ways; half-close propagates; both ends close both sockets once",
  arbitrary: tunnelScenarioArb,
  runs: 200,
  predicate: (s) => {
    const h = new Harness({ maxBufferedBytes: s.maxBufferedBytes })
    const clientSegs = segment(concat([latin1(connectHead), s.clientBytes]), s.clientCuts)
    const originSegs = segment(s.originBytes, s.originCuts)
    let ci = 0
    let oi = 0
    const isBlocked: Record<Side, boolean> = { client: false, origin: false }
    const hasEnded: Record<Side, boolean> = { client: false, origin: false }
    const step = (op: TunnelOp): boolean => {
      const seg = op === "client" ? clientSegs[ci] : originSegs[oi]
      switch (op) {
        case "client":
          if (seg === undefined || h.paused.client) return false
          ci++
          h.client(seg)
          return true
        case "origin":
          if (seg === undefined || h.origin !== "open" || h.paused.origin) return false
          oi++
          h.fromOrigin(seg)
          return true
        case "connect":
          if (h.origin !== "connecting") return false
          deliver(h, connected)
          return true
        case "blockClient":
        case "blockOrigin": {
          const side: Side = op === "blockClient" ? "client" : "origin"
          if (isBlocked[side] || (side === "origin" && h.origin !== "open")) return false
          isBlocked[side] = true
          h.send(blocked(side))
          return true
        }
        case "drainClient":
        case "drainOrigin": {
          const side: Side = op === "drainClient" ? "client" : "origin"
          if (!isBlocked[side]) return false
          isBlocked[side] = false
          h.send(drained(side))
          return true
        }
        case "clientEnd":
          if (!s.clientEnds || hasEnded.client || ci < clientSegs.length) return false
          hasEnded.client = true
          h.send(ended("client"))
          return true
        case "originEnd":
          if (!s.originEnds || hasEnded.origin || oi < originSegs.length || h.origin !== "open") return false
          hasEnded.origin = true
          h.send(ended("origin"))
          return true
      }
    }
    for (const op of s.ops) {
      if (h.postman.closed) break
      step(op)
    }
    // Let the world run to completion: drains first, then connect, then the rest of the bytes, then the ends.
    const order: TunnelOp[] = ["drainClient", "drainOrigin", "connect", "client", "origin", "clientEnd", "originEnd"]
    for (let guard = 0; guard < 100_000 && !h.postman.closed; guard++) {
      if (!order.some(step)) break
    }
    expectEqual("connects", h.connects, [{ host: "example.com", port: 443 }])
    expectBytes("bytes written to the origin", concat(h.toOrigin[0] ?? []), s.clientBytes)
    expectBytes("bytes written to the client", concat(h.toClient), concat([connectEstablished, s.originBytes]))
    expectEqual("HalfClose(origin) count", h.halfClosed.origin, s.clientEnds ? 1 : 0)
    expectEqual("HalfClose(client) count", h.halfClosed.client, s.originEnds ? 1 : 0)
    const bothEnded = s.clientEnds && s.originEnds
    expectEqual("closed", h.postman.closed, bothEnded)
    expectEqual("Close(client) count", h.clientCloses, bothEnded ? 1 : 0)
    expectEqual(
      "Close(origin) count",
      count(h.actions, (a) => a._tag === "Close" && a.side === "origin"),
      bothEnded ? 1 : 0,
    )
    if (bothEnded) {
      const log = h.logs[0]
      check(h.logs.length === 1 && log !== undefined, "one Log for the tunnel")
      expectEqual(
        "log",
        [log?.kind, log?.status, log?.outcome, log?.bytesFromClient, log?.bytesFromOrigin],
        ["tunnel", 200, "ok", connectHead.length + s.clientBytes.length, s.originBytes.length],
      )
    }
  },
}

// -----------------------------------------------------------------------------------------------
// 2. Segmentation invariance

export interface Conversation {
  readonly exchanges: ReadonlyArray<{ readonly request: Request; readonly response: Response }>
  /** The last request carries `Connection: close`. */
  readonly closeLast: boolean
  /** The client half-closes after sending everything. */
  readonly clientEnds: boolean
}

/** A valid origin answers an HTTP/1.0 request without chunked coding (a chunked answer is a 502, row F21). */
const exchangeArb = fc
  .record({ request: requestArb, response: responseArb })
  .map(({ request, response }) =>
    request.version === "1.0" && response.body.kind === "chunked"
      ? { request, response: { ...response, body: { kind: "length" as const, data: concat([...response.body.chunks]) } } }
      : { request, response },
  )

export const conversationArb: fc.Arbitrary<Conversation> = fc.record({
  exchanges: fc.array(exchangeArb, { minLength: 1, maxLength: 3 }),
  closeLast: fc.boolean(),
  clientEnds: fc.boolean(),
})

export interface SplitConversation {
  readonly conversation: Conversation
  readonly clientCuts: number[]
  readonly originCuts: number[]
  /** Proxy authentication required: the runtime accepts every request's credentials at once. */
  readonly auth?: boolean
}

export const encodeConversation = (c: Conversation): { client: Uint8Array; responses: Uint8Array[] } => {
  const parts: Uint8Array[] = []
  c.exchanges.forEach(({ request }, i) => {
    const last = i === c.exchanges.length - 1
    const { head, body } = encodeRequest(request, last && c.closeLast ? "Connection: close\r\n" : "")
    parts.push(latin1(head), body)
  })
  return { client: concat(parts), responses: c.exchanges.map(({ request, response }) => encodeResponse(response, request.method)) }
}

/**
 * Play a conversation: the runtime connects at once, reads the client before the origin (so the origin
 * answers only complete requests), and the origin answers exchange i on the i-th connection.
 */
export const playConversation = (client: Uint8Array[], responses: Uint8Array[][], clientEnds: boolean, auth = false): Harness => {
  const h = new Harness({}, "hctunnel", auth)
  let ci = 0
  const oi = responses.map(() => 0)
  let endSent = false
  for (let guard = 0; guard < 100_000 && !h.postman.closed; guard++) {
    if (h.postman.state === "Authorizing") {
      h.send({ _tag: "Authenticated", user: "alice" })
      continue
    }
    if (h.origin === "connecting") {
      deliver(h, connected)
      continue
    }
    const seg = client[ci]
    if (seg !== undefined && !h.paused.client) {
      ci++
      h.client(seg)
      continue
    }
    if (seg === undefined && clientEnds && !endSent) {
      endSent = true
      h.send(ended("client"))
      continue
    }
    const x = h.connects.length - 1
    const own = responses[x]
    const next = own?.[oi[x] ?? 0]
    if (h.origin === "open" && !h.paused.origin && next !== undefined) {
      oi[x] = (oi[x] ?? 0) + 1
      h.fromOrigin(next)
      continue
    }
    break
  }
  return h
}

export const segmentationInvariance: PropertySpec<SplitConversation> = {
  name: "segmentation invariance: any split of the client's and origin's bytes gives the same actions (Writes concatenated)",
  arbitrary: fc.record({ conversation: conversationArb, clientCuts: cutsArb, originCuts: cutsArb, auth: fc.boolean() }),
  runs: 200,
  predicate: ({ conversation, clientCuts, originCuts, auth }) => {
    const { client, responses } = encodeConversation(conversation)
    const whole = playConversation(
      [client],
      responses.map((r) => [r]),
      conversation.clientEnds,
      auth,
    )
    const split = playConversation(
      segment(client, clientCuts),
      responses.map((r) => segment(r, originCuts)),
      conversation.clientEnds,
      auth,
    )
    expectEqual("Authenticate actions", split.authentications, whole.authentications)
    // Sanity: a valid conversation gets its first request through.
    check(whole.connects.length >= 1, `the unsplit conversation made no Connect: ${JSON.stringify(whole.clientText().slice(0, 200))}`)
    expectEqual("connects", split.connects, whole.connects)
    for (let i = 0; i < whole.toOrigin.length; i++)
      expectBytes(`bytes to origin #${i}`, concat(split.toOrigin[i] ?? []), concat(whole.toOrigin[i] ?? []))
    expectBytes("bytes to the client", concat(split.toClient), concat(whole.toClient))
    expectEqual(
      "statuses",
      split.logs.map((l) => l.status),
      whole.logs.map((l) => l.status),
    )
    expectEqual("actions", normalize(split.actions), normalize(whole.actions))
    // The request bodies reach the origin verbatim.
    conversation.exchanges.forEach(({ request }, i) => {
      if (i >= whole.toOrigin.length) return
      const body = encodeBody(request.body, true).bytes
      const sent = concat(whole.toOrigin[i] ?? [])
      expectBytes(`request body #${i}`, sent.subarray(sent.length - body.length), body)
    })
  },
}

// 2b. Segmentation invariance of an early refusal: a request line with an impossible byte is refused
// at that byte, with the same answer and the same byte count, however the bytes are split.

export interface ImpossibleLine {
  readonly request: Request
  /** Where in the request line (modulo its length) the impossible byte replaces the valid one. */
  readonly at: number
  readonly byte: number
  /** Bytes the client sends after it (never read: the connection is refused at the impossible byte). */
  readonly after: Uint8Array
  readonly cuts: number[]
}

/** Bytes that no request line can contain anywhere: controls but CR/LF, HTAB, DEL, and 0x16 (a TLS record). */
const impossibleBytes = [0x00, 0x01, 0x08, 0x09, 0x0b, 0x0c, 0x16, 0x1f, 0x7f]

export const impossibleLineArb: fc.Arbitrary<ImpossibleLine> = fc.record({
  request: requestArb,
  at: fc.nat(),
  byte: fc.constantFrom(...impossibleBytes),
  after: bytesArb(64),
  cuts: cutsArb,
})

export const impossibleByteRefusedAtOnce: PropertySpec<ImpossibleLine> = {
  name: "segmentation invariance of a refusal: an impossible request-line byte gets the same 400 at that byte, whatever the split",
  arbitrary: impossibleLineArb,
  runs: 200,
  predicate: ({ request, at, byte, after, cuts }) => {
    const { head, body } = encodeRequest(request)
    const lineLength = head.indexOf("\r\n")
    const bad = at % lineLength
    const bytes = concat([latin1(head), body, after])
    bytes[bad] = byte
    const play = (pieces: Uint8Array[]) => {
      const h = new Harness()
      let fed = 0
      let closedAt = -1
      for (const p of pieces) {
        h.client(p)
        fed += p.length
        if (h.postman.closed) {
          closedAt = fed
          break
        }
      }
      return { h, closedAt }
    }
    const whole = play([bytes])
    const split = play(segment(bytes, cuts))
    for (const { h } of [whole, split]) {
      expectEqual("status", firstStatus(h), 400)
      expectEqual("Connects", h.connects.length, 0)
      // The byte count is where the refusal happened, not how much happened to have arrived.
      expectEqual(
        "bytesFromClient",
        h.logs.map((l) => l.bytesFromClient),
        [bad + 1],
      )
    }
    // Refused in the piece that brought the impossible byte, not later.
    let start = 0
    for (const p of segment(bytes, cuts)) {
      if (start + p.length > bad) {
        expectEqual("refused in the piece with the impossible byte", split.closedAt, start + p.length)
        break
      }
      start += p.length
    }
    expectEqual("actions", normalize(split.h.actions), normalize(whole.h.actions))
  },
}

// -----------------------------------------------------------------------------------------------
// 6. Nothing malformed reaches an origin (with segmentation invariance of the rejection)

export type Defect =
  | "bare CR"
  | "NUL"
  | "obs-fold"
  | "space before colon"
  | "TE and CL"
  | "differing CL"
  | "HTTP/2.0"
  | "huge head"
  | "too many fields"
  | "long target"
  | "long target after an empty line"
  | "long method"
  | "long target in a huge head"
  | "TRACE"
  | "https target"
  | "origin-form"
  | "gzip, chunked"
  | "no Host"
  | "two Hosts"
  | "via loop"
  | "bad chunk size"
  | "empty chunk extension"
  | "unbalanced quote in a chunk extension"
  | "TLS ClientHello"
  | "control byte in the target"

/** The documented status for each defect (docs/design.md §6.1, §6.2, §6.6). */
export const defectStatus: Readonly<Record<Defect, number>> = {
  "bare CR": 400,
  NUL: 400,
  "obs-fold": 400,
  "space before colon": 400,
  "TE and CL": 400,
  "differing CL": 400,
  "HTTP/2.0": 505,
  "huge head": 431,
  "too many fields": 431,
  "long target": 414,
  "long target after an empty line": 414,
  // request-head.ts: over maxRequestLine is 414 only when the target made the line long, else 400.
  "long method": 400,
  "long target in a huge head": 414,
  TRACE: 405,
  "https target": 501,
  "origin-form": 400,
  "gzip, chunked": 501,
  "no Host": 400,
  "two Hosts": 400,
  "via loop": 508,
  "bad chunk size": 400,
  "empty chunk extension": 400,
  "unbalanced quote in a chunk extension": 400,
  "TLS ClientHello": 400,
  "control byte in the target": 400,
}

const defects = Object.keys(defectStatus) as Defect[]

export interface Malformed {
  readonly defect: Defect
  readonly fields: ReadonlyArray<readonly [string, string]>
  readonly at: number
  readonly cuts: number[]
}

const malformedLimits: Partial<Limits> = { maxHeadBytes: 4096, maxRequestLine: 1024, maxHeaders: 20 }

/** The client bytes of a request with one defect (heads otherwise valid). */
export const malformedRequest = (m: Malformed): string => {
  const fields = m.fields.map(([n, v]) => `${n}: ${v}\r\n`)
  const insert = (line: string) => {
    const at = m.at % (fields.length + 1)
    fields.splice(at, 0, line)
  }
  let requestLine = "POST http://example.com/x HTTP/1.1\r\n"
  let host = "Host: example.com\r\n"
  let framing = "Content-Length: 3\r\n"
  let body = "abc"
  switch (m.defect) {
    case "bare CR":
      insert("X-Bad: a\rb\r\n")
      break
    case "NUL":
      insert("X-Bad: a\0b\r\n")
      break
    case "obs-fold":
      insert("X-Folded: a\r\n  continued\r\n")
      break
    case "space before colon":
      insert("X-Bad : a\r\n")
      break
    case "TE and CL":
      framing = "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"
      body = "3\r\nabc\r\n0\r\n\r\n"
      break
    case "differing CL":
      framing = "Content-Length: 3\r\nContent-Length: 4\r\n"
      break
    case "HTTP/2.0":
      requestLine = "POST http://example.com/x HTTP/2.0\r\n"
      break
    case "huge head":
      for (let i = 0; i < 8; i++) insert(`X-Pad-${i}: ${"p".repeat(600)}\r\n`)
      break
    case "too many fields":
      for (let i = 0; i < 25; i++) insert(`X-Many-${i}: ${i}\r\n`)
      break
    case "long target":
      requestLine = `POST http://example.com/${"t".repeat(1100)} HTTP/1.1\r\n`
      break
    case "long target after an empty line":
      requestLine = `\r\nPOST http://example.com/${"t".repeat(1100)} HTTP/1.1\r\n`
      break
    case "long target in a huge head":
      requestLine = `POST http://example.com/${"t".repeat(5000)} HTTP/1.1\r\n`
      break
    case "long method":
      requestLine = `${"P".repeat(1100)} http://example.com/x HTTP/1.1\r\n`
      break
    case "TRACE":
      requestLine = "TRACE http://example.com/x HTTP/1.1\r\n"
      break
    case "https target":
      requestLine = "POST https://example.com/x HTTP/1.1\r\n"
      break
    case "origin-form":
      requestLine = "POST /x HTTP/1.1\r\n"
      break
    case "gzip, chunked":
      framing = "Transfer-Encoding: gzip, chunked\r\n"
      body = "3\r\nabc\r\n0\r\n\r\n"
      break
    case "no Host":
      host = ""
      break
    case "two Hosts":
      host = "Host: example.com\r\nHost: other.example\r\n"
      break
    case "via loop":
      insert("Via: 1.1 someone, 1.1 hctunnel\r\n")
      break
    case "bad chunk size":
      framing = "Transfer-Encoding: chunked\r\n"
      body = "3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n"
      break
    case "empty chunk extension":
      framing = "Transfer-Encoding: chunked\r\n"
      body = "3\r\nabc\r\n3;\r\nabc\r\n0\r\n\r\n"
      break
    case "unbalanced quote in a chunk extension":
      framing = "Transfer-Encoding: chunked\r\n"
      body = '3\r\nabc\r\n3;a="b\r\nabc\r\n0\r\n\r\n'
      break
    case "TLS ClientHello":
      return "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + fields.join("")
    case "control byte in the target":
      requestLine = "POST http://example.com/x\x7f HTTP/1.1\r\n"
      break
  }
  return requestLine + host + fields.join("") + framing + "\r\n" + body
}

export const malformedArb: fc.Arbitrary<Malformed> = fc.record({
  defect: fc.constantFrom(...defects),
  fields: fc.array(fc.tuple(fieldNameArb, fieldValueArb), { maxLength: 4 }),
  at: fc.nat(),
  cuts: cutsArb,
})

/** Feed a malformed request, split, to a fresh Postman; the runtime connects at once if asked. */
const playMalformed = (pieces: Uint8Array[]): Harness => {
  const h = new Harness(malformedLimits)
  for (const p of pieces) {
    if (h.postman.closed) break
    if (h.paused.client) break
    h.client(p)
    if (h.origin === "connecting") deliver(h, connected)
  }
  return h
}

export const nothingMalformedReachesOrigin: PropertySpec<Malformed> = {
  name: "nothing malformed reaches an origin: a defective request gets its documented status, whatever the split, and no Connect/Write(origin)",
  arbitrary: malformedArb,
  runs: 300,
  predicate: (m) => {
    const bytes = latin1(malformedRequest(m))
    const whole = playMalformed([bytes])
    const split = playMalformed(segment(bytes, m.cuts))
    // §7.2: the split changes nothing but how the Writes are cut, except the Log's bytesFromClient: a
    // head refused before its end (414, 431) counts the bytes received so far, and the chunk that
    // brought the refusal may carry more or fewer of them.
    expectEqual("actions", normalize(split.actions, { logBytesFromClient: false }), normalize(whole.actions, { logBytesFromClient: false }))
    for (const h of [whole, split]) {
      expectEqual("status", firstStatus(h), defectStatus[m.defect])
      check(h.postman.closed, "the connection is closed after an error response")
      if (m.defect === "bad chunk size" || m.defect === "empty chunk extension" || m.defect === "unbalanced quote in a chunk extension") {
        // The head is valid, so it goes out before the body is read (F3); the bad chunk never does.
        const sent = h.originText(0)
        const body = sent.slice(sent.indexOf("\r\n\r\n") + 4)
        check("3\r\nabc\r\n".startsWith(body), `the origin got more than the valid chunk: ${JSON.stringify(body)}`)
      } else {
        expectEqual("Connects", h.connects.length, 0)
        expectEqual(
          "Writes to the origin",
          count(h.actions, (a) => a._tag === "Write" && a.side === "origin"),
          0,
        )
      }
    }
  },
}

// -----------------------------------------------------------------------------------------------
// 3. Teardown (random event sequences, nonsense included)

export type Step =
  | { readonly kind: "client"; readonly bytes: Uint8Array; readonly advance: number }
  | { readonly kind: "origin"; readonly bytes: Uint8Array; readonly advance: number }
  | { readonly kind: "ended" | "errored" | "blocked" | "drained"; readonly side: Side; readonly advance: number }
  | { readonly kind: "connected" | "connectedReused" | "timeout" | "fire" | "shutdown" | "abort"; readonly advance: number }
  | {
      readonly kind: "connectFailed"
      readonly reason: "unresolved" | "refused" | "unreachable" | "timeout" | "error" | "denied"
      readonly advance: number
    }
  | { readonly kind: "authenticated"; readonly advance: number }
  | { readonly kind: "authFailed"; readonly reason: AuthFailure; readonly advance: number }
  /** What a well-behaved peer or runtime does next in the Postman's current state (see `goOn`); `pick` chooses among the options. */
  | { readonly kind: "next"; readonly pick: number; readonly advance: number }

const getHead = "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"
const upgradeHead = "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
const postHead = "POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n"
const chunkedHead = "POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"

const clientFragments = [
  connectHead,
  getHead,
  upgradeHead,
  postHead,
  chunkedHead,
  "5\r\nhello\r\n0\r\n\r\n",
  "hello",
  "GET http://exa",
  "\r\n",
  "GET /x HTTP/1.1\r\n\r\n",
  "zz\r\n",
]
const originFragments = [
  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  "HTTP/1.1 200 OK\r\n\r\nuntil close",
  "HTTP/1.1 100 Continue\r\n\r\n",
  "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
  "HTTP/1.1 204 No Content\r\n\r\n",
  "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
  "HTTP/1.1 2",
  "garbage\r\n\r\n",
  "abc",
]

/** Whole, valid requests: what a client sends next in AwaitingHead. Tunnels, keep-alive, bodies, upgrades, pipelining. */
const validRequests = [
  connectHead,
  connectHead + "early tunnel bytes",
  "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
  getHead,
  getHead,
  upgradeHead,
  upgradeHead,
  postHead + "hello",
  postHead,
  chunkedHead + "5\r\nhello\r\n0\r\n\r\n",
  "GET http://example.com/ HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n",
  "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
  getHead + getHead,
]
/** Whole responses that end an exchange and keep the connection (back to AwaitingHead). */
const completeResponses = [
  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  "HTTP/1.1 204 No Content\r\n\r\n",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
]
const switchingProtocols = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"

/** Was the origin connection in use handed over from the pool (its Connected said `reused`)? */
const reusedConnection = (h: Harness): boolean => {
  for (let i = h.script.length - 1; i >= 0; i--) {
    const what = h.script[i]!.what
    if (typeof what !== "string" && what._tag === "Connected") return what.reused === true
  }
  return false
}

/**
 * The event a well-behaved peer or runtime delivers next in the Postman's state: a whole valid request in
 * AwaitingHead, mostly a grant in Authorizing, the connection (sometimes a pooled one, the way to a retry) in
 * Connecting, a response that ends the exchange (or switches protocols after an upgrade request) or the rest
 * of the request body in Forwarding, bytes either way in Tunnel. Random sequences of events alone rarely get
 * past a valid head; these steps take a sequence into every state and round the keep-alive loop.
 */
const goOn = (h: Harness, pick: number): Step => {
  const advance = 0
  switch (h.postman.state) {
    case "AwaitingHead":
      return { kind: "client", bytes: latin1(validRequests[pick % validRequests.length]!), advance }
    case "Authorizing":
      return pick % 5 === 0
        ? { kind: "authFailed", reason: pick % 2 === 0 ? "invalid" : "unavailable", advance }
        : { kind: "authenticated", advance }
    case "Connecting":
      if (h.origin === "connecting") return { kind: pick % 3 === 0 ? "connectedReused" : "connected", advance }
      return { kind: "fire", advance }
    case "Forwarding": {
      if (h.origin === "connecting") return { kind: pick % 3 === 0 ? "connectedReused" : "connected", advance }
      if (h.origin !== "open") return { kind: "fire", advance }
      if (pick % 4 === 0 && !h.paused.client)
        return { kind: "client", bytes: latin1(pick % 8 === 0 ? "hello" : "5\r\nhello\r\n0\r\n\r\n"), advance }
      // A pooled connection the origin had already closed: it ends before answering, and the request is retried.
      if (pick % 4 === 1 && reusedConnection(h) && h.origins.length < 3)
        return { kind: pick % 8 === 1 ? "ended" : "errored", side: "origin", advance }
      const upgrade = /^Upgrade: websocket/im.test(h.originText())
      const response = upgrade && pick % 4 !== 2 ? switchingProtocols : completeResponses[pick % completeResponses.length]!
      return { kind: "origin", bytes: latin1(response), advance }
    }
    case "Tunnel":
      return pick % 2 === 0 || h.origin !== "open"
        ? { kind: "client", bytes: latin1("tunnel bytes"), advance }
        : { kind: "origin", bytes: latin1("tunnel bytes"), advance }
    case "Closed":
      return { kind: "client", bytes: latin1("late"), advance }
  }
}

const sideArb = fc.constantFrom<Side>("client", "origin")
const advanceArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 5_000 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 400_000 }),
  },
)
const payloadArb = (fragments: string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...fragments).map(latin1) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }) },
  )

/** One of the arbitrary events or calls, each of the table's 17 triggers about as likely as the others. */
const triggerStepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("client" as const), bytes: payloadArb(clientFragments), advance: advanceArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("origin" as const), bytes: payloadArb(originFragments), advance: advanceArb }) },
  // Connected, fresh or from the pool (a pooled connection makes the retry of rows F18, F19 reachable).
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("connected" as const, "connectedReused" as const), advance: advanceArb }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constantFrom("ended" as const, "errored" as const, "blocked" as const, "drained" as const),
      side: sideArb,
      advance: advanceArb,
    }),
  },
  // A Timeout early (nothing due yet) or when the armed deadline fires.
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("timeout" as const, "fire" as const), advance: advanceArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("shutdown" as const), advance: advanceArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("abort" as const), advance: advanceArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("connectFailed" as const),
      reason: fc.constantFrom(
        "unresolved" as const,
        "refused" as const,
        "unreachable" as const,
        "timeout" as const,
        "error" as const,
        "denied" as const,
      ),
      advance: advanceArb,
    }),
  },
  // The runtime's verdicts on proxy credentials: nonsense unless a Postman requiring authentication asked.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("authenticated" as const), advance: advanceArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("authFailed" as const),
      reason: fc.constantFrom<AuthFailure>("missing", "invalid", "rate-limited", "unavailable"),
      advance: advanceArb,
    }),
  },
)

/** A step: an arbitrary event or call, or (as often) what a well-behaved peer does next (`goOn`). */
export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 17, arbitrary: triggerStepArb },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant("next" as const), pick: fc.nat(), advance: advanceArb }) },
)

/** Deliver one step to the harness (the harness checks its socket invariants after every call). */
export const playStep = (h: Harness, s: Step): ReadonlyArray<Action> => {
  h.now += s.advance
  switch (s.kind) {
    case "next":
      return playStep(h, goOn(h, s.pick))
    case "client":
    case "origin":
      return deliver(h, received(s.kind, s.bytes))
    case "ended":
      return deliver(h, ended(s.side))
    case "errored":
      return deliver(h, errored(s.side))
    case "blocked":
      return deliver(h, blocked(s.side))
    case "drained":
      return deliver(h, drained(s.side))
    case "connected":
      return deliver(h, connected)
    case "connectedReused":
      return deliver(h, { _tag: "Connected", reused: true })
    case "connectFailed":
      return deliver(h, connectFailed(s.reason))
    case "authenticated":
      return deliver(h, { _tag: "Authenticated", user: "alice" })
    case "authFailed":
      return deliver(h, { _tag: "AuthenticationFailed", reason: s.reason, message: s.reason })
    case "timeout":
      return deliver(h, timeout)
    case "fire":
      return h.postman.closed ? deliver(h, timeout) : h.fireDeadline()
    case "shutdown":
      return h.shutdown()
    case "abort":
      return h.abort()
  }
}

const checkLive = (h: Harness): void => {
  if (h.postman.closed) {
    expectEqual("Close(client) count", h.clientCloses, 1)
    check(
      h.origins.every((o) => o === "closed"),
      `closed with an origin socket ${h.origins.join(",")}`,
    )
  } else {
    expectEqual("Close(client) count", h.clientCloses, 0)
    expectEqual("the Postman's deadline is the one last asked for", h.postman.deadline, h.deadline)
  }
}

export const teardown: PropertySpec<Step[]> = {
  name: "teardown: any event sequence keeps the socket invariants, and abort() ends with every socket closed once",
  arbitrary: fc.array(stepArb, { maxLength: 40, size: "max" }),
  runs: 3000,
  predicate: (steps) => playTeardown(steps, false),
}

/** The same with proxy authentication required: Authorizing between the head and the Connect. */
export const teardownWithAuth: PropertySpec<Step[]> = {
  name: "teardown with proxy authentication required: any event sequence keeps the socket invariants, and abort() ends with every socket closed once",
  arbitrary: fc.array(stepArb, { maxLength: 40, size: "max" }),
  runs: 4000,
  predicate: (steps) => playTeardown(steps, true),
}

const stepsAfterClosed = 3

function playTeardown(steps: Step[], auth: boolean): void {
  const h = new Harness({ maxBufferedBytes: 64 }, "hctunnel", auth)
  // Origin sockets the runtime released itself: a ConnectFailed answering a pending Connect.
  let failedConnects = 0
  let afterClosed = 0
  for (const s of steps) {
    // A few events after Closed check that nothing is emitted any more (row X1); more would prove nothing new.
    if (h.postman.closed && afterClosed++ === stepsAfterClosed) break
    const before = h.actions.length
    const wasClosed = h.postman.closed
    if (s.kind === "connectFailed" && h.origin === "connecting") failedConnects++
    playStep(h, s)
    if (wasClosed) expectEqual("actions after Closed", h.actions.length, before)
    checkLive(h)
  }
  h.abort()
  check(h.postman.closed, "abort() closes")
  checkLive(h)
  // Every Connect's socket is released exactly once: by the runtime's ConnectFailed, or by the core's
  // Close(origin) (an errored socket too, §7.3). Counted from the events and the actions, not from the
  // harness's socket list, which records every Connect as a socket by construction.
  const originCloses = count(h.actions, (a) => a._tag === "Close" && a.side === "origin")
  const connects = count(h.actions, (a) => a._tag === "Connect")
  expectEqual("Connects answered by ConnectFailed or Close(origin)", failedConnects + originCloses, connects)
}

// -----------------------------------------------------------------------------------------------
// 4. Bounded buffers

export interface Flood {
  readonly kind: "pipeline" | "connecting" | "responseHead"
  readonly connect: boolean
  readonly chunkSizes: number[]
  readonly maxHeadBytes: number
  readonly maxBufferedBytes: number
}

export const floodArb: fc.Arbitrary<Flood> = fc.record({
  kind: fc.constantFrom("pipeline" as const, "connecting" as const, "responseHead" as const),
  connect: fc.boolean(),
  chunkSizes: fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 8 }),
  maxHeadBytes: fc.constantFrom(512, 2048, 8192),
  maxBufferedBytes: fc.constantFrom(64, 1024, 4096, 20_000),
})

export const boundedBuffers: PropertySpec<Flood> = {
  name: "bounded buffers: bufferedBytes <= maxHeadBytes + maxBufferedBytes + largest chunk, and the client is paused past maxBufferedBytes",
  arbitrary: floodArb,
  runs: 150,
  predicate: (f) => {
    const h = new Harness({
      maxHeadBytes: f.maxHeadBytes,
      maxBufferedBytes: f.maxBufferedBytes,
      maxRequestLine: Math.min(8192, f.maxHeadBytes),
    })
    const request = "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"
    // An endless stream: a CONNECT then opaque bytes, or a pipeline of GETs, or an endless response head.
    const repeats = Math.ceil((3 * (f.maxHeadBytes + f.maxBufferedBytes)) / request.length)
    const clientStream = latin1((f.kind === "connecting" ? connectHead + "x".repeat(200) : "") + request.repeat(repeats))
    const originStream = latin1("HTTP/1.1 200 OK\r\n" + "X-Long: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(400))
    let largest = 0
    let fed = 0
    const bound = () => f.maxHeadBytes + f.maxBufferedBytes + largest
    const checkBound = () => {
      check(h.postman.bufferedBytes <= bound(), `bufferedBytes ${h.postman.bufferedBytes} > ${bound()} in ${h.postman.state}`)
      const state = h.postman.state
      if (
        (state === "Connecting" || state === "Forwarding") &&
        f.kind !== "responseHead" &&
        h.postman.bufferedBytes >= f.maxBufferedBytes
      ) {
        check(h.paused.client, `${h.postman.bufferedBytes} bytes queued in ${state} and the client is not paused`)
      }
    }
    const pieces = segment(f.kind === "responseHead" ? originStream : clientStream, f.chunkSizes)
    if (f.kind === "responseHead") {
      h.client(request)
      deliver(h, connected)
    }
    for (const piece of pieces) {
      if (h.postman.closed) break
      if (f.kind === "responseHead") {
        largest = Math.max(largest, piece.length)
        h.fromOrigin(piece)
      } else {
        if (h.paused.client) break // the runtime stops reading a paused client
        largest = Math.max(largest, piece.length)
        fed += piece.length
        h.client(piece)
        if (f.connect && f.kind === "pipeline" && h.origin === "connecting") deliver(h, connected)
      }
      checkBound()
    }
    if (f.kind === "responseHead") {
      expectEqual("an endless response head is a 502", firstStatus(h), 502)
    } else {
      // The origin never answers, so the client must have been paused long before the stream ran out.
      check(h.paused.client, `the client was never paused after ${fed} bytes (${h.postman.state}, ${h.postman.bufferedBytes} buffered)`)
    }
  },
}

// -----------------------------------------------------------------------------------------------
// 5. Deadlines

export const deadlines: PropertySpec<Step[]> = {
  name: "deadlines: a live Postman always has a future deadline (punctual timer), and firing it ends an idle connection within 3 firings",
  arbitrary: fc.array(
    stepArb.filter((s) => s.kind !== "timeout" && s.kind !== "fire" && s.kind !== "abort"),
    { maxLength: 30, size: "max" },
  ),
  runs: 1000,
  predicate: (steps) => {
    const h = new Harness()
    const afterCall = (what: string) => {
      if (h.postman.closed) return
      check(
        h.postman.deadline === h.deadline,
        `${what}: the Postman's deadline ${h.postman.deadline} is not the one it asked for (${h.deadline})`,
      )
      check(h.deadline > h.now, `${what}: deadline ${h.deadline} is not after now ${h.now} (state ${h.postman.state})`)
    }
    afterCall("start")
    for (const s of steps) {
      if (h.postman.closed) break
      // A punctual timer: when the clock passes the deadline, the Timeout comes first.
      const target = h.now + s.advance
      while (!h.postman.closed && h.deadline >= 0 && h.deadline <= target) {
        h.fireDeadline()
        afterCall("Timeout")
      }
      if (h.postman.closed) break
      h.now = target
      playStep(h, { ...s, advance: 0 })
      afterCall(s.kind)
    }
    let firings = 0
    while (!h.postman.closed && firings < 10) {
      h.fireDeadline()
      firings++
      afterCall("Timeout")
    }
    check(h.postman.closed, `still open after ${firings} firings (${h.postman.state})`)
    check(firings <= 3, `it took ${firings} firings to close an idle connection`)
  },
}

// -----------------------------------------------------------------------------------------------
// 7. Model-based: a tunnel against a reference model

export interface TunnelModel {
  closed: boolean
  clientEnded: boolean
  originEnded: boolean
  originOpen: boolean
  clientBlocked: boolean
  originBlocked: boolean
  /** Bytes the client and the origin should have received so far. */
  toClient: number
  toOrigin: number
  fromClient: number
  fromOrigin: number
  lastActivity: number
  deadline: number
}

export interface TunnelReal {
  readonly h: Harness
}

const idleTimeout = defaultLimits.idleTimeout

const tags = (actions: ReadonlyArray<Action>) =>
  actions.map((a) =>
    a._tag === "Write" || a._tag === "HalfClose" || a._tag === "PauseReading" || a._tag === "ResumeReading" || a._tag === "Close"
      ? `${a._tag}(${a.side})`
      : a._tag,
  )

const expectActions = (what: string, actions: ReadonlyArray<Action>, expected: string[]) => expectEqual(what, tags(actions), expected)

/** The end of a tunnel: Log, Close(origin) if it is still open, Close(client). */
const closeTunnel = (m: TunnelModel, closeOrigin: boolean): string[] => {
  m.closed = true
  const out = ["Log"]
  if (closeOrigin && m.originOpen) out.push("Close(origin)")
  m.originOpen = false
  out.push("Close(client)")
  return out
}

type TunnelCommand = fc.Command<TunnelModel, TunnelReal>

class Sends implements TunnelCommand {
  readonly side: Side
  readonly bytes: Uint8Array
  readonly advance: number
  constructor(side: Side, bytes: Uint8Array, advance: number) {
    this.side = side
    this.bytes = bytes
    this.advance = advance
  }
  check(m: Readonly<TunnelModel>) {
    // A paused side is not read; an ended side sends nothing more.
    return this.side === "client" ? !m.clientEnded && !m.originBlocked : m.originOpen && !m.originEnded && !m.clientBlocked
  }
  run(m: TunnelModel, r: TunnelReal) {
    const actions = r.h.send(received(this.side, this.bytes), this.advance)
    if (m.closed) return expectActions(this.toString(), actions, [])
    m.lastActivity = r.h.now
    if (this.side === "client") {
      m.fromClient += this.bytes.length
      m.toOrigin += this.bytes.length
    } else {
      m.fromOrigin += this.bytes.length
      m.toClient += this.bytes.length
    }
    expectActions(this.toString(), actions, [`Write(${this.side === "client" ? "origin" : "client"})`])
    expectBytes(this.toString(), (actions[0] as Extract<Action, { _tag: "Write" }>).bytes, this.bytes)
  }
  toString() {
    return `${this.side === "client" ? "ClientSends" : "OriginSends"}(${this.bytes.length} bytes, +${this.advance}ms)`
  }
}

class Ends implements TunnelCommand {
  readonly side: Side
  constructor(side: Side) {
    this.side = side
  }
  check(m: Readonly<TunnelModel>) {
    return this.side === "client" ? !m.clientEnded : m.originOpen && !m.originEnded
  }
  run(m: TunnelModel, r: TunnelReal) {
    const actions = r.h.send(ended(this.side))
    if (m.closed) return expectActions(this.toString(), actions, [])
    const expected = [`HalfClose(${this.side === "client" ? "origin" : "client"})`]
    if (this.side === "client") m.clientEnded = true
    else m.originEnded = true
    if (m.clientEnded && m.originEnded) expected.push(...closeTunnel(m, true))
    expectActions(this.toString(), actions, expected)
  }
  toString() {
    return `${this.side === "client" ? "Client" : "Origin"}Ends`
  }
}

class Errors implements TunnelCommand {
  readonly side: Side
  constructor(side: Side) {
    this.side = side
  }
  check(m: Readonly<TunnelModel>) {
    return this.side === "client" || m.originOpen
  }
  run(m: TunnelModel, r: TunnelReal) {
    const actions = deliver(r.h, errored(this.side))
    if (m.closed) return expectActions(this.toString(), actions, [])
    // An errored origin socket is still released by its one Close(origin) (§7.3, row T6).
    expectActions(this.toString(), actions, closeTunnel(m, true))
    expectEqual("log outcome", r.h.logs.at(-1)?.outcome, "aborted")
  }
  toString() {
    return `${this.side === "client" ? "Client" : "Origin"}Errors`
  }
}

class Blocks implements TunnelCommand {
  readonly side: Side
  readonly block: boolean
  constructor(side: Side, block: boolean) {
    this.side = side
    this.block = block
  }
  check(m: Readonly<TunnelModel>) {
    return this.side === "client" || m.originOpen
  }
  run(m: TunnelModel, r: TunnelReal) {
    const actions = r.h.send(this.block ? blocked(this.side) : drained(this.side))
    if (m.closed) return expectActions(this.toString(), actions, [])
    const key = this.side === "client" ? "clientBlocked" : "originBlocked"
    const other = this.side === "client" ? "origin" : "client"
    const was = m[key]
    m[key] = this.block
    // Reading from the other side pauses while this side's buffer is full (T9-T12); repeats are no-ops.
    const expected = was === this.block ? [] : [`${this.block ? "PauseReading" : "ResumeReading"}(${other})`]
    expectActions(this.toString(), actions, expected)
  }
  toString() {
    return `${this.block ? "Blocked" : "Drained"}(${this.side})`
  }
}

class Tick implements TunnelCommand {
  readonly advance: number
  constructor(advance: number) {
    this.advance = advance
  }
  check() {
    return true
  }
  run(m: TunnelModel, r: TunnelReal) {
    if (m.closed) return expectActions(this.toString(), r.h.send(timeout, this.advance), [])
    r.h.now += this.advance
    if (r.h.now < m.deadline) return // the timer has not fired yet
    const actions = r.h.fireDeadline()
    if (r.h.now >= m.lastActivity + idleTimeout) {
      expectActions(this.toString(), actions, closeTunnel(m, true))
      expectEqual("log outcome", r.h.logs.at(-1)?.outcome, "timeout")
    } else {
      m.deadline = m.lastActivity + idleTimeout
      expectActions(this.toString(), actions, ["SetDeadline"])
      expectEqual("new deadline", r.h.deadline, m.deadline)
    }
  }
  toString() {
    return `Tick(+${this.advance}ms)`
  }
}

export const tunnelCommandsArb = fc.commands<TunnelModel, TunnelReal>(
  [
    fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 0, max: 200_000 }))
      .map(([b, t]) => new Sends("client", b, t)),
    fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 0, max: 200_000 }))
      .map(([b, t]) => new Sends("origin", b, t)),
    sideArb.map((s) => new Ends(s)),
    sideArb.map((s) => new Errors(s)),
    fc.tuple(sideArb, fc.boolean()).map(([s, b]) => new Blocks(s, b)),
    fc.integer({ min: 0, max: 400_000 }).map((t) => new Tick(t)),
  ],
  { maxCommands: 40, size: "max" },
)

export const tunnelModel: PropertySpec<Iterable<fc.Command<TunnelModel, TunnelReal>>> = {
  name: "model: a tunnel behaves like the reference model (relay, half-close, backpressure, idle timeout, errors) and keeps the socket invariants",
  arbitrary: tunnelCommandsArb,
  runs: 500,
  predicate: (commands) => {
    const setup = () => {
      const h = new Harness()
      h.client(connectHead)
      deliver(h, connected)
      check(h.postman.state === "Tunnel", "setup reaches Tunnel")
      const model: TunnelModel = {
        closed: false,
        clientEnded: false,
        originEnded: false,
        originOpen: true,
        clientBlocked: false,
        originBlocked: false,
        toClient: 0,
        toOrigin: 0,
        fromClient: connectHead.length,
        fromOrigin: 0,
        lastActivity: 0,
        deadline: h.deadline,
      }
      return { model, real: { h } }
    }
    let final: { model: TunnelModel; real: TunnelReal } | undefined
    fc.modelRun(() => (final = setup()), commands)
    if (final === undefined) return
    const { model, real } = final
    const h = real.h
    expectEqual("bytes to the origin", concat(h.toOrigin[0] ?? []).length, model.toOrigin)
    expectEqual("bytes to the client", concat(h.toClient).length, connectEstablished.length + model.toClient)
    expectEqual("closed", h.postman.closed, model.closed)
    if (model.closed) {
      const log = h.logs.at(-1)
      expectEqual("log bytes", [log?.bytesFromClient, log?.bytesFromOrigin], [model.fromClient, model.fromOrigin])
    }
    // Pause/resume pairing (§7.7): paused exactly while the other side is blocked.
    if (!model.closed) {
      expectEqual("client paused", h.paused.client, model.originBlocked)
      expectEqual("origin paused", h.paused.origin, model.clientBlocked && model.originOpen)
    }
  },
}

/** Every property, for fuzz.ts. */
// biome-ignore lint/suspicious/noExplicitAny: the properties have different input types; each is run with its own arbitrary
export const allProperties: ReadonlyArray<PropertySpec<any>> = [
  byteConservation,
  segmentationInvariance,
  impossibleByteRefusedAtOnce,
  teardown,
  teardownWithAuth,
  boundedBuffers,
  deadlines,
  nothingMalformedReachesOrigin,
  tunnelModel,
]
