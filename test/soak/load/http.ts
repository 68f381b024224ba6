/**
 * Plain HTTP through the proxy on kept-alive connections: each session opens one client connection and
 * runs a seeded series of exchanges on it, all checked byte for byte:
 *   GET with a Content-Length or chunked body (with trailers: the allowed one must arrive exactly, the
 *   forbidden one must not), HEAD (a Content-Length and no body), 204, 304 (with a Content-Length and no
 *   body), POST with a Content-Length or chunked body and trailers (the origin checks every byte),
 *   `Expect: 100-continue` (the body waits for the 100), an origin that stops reading for a while
 *   (backpressure through the proxy), and pipelined batches (several requests in one write, answers in order).
 * The origin connections behind it are pooled by the proxy, so HEAD/204/304 framing mistakes would show up
 * as garbage in a later exchange of some session.
 */
import { ETAG, FORBIDDEN_REQUEST_TRAILER, TRAILER_SUM } from "../origins/good.ts"
import { Corrupted, Unexpected } from "../report/Ledger.ts"
import { LONG_LENGTHS, LONG_OFFSETS, POOL_SIZE, type Rng } from "../rng.ts"
import { chunkedBody, field, type Fields, head, responseFraming, writeAll } from "../wire/http1.ts"
import { Conn, type Env, expectBody, expectError, lost } from "./Client.ts"

type Exchange =
  | { kind: "get"; o: number; n: number; chunked: boolean; trailers: boolean }
  | { kind: "head"; o: number; n: number }
  | { kind: "nocontent" }
  | { kind: "cond"; match: boolean }
  | { kind: "post"; o: number; n: number; chunked: boolean; expect100: boolean; stallMs: number }

const smallSize = (rng: Rng): number =>
  rng.weighted([
    [3, rng.int(0, 512)],
    [4, rng.int(513, 64 * 1024)],
    [2, rng.int(64 * 1024, 1024 * 1024)],
  ] as const)

const pickExchange = (rng: Rng): Exchange => {
  const o = rng.int(0, POOL_SIZE - 1)
  return rng.weighted<() => Exchange>([
    [30, () => ({ kind: "get", o, n: smallSize(rng), chunked: rng.chance(0.5), trailers: rng.chance(0.5) })],
    [
      4,
      () => ({ kind: "get", o: rng.pick(LONG_OFFSETS), n: rng.pick(LONG_LENGTHS.slice(0, 3)), chunked: rng.chance(0.5), trailers: true }),
    ],
    [8, () => ({ kind: "head", o, n: smallSize(rng) })],
    [6, () => ({ kind: "nocontent" })],
    [6, () => ({ kind: "cond", match: rng.chance(0.7) })],
    [20, () => ({ kind: "post", o, n: smallSize(rng), chunked: rng.chance(0.5), expect100: rng.chance(0.25), stallMs: 0 })],
    [2, () => ({ kind: "post", o, n: rng.int(1, 4) * 1024 * 1024, chunked: rng.chance(0.5), expect100: false, stallMs: 1500 })],
  ])()
}

const targetOf = (env: Env, x: Exchange): string => {
  const base = `http://127.0.0.1:${env.ports.good}`
  switch (x.kind) {
    case "get":
      return `${base}/data?o=${x.o}&n=${x.n}&te=${x.chunked ? "ch" : "cl"}&tr=${x.trailers ? 1 : 0}`
    case "head":
      return `${base}/data?o=${x.o}&n=${x.n}&te=cl`
    case "nocontent":
      return `${base}/nocontent`
    case "cond":
      return `${base}/cond`
    case "post":
      return `${base}/up?o=${x.o}&n=${x.n}&stall=${x.stallMs}`
  }
}

const requestHead = (env: Env, x: Exchange, close: boolean): Buffer => {
  const fields: Array<readonly [string, string]> = [
    ["Host", `127.0.0.1:${env.ports.good}`],
    ["Proxy-Authorization", env.alice],
  ]
  if (x.kind === "cond" && x.match) fields.push(["If-None-Match", ETAG])
  if (x.kind === "post") {
    fields.push(x.chunked ? ["Transfer-Encoding", "chunked"] : ["Content-Length", String(x.n)])
    if (x.chunked) fields.push(["Trailer", TRAILER_SUM])
    if (x.expect100) fields.push(["Expect", "100-continue"])
  }
  if (close) fields.push(["Connection", "close"])
  const method = x.kind === "head" ? "HEAD" : x.kind === "post" ? "POST" : "GET"
  return head(`${method} ${targetOf(env, x)} HTTP/1.1`, fields)
}

function* requestBody(env: Env, x: Exchange & { kind: "post" }, rng: Rng): Generator<Buffer> {
  if (x.chunked) yield* chunkedBody(env.pool, x.o, x.n, rng, [[TRAILER_SUM, env.pool.sha256(x.o, x.n)], FORBIDDEN_REQUEST_TRAILER])
  else yield* env.pool.slices(x.o, x.n)
}

