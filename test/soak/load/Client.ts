/**
 * A client connection to the proxy, and the checks every answer must pass.
 *
 * Errors are sorted as the ledger wants them: a socket that went away early is `Lost` (excused only while a
 * worker is being ended), anything that does not match the expectation is `Unexpected`, bytes that differ
 * from the bytes sent are `Corrupted`.
 */
import net from "node:net"
import { CONFIGS } from "../env/Files.ts"
import type { Verdicts } from "../origins/serve.ts"
import { type ConfigName, Corrupted, type Ledger, Lost, Unexpected } from "../report/Ledger.ts"
import { type DataPool, type Rng, StreamCheck } from "../rng.ts"
import { all, type Fields, type Framing, field, Malformed, parseResponseHead, type ResponseHead, readBody } from "../wire/http1.ts"
import { PeerClosed, Reader } from "../wire/Reader.ts"

/** Everything an operation needs. */
export interface Env {
  readonly proxyPort: number
  readonly pool: DataPool
  readonly ledger: Ledger
  readonly verdicts: Verdicts
  readonly rng: Rng
  /** `Proxy-Authorization` value of the user who always exists. */
  readonly alice: string
  readonly carol: string
  readonly ports: {
    readonly good: number
    readonly stream: number
    readonly bad: number
    readonly flaky: number
    readonly denyAll: number
    readonly denyA: number
    readonly denyB: number
    readonly closed: number
  }
  /** Names the soak's DNS server answers: long TTL, and 1 s TTL (asked again and again). */
  readonly names: { readonly cached: string; readonly shortTtl: ReadonlyArray<string> }
  /** Bulk pacing (bytes per second shared by every large stream). */
  readonly pace: (n: number) => Promise<void>
  /** The next operation id. */
  readonly nextId: () => string
  /** Whether the soak is stopping (lanes finish their operation and return). */
  readonly stopping: () => boolean
  /** What the lane's operation is doing now (said when it hangs). */
  readonly stage: { now: string }
}

const now = (): number => performance.now()

/** Any failure of the socket itself is a lost connection. */
export const lost = (e: unknown): never => {
  if (e instanceof PeerClosed)
    throw new Lost(`connection ${e.how === "end" ? "ended" : e.how === "error" ? `reset (${e.message})` : "closed"} early`)
  if (e instanceof Malformed) throw new Unexpected(e.message)
  throw e
}

export class Conn {
  readonly r: Reader
  /**
   * When the client began to connect: the proxy accepts the connection after this (maybe before the
   * client sees it connected), so this bounds the settings it was accepted under.
   */
  readonly opened: number
  /** The Via the proxy used on this connection (it keeps the settings it was accepted with). */
  via: string | undefined = undefined

  readonly socket: net.Socket
  private readonly env: Env

  private constructor(socket: net.Socket, env: Env, opened: number) {
    this.socket = socket
    this.env = env
    this.opened = opened
    this.r = new Reader(socket)
  }

  static open(env: Env, localAddress = "127.0.0.1", signal?: AbortSignal): Promise<Conn> {
    const opened = now()
    return new Promise((resolve, reject) => {
      const s = net.connect({ port: env.proxyPort, host: "127.0.0.1", localAddress, allowHalfOpen: true, noDelay: true })
      const onAbort = (): void => void s.destroy()
      signal?.addEventListener("abort", onAbort, { once: true })
      s.once("close", () => signal?.removeEventListener("abort", onAbort))
      s.once("connect", () => {
        s.off("error", reject)
        resolve(new Conn(s, env, opened))
      })
      s.once("error", (e) => reject(new Lost(`connect: ${(e as NodeJS.ErrnoException).code ?? e.message}`)))
    })
  }

  write(data: string | Buffer): void {
    if (this.socket.destroyed) throw new Lost("connection closed before a write")
    this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data)
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** The next response head (1xx included). */
  async head(): Promise<ResponseHead> {
    try {
      return parseResponseHead(await this.r.head())
    } catch (e) {
      return lost(e)
    }
  }

  /** The next final head; the 1xx heads before it are returned too. */
  async finalHead(): Promise<{ interim: Array<ResponseHead>; head: ResponseHead }> {
    const interim: Array<ResponseHead> = []
    for (;;) {
      const h = await this.head()
      if (h.status >= 200 || h.status === 101) return { interim, head: h }
      interim.push(h)
      if (interim.length > 10) throw new Unexpected("more than 10 interim responses")
    }
  }

  /** The configurations this connection may have been accepted under (reloads), as of now. */
  configs(): Set<ConfigName> {
    return this.env.ledger.configsFor(this.opened, now())
  }

