/**
 * Raw-socket client for what real clients will not do: a buffered reader over a net.Socket that parses
 * HTTP/1.1 responses (Content-Length, chunked, close-delimited) and reports end / close.
 */
import net from "node:net"
import { LOOPBACK } from "./origins.ts"

export interface Response {
  readonly statusLine: string
  readonly status: number
  /** Header names lower-cased; repeated fields joined with ", ". */
  readonly headers: Record<string, string>
  readonly rawHead: string
  readonly body: Buffer
}

export class Conn {
  readonly socket: net.Socket
  /** Received, unconsumed bytes: a list of chunks joined only when a reader needs to look inside. */
  private chunks: Buffer[] = []
  private size = 0
  /** The peer half-closed (FIN received). */
  ended = false
  /** The socket is fully closed. */
  closed = false
  error: Error | undefined = undefined
  private wake: (() => void) | undefined = undefined
  readonly closedPromise: Promise<void>

  constructor(socket: net.Socket, leftover?: Buffer) {
    this.socket = socket
    if (leftover !== undefined) this.buf = leftover
    socket.on("data", (d: Buffer) => {
      this.chunks.push(d)
      this.size += d.length
      this.poke()
    })
    socket.on("end", () => {
      this.ended = true
      this.poke()
    })
    socket.on("error", (e) => {
      this.error = e
      this.poke()
    })
    this.closedPromise = new Promise((resolve) =>
      socket.once("close", () => {
        this.closed = true
        this.poke()
        resolve()
      }),
    )
  }

