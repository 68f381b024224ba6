/**
 * The little HTTP/1.1 the soak speaks on both sides of the proxy: heads parsed into lines and fields,
 * bodies framed by Content-Length, chunked (with trailers) or the end of the connection, and written from
 * the data pool. Strict on purpose: anything the proxy sends that does not parse is the proxy's fault.
 */
import type { DataPool, Rng } from "../rng.ts"
import { PeerClosed, type Reader } from "./Reader.ts"

export type Fields = ReadonlyArray<readonly [string, string]>

export interface ResponseHead {
  readonly version: string
  readonly status: number
  readonly reason: string
  readonly fields: Fields
  /** The head's bytes, without its empty line. */
  readonly raw: Buffer
}

export interface RequestHead {
  readonly method: string
  readonly target: string
  readonly version: string
  readonly fields: Fields
}

export class Malformed extends Error {}

const parseFields = (lines: ReadonlyArray<string>): Fields =>
  lines.map((line) => {
    const colon = line.indexOf(":")
    if (colon <= 0) throw new Malformed(`malformed field line ${JSON.stringify(line.slice(0, 80))}`)
    return [line.slice(0, colon), line.slice(colon + 1).trim()] as const
  })

export const parseResponseHead = (raw: Buffer): ResponseHead => {
  const lines = raw.toString("latin1").split("\r\n")
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? "")
  if (m === null) throw new Malformed(`malformed status line ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`)
  return { version: m[1]!, status: Number(m[2]), reason: m[3] ?? "", fields: parseFields(lines.slice(1)), raw }
}

export const parseRequestHead = (raw: Buffer): RequestHead => {
  const lines = raw.toString("latin1").split("\r\n")
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? "")
  if (m === null) throw new Malformed(`malformed request line ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`)
  return { method: m[1]!, target: m[2]!, version: m[3]!, fields: parseFields(lines.slice(1)) }
}

/** Every value of the field `name` (any case), in order. */
export const all = (fields: Fields, name: string): Array<string> => {
  const lower = name.toLowerCase()
  return fields.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v)
}

/** The field's values joined with ", ", or undefined when absent. */
export const field = (fields: Fields, name: string): string | undefined => {
  const values = all(fields, name)
  return values.length === 0 ? undefined : values.join(", ")
}

export const hasToken = (fields: Fields, name: string, token: string): boolean =>
  all(fields, name).some((v) => v.split(",").some((t) => t.trim().toLowerCase() === token))

export const head = (firstLine: string, fields: Fields): Buffer =>
  Buffer.from(`${firstLine}\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`, "latin1")

export type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" }

/** The body framing of a response (RFC 9112 §6.3), as the client must read it. */
export const responseFraming = (method: string, h: ResponseHead): Framing => {
  if (method === "HEAD" || h.status === 204 || h.status === 304 || (h.status >= 100 && h.status < 200)) return { kind: "none" }
  if (hasToken(h.fields, "transfer-encoding", "chunked")) return { kind: "chunked" }
  const cl = field(h.fields, "content-length")
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new Malformed(`Content-Length ${JSON.stringify(cl)}`)
    return { kind: "length", length: Number(cl) }
  }
  return { kind: "close" }
}

export const requestFraming = (h: RequestHead): Framing => {
  if (hasToken(h.fields, "transfer-encoding", "chunked")) return { kind: "chunked" }
  const cl = field(h.fields, "content-length")
  if (cl !== undefined && Number(cl) > 0) return { kind: "length", length: Number(cl) }
  return { kind: "none" }
}

/**
 * Reads a chunked body: the data into `sink`, and returns the trailer fields. Extensions are allowed
 * (the proxy drops them, but a peer may send them).
 */
export const readChunked = async (r: Reader, sink: (chunk: Buffer) => void): Promise<Fields> => {
  for (;;) {
    const sizeLine = (await r.line(4096)).toString("latin1")
    const m = /^([0-9a-fA-F]+)(;.*)?$/.exec(sizeLine)
    if (m === null) throw new Malformed(`chunk size line ${JSON.stringify(sizeLine.slice(0, 40))}`)
    const size = parseInt(m[1]!, 16)
    if (size === 0) {
      const lines: Array<string> = []
      for (;;) {
        const l = (await r.line(64 * 1024)).toString("latin1")
        if (l === "") return parseFields(lines)
        lines.push(l)
      }
    }
    await r.stream(size, sink)
    const crlf = await r.exact(2)
    if (crlf[0] !== 13 || crlf[1] !== 10) throw new Malformed("chunk data not followed by CRLF")
  }
}

/** Reads a body by its framing into `sink`; returns the trailers (chunked) or []. "close" reads to the end. */
export const readBody = async (r: Reader, framing: Framing, sink: (chunk: Buffer) => void): Promise<Fields> => {
  switch (framing.kind) {
    case "none":
      return []
    case "length":
      await r.stream(framing.length, sink)
      return []
    case "chunked":
      return readChunked(r, sink)
    case "close":
      await r.rest(sink)
      return []
  }
}

/**
 * The stream (offset, length) of the pool as a chunked body: chunk sizes from `rng` (1 B to 64 KiB), now
 * and then with an extension, then the last chunk and `trailers`.
 */
export function* chunkedBody(pool: DataPool, offset: number, length: number, rng: Rng, trailers: Fields): Generator<Buffer> {
  let at = 0
  while (at < length) {
    const n = Math.min(length - at, rng.chance(0.2) ? rng.int(1, 64) : rng.int(1024, 64 * 1024))
    const ext = rng.chance(0.1) ? ";soak=1" : ""
    yield Buffer.from(`${n.toString(16)}${ext}\r\n`, "latin1")
    for (const s of pool.slices(offset + at, n)) yield s
    yield Buffer.from("\r\n", "latin1")
    at += n
  }
  yield Buffer.from(`0\r\n${trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`, "latin1")
}

/** Writes the pieces in order, waiting for 'drain' when the socket's buffer is full. */
export const writeAll = async (
  socket: import("node:net").Socket,
  pieces: Iterable<Buffer>,
  pace?: (n: number) => Promise<void>,
): Promise<void> => {
  for (const piece of pieces) {
    if (socket.destroyed || socket.writableEnded) throw new PeerClosed("closed", "the connection closed while writing")
    if (pace !== undefined) await pace(piece.length)
    if (!socket.write(piece)) {
      await new Promise<void>((resolve, reject) => {
        const done = (): void => {
          socket.off("drain", done)
          socket.off("close", closed)
          resolve()
        }
        const closed = (): void => {
          socket.off("drain", done)
          reject(new PeerClosed("closed", "the connection closed while writing"))
        }
        socket.once("drain", done)
        socket.once("close", closed)
      })
    }
  }
}