  /** Via must name a configuration this connection may have, and the same one on every response. */
  checkVia(h: ResponseHead): ConfigName {
    const via = all(h.fields, "via")
    const allowed = [...this.configs()].map((c) => `1.1 ${CONFIGS[c].via}`)
    if (via.length !== 1 || !allowed.includes(via[0]!))
      throw new Unexpected(`Via ${JSON.stringify(via)} on a ${h.status}, expected one of ${allowed.join(" / ")}`)
    if (this.via !== undefined && this.via !== via[0]) throw new Unexpected(`Via changed on one connection: ${this.via} then ${via[0]}`)
    this.via = via[0]!
    return this.via === `1.1 ${CONFIGS.a.via}` ? "a" : "b"
  }

  /** Waits until the proxy closes the connection (FIN or reset), reading nothing more; bytes that come are unexpected. */
  async closed(what: string): Promise<void> {
    const before = this.r.buffered
    await this.r.closing()
    if (this.r.buffered > before) throw new Unexpected(`${this.r.buffered - before} bytes after ${what}`)
  }
}

export const REASONS: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
}

/**
 * Reads one of the proxy's own error responses (design §6.9) and checks it field by field: the status, the
 * reason, `Content-Type`, `Content-Length`, `Via`, `Connection: close`, the body `<status> <reason>: <detail>`
 * with `detail` starting with `detailPrefix`; then the connection must close. Returns the detail.
 */
export const expectError = async (c: Conn, status: number, detailPrefix: string | RegExp, already?: ResponseHead): Promise<string> => {
  const h = already ?? (await c.finalHead()).head
  if (h.status !== status) throw new Unexpected(`status ${h.status} ${h.reason}, expected ${status} (${String(detailPrefix)})`)
  if (h.reason !== REASONS[status]) throw new Unexpected(`reason ${JSON.stringify(h.reason)} for ${status}`)
  c.checkVia(h)
  const names = h.fields.map(([n]) => n.toLowerCase())
  const expectedNames =
    status === 407
      ? [
          "proxy-authenticate",
          "content-type",
          "content-length",
          "via",
          ...(field(h.fields, "connection") === undefined ? [] : ["connection"]),
        ]
      : status === 405
        ? ["content-type", "content-length", "allow", "via", "connection"]
        : ["content-type", "content-length", "via", "connection"]
  if (names.join(",") !== expectedNames.join(",")) throw new Unexpected(`the ${status} has fields ${names.join(", ")}`)
  if (field(h.fields, "content-type") !== "text/plain; charset=utf-8")
    throw new Unexpected(`${status} Content-Type ${field(h.fields, "content-type")}`)
  if (status !== 407 && field(h.fields, "connection") !== "close") throw new Unexpected(`${status} without Connection: close`)
  const length = Number(field(h.fields, "content-length"))
  let body: Buffer
  try {
    body = await c.r.exact(length)
  } catch (e) {
    return lost(e)
  }
  const text = body.toString("utf8")
  const prefix = `${status} ${REASONS[status]}: `
  if (!text.startsWith(prefix) || !text.endsWith("\n")) throw new Unexpected(`${status} body ${JSON.stringify(text.slice(0, 120))}`)
  const detail = text.slice(prefix.length, -1)
  const ok = typeof detailPrefix === "string" ? detail.startsWith(detailPrefix) : detailPrefix.test(detail)
  if (!ok) throw new Unexpected(`${status} detail ${JSON.stringify(detail)}, expected ${String(detailPrefix)}`)
  if (status !== 407 || field(h.fields, "connection") === "close") await c.closed(`the ${status}`)
  return detail
}

/** Reads a body by its framing, checking it byte for byte against the pool stream (offset, length). */
export const expectBody = async (c: Conn, env: Env, framing: Framing, offset: number, length: number): Promise<Fields> => {
  const check = new StreamCheck(env.pool, offset, length)
  let trailers: Fields
  try {
    trailers = await readBody(c.r, framing, check.feed)
  } catch (e) {
    if (check.mismatchAt !== undefined) throw new Corrupted(`body byte ${check.mismatchAt} of ${length} differs`)
    return lost(e)
  }
  if (check.mismatchAt !== undefined) throw new Corrupted(`body byte ${check.mismatchAt} of ${length} differs (${check.received} received)`)
  if (check.received !== length) throw new Corrupted(`body of ${check.received} bytes, expected ${length}`)
  env.ledger.bytesVerified += length
  return trailers
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