  static open(port: number, host = LOOPBACK, options: { allowHalfOpen?: boolean } = {}): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, allowHalfOpen: options.allowHalfOpen ?? true })
      s.setNoDelay(true)
      s.once("connect", () => {
        s.off("error", reject)
        resolve(new Conn(s))
      })
      s.once("error", reject)
    })
  }

  private poke(): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data, (e) => (e ? reject(e) : resolve())),
    )
  }

  end(): void {
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }

  private get buf(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.size)]
    return this.chunks[0]!
  }

  private set buf(b: Buffer) {
    this.chunks = b.length === 0 ? [] : [b]
    this.size = b.length
  }

  /** Bytes received and not consumed yet. */
  get pending(): Buffer {
    return this.buf
  }

  /** Wait until `ready(buffer)` returns a count n >= 0 of bytes to consume; resolves with them. */
  private async take(ready: (b: Buffer, eof: boolean) => number, what: string, timeoutMs: number, minBytes = 0): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const eof = this.ended || this.closed || this.error !== undefined
      // Join the chunks only when enough bytes are there for the reader to succeed (no quadratic copying).
      const n = this.size < minBytes && !eof ? -1 : ready(this.buf, eof)
      if (n >= 0) {
        const out = this.buf.subarray(0, n)
        this.buf = this.buf.subarray(n)
        return out
      }
      if (eof)
        throw new Error(
          `connection ended while waiting for ${what}; got ${JSON.stringify(this.buf.toString("latin1").slice(0, 300))}${this.error ? ` (${this.error.message})` : ""}`,
        )
      const left = deadline - Date.now()
      if (left <= 0)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.buf.toString("latin1").slice(0, 300))}`,
        )
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.wake = undefined
          resolve()
        }, left)
        this.wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
    }
  }

  /** Exactly n bytes. */
  readBytes(n: number, timeoutMs = 10_000): Promise<Buffer> {
    return this.take((b) => (b.length >= n ? n : -1), `${n} bytes`, timeoutMs, n)
  }

  /** Everything until the peer ends or closes. */
  readToEnd(timeoutMs = 10_000): Promise<Buffer> {
    return this.take((b, eof) => (eof ? b.length : -1), "end of stream", timeoutMs, Number.MAX_SAFE_INTEGER)
  }

  /** Resolves when the socket is closed or ended by the peer (whatever remains unread is discarded). */
  async waitEnd(timeoutMs = 10_000): Promise<void> {
    await this.take((b, eof) => (eof ? b.length : -1), "end of stream", timeoutMs, Number.MAX_SAFE_INTEGER)
  }

  /** A response head, `\r\n\r\n` included. */
  async readHead(timeoutMs = 10_000): Promise<{ statusLine: string; status: number; headers: Record<string, string>; rawHead: string }> {
    const raw = await this.take(
      (b) => {
        const i = b.indexOf("\r\n\r\n")
        return i < 0 ? -1 : i + 4
      },
      "a response head",
      timeoutMs,
    )
    const rawHead = raw.toString("latin1")
    const lines = rawHead.slice(0, -4).split("\r\n")
    const statusLine = lines[0] ?? ""
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine)
    if (m === null) throw new Error(`bad status line ${JSON.stringify(statusLine)}`)
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const c = l.indexOf(":")
      const k = l.slice(0, c).toLowerCase()
      const v = l.slice(c + 1).trim()
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`
    }
    return { statusLine, status: Number(m[1]), headers, rawHead }
  }

  /** One full response (1xx interim responses are skipped unless `keepInterim`). `head` for a HEAD request. */
  async readResponse(opts: { head?: boolean; timeoutMs?: number } = {}): Promise<Response> {
    const timeoutMs = opts.timeoutMs ?? 10_000
    for (;;) {
      const h = await this.readHead(timeoutMs)
      if (h.status >= 100 && h.status < 200 && h.status !== 101) continue
      let body: Buffer
      const te = h.headers["transfer-encoding"]
      const cl = h.headers["content-length"]
      if (opts.head === true || h.status === 204 || h.status === 304 || h.status === 101) body = Buffer.alloc(0)
      else if (te !== undefined && /chunked\s*$/i.test(te)) body = await this.readChunked(timeoutMs)
      else if (cl !== undefined) body = await this.readBytes(Number(cl), timeoutMs)
      else body = await this.readToEnd(timeoutMs)
      return { ...h, body }
    }
  }

  private async readChunked(timeoutMs: number): Promise<Buffer> {
    const parts: Buffer[] = []
    for (;;) {
      const line = (
        await this.take(
          (b) => {
            const i = b.indexOf("\r\n")
            return i < 0 ? -1 : i + 2
          },
          "a chunk size line",
          timeoutMs,
        )
      ).toString("latin1")
      const size = parseInt(line, 16)
      if (Number.isNaN(size)) throw new Error(`bad chunk line ${JSON.stringify(line)}`)
      if (size === 0) {
        // trailers until an empty line
        for (;;) {
          const t = await this.take(
            (b) => {
              const i = b.indexOf("\r\n")
              return i < 0 ? -1 : i + 2
            },
            "a trailer line",
            timeoutMs,
          )
          if (t.length === 2) return Buffer.concat(parts)
        }
      }
      const data = await this.readBytes(size + 2, timeoutMs)
      parts.push(data.subarray(0, size))
    }
  }
}

/** Open a CONNECT tunnel through the proxy; resolves once the 200 head was read. */
export const openTunnel = async (proxyPort: number, authority: string, early?: Buffer | string): Promise<Conn> => {
  const c = await Conn.open(proxyPort)
  const head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`
  await c.write(early === undefined ? head : Buffer.concat([Buffer.from(head, "latin1"), Buffer.from(early)]))
  const h = await c.readHead()
  if (h.status !== 200) {
    c.destroy()
    throw new Error(`CONNECT ${authority}: ${h.statusLine}`)
  }
  return c
}

/** A GET in absolute form, with a Host field. */
export const get = (url: string, extra = ""): string => {
  const u = new URL(url)
  return `GET ${url} HTTP/1.1\r\nHost: ${u.host}\r\n${extra}\r\n`
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Poll `f` until it returns true (every `everyMs`), or fail after `timeoutMs`. */
export const until = async (what: string, f: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 25): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