/** Reads and checks the answer to `x` (its request fully sent). */
const expectAnswer = async (env: Env, c: Conn, x: Exchange, close: boolean, interimSeen = false): Promise<void> => {
  const { interim, head: h } = await c.finalHead()
  for (const i of interim) {
    if (!(x.kind === "post" && x.expect100 && i.status === 100)) throw new Unexpected(`interim ${i.status} on a ${x.kind}`)
    c.checkVia(i)
  }
  if (x.kind === "post" && x.expect100 && !interimSeen && interim.length === 0) throw new Unexpected("no 100 Continue before the answer")
  c.checkVia(h)
  const wantStatus = x.kind === "nocontent" ? 204 : x.kind === "cond" && x.match ? 304 : 200
  if (h.status !== wantStatus) {
    if (h.status >= 400) await expectError(c, h.status, "", h).catch(() => {})
    throw new Unexpected(`${x.kind}: status ${h.status} ${h.reason}, expected ${wantStatus}`)
  }
  const conn = field(h.fields, "connection")
  if (close && conn !== "close") throw new Unexpected(`${x.kind}: no Connection: close when the client asked to close`)
  if (!close && conn !== undefined) throw new Unexpected(`${x.kind}: Connection: ${conn} on a kept-alive exchange`)
  const framing = responseFraming(x.kind === "head" ? "HEAD" : "GET", h)
  switch (x.kind) {
    case "get": {
      const te = field(h.fields, "transfer-encoding")
      const cl = field(h.fields, "content-length")
      if (x.chunked ? te !== "chunked" || cl !== undefined : cl !== String(x.n) || te !== undefined)
        throw new Unexpected(`GET framing changed: Transfer-Encoding ${te}, Content-Length ${cl}`)
      const trailers = await expectBody(c, env, framing, x.o, x.n)
      const want: Fields = x.chunked && x.trailers ? [[TRAILER_SUM, env.pool.sha256(x.o, x.n)]] : []
      if (JSON.stringify(trailers) !== JSON.stringify(want))
        throw new Unexpected(`trailers ${JSON.stringify(trailers)}, expected ${JSON.stringify(want)}`)
      break
    }
    case "head":
      if (field(h.fields, "content-length") !== String(x.n))
        throw new Unexpected(`HEAD Content-Length ${field(h.fields, "content-length")}`)
      break
    case "nocontent":
      if (field(h.fields, "x-soak") !== "204") throw new Unexpected("204 without its field")
      break
    case "cond":
      if (x.match && field(h.fields, "content-length") !== "1234") throw new Unexpected("304 lost its Content-Length")
      if (!x.match) {
        const body = await c.r.exact(Number(field(h.fields, "content-length"))).catch(lost)
        if (body.toString() !== "the conditional body\n") throw new Corrupted(`conditional body ${JSON.stringify(body.toString())}`)
      }
      break
    case "post": {
      const body = await c.r.exact(Number(field(h.fields, "content-length"))).catch(lost)
      const text = body.toString()
      if (text === `ok ${x.n}\n`) env.ledger.bytesVerified += x.n
      else if (text.startsWith("bad trailers")) throw new Unexpected(`the origin saw ${text.trim()}`)
      else if (text.startsWith("bad"))
        throw new Corrupted(`the origin saw ${text.trim()} of a ${x.n}-byte ${x.chunked ? "chunked" : "sized"} body`)
      else throw new Corrupted(`POST answer ${JSON.stringify(text.slice(0, 80))}`)
      break
    }
  }
  env.ledger.requests++
}

/** One exchange: the request (body after the 100 when asked), then the checked answer. */
const exchange = async (env: Env, c: Conn, x: Exchange, close: boolean, rng: Rng): Promise<void> => {
  env.stage.now = `${x.kind} ${targetOf(env, x)}${x.kind === "post" ? ` (${x.chunked ? "chunked" : "sized"}${x.expect100 ? ", 100-continue" : ""})` : ""}`
  c.write(requestHead(env, x, close))
  if (x.kind === "post") {
    let interimSeen = false
    if (x.expect100) {
      const h = await c.head()
      if (h.status !== 100) throw new Unexpected(`expected 100 Continue, got ${h.status}`)
      c.checkVia(h)
      interimSeen = true
    }
    await writeAll(c.socket, requestBody(env, x, rng), x.n > 1024 * 1024 ? env.pace : undefined).catch(lost)
    return expectAnswer(env, c, x, close, interimSeen)
  }
  return expectAnswer(env, c, x, close)
}

/** A pipelined batch: 2-5 requests without bodies in one write, the answers read in order. */
const pipelined = async (env: Env, c: Conn, rng: Rng): Promise<void> => {
  const batch: Array<Exchange> = []
  const k = rng.int(2, 5)
  while (batch.length < k) {
    const x = pickExchange(rng)
    if (x.kind !== "post") batch.push(x.kind === "get" ? { ...x, n: Math.min(x.n, 256 * 1024) } : x)
  }
  env.stage.now = `pipelined ${batch.map((x) => x.kind).join(", ")}`
  c.write(Buffer.concat(batch.map((x) => requestHead(env, x, false))))
  for (const x of batch) await expectAnswer(env, c, x, false)
}

/** One kept-alive session of 1-12 exchanges; the last asks to close, or the client just ends. */
export const httpSession = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    const count = rng.int(1, 12)
    const closeAtEnd = rng.chance(0.5)
    for (let i = 0; i < count; i++) {
      const last = i === count - 1
      if (!last && rng.chance(0.12)) await pipelined(env, c, rng)
      else await exchange(env, c, pickExchange(rng), last && closeAtEnd, rng)
    }
    env.stage.now = `waiting for the close (${closeAtEnd ? "Connection: close" : "client FIN"})`
    if (closeAtEnd) await c.closed("the last answer")
    else {
      c.socket.end()
      await c.closed("the client's end")
    }
  } finally {
    c.destroy()
  }
}
