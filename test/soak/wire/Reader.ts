/**
 * Reader: pulls bytes off a socket for the soak's clients and origins, which read heads, lines and bodies
 * in order. Bodies stream through a sink (never collected), so a 50 MB response costs no memory here.
 *
 * Every read either gets its bytes or throws `PeerClosed` saying how the peer ended (a FIN, a reset, a
 * close); the caller's timeout destroys the socket, which ends a pending read the same way.
 */
import type net from "node:net"

export class PeerClosed extends Error {
  /** "end": a FIN; "error": a reset or another socket error; "closed": the socket was destroyed. */
  readonly how: "end" | "error" | "closed"
  constructor(how: "end" | "error" | "closed", detail: string) {
    super(detail)
    this.how = how
  }
}

const CRLFCRLF = Buffer.from("\r\n\r\n")
const CRLF = Buffer.from("\r\n")

export class Reader {
  private chunks: Array<Buffer> = []
  private size = 0
  ended = false
  closed = false
  error: Error | undefined = undefined
  private wake: (() => void) | undefined = undefined

  readonly socket: net.Socket

  constructor(socket: net.Socket) {
    this.socket = socket
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
    socket.on("close", () => {
      this.closed = true
      this.poke()
    })
  }

  private poke(): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.size
  }

  private gone(): PeerClosed {
    if (this.error !== undefined) return new PeerClosed("error", (this.error as NodeJS.ErrnoException).code ?? this.error.message)
    if (this.ended) return new PeerClosed("end", "the peer ended the connection")
    return new PeerClosed("closed", "the connection closed")
  }

  /** Waits for more bytes; throws when none can come. */
  private async more(): Promise<void> {
    if (this.ended || this.closed || this.error !== undefined) throw this.gone()
    await new Promise<void>((resolve) => {
      this.wake = resolve
    })
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0] ?? Buffer.alloc(0)
  }

  private take(n: number): Buffer {
    const all = this.flatten()
    const out = all.subarray(0, n)
    const rest = all.subarray(n)
    this.chunks = rest.length > 0 ? [rest] : []
    this.size -= n
    return out
  }

  private async until(marker: Buffer, max: number, what: string): Promise<Buffer> {
    for (;;) {
      if (this.size > 0) {
        const all = this.flatten()
        const at = all.indexOf(marker)
        if (at >= 0) return this.take(at + marker.length).subarray(0, at)
        if (all.length > max) throw new Error(`${what} longer than ${max} bytes`)
      }
      await this.more()
    }
  }

  /** A head: the bytes up to the empty line (not included). */
  head(max = 256 * 1024): Promise<Buffer> {
    return this.until(CRLFCRLF, max, "head")
  }

  /** A line, without its CRLF. */
  line(max = 64 * 1024): Promise<Buffer> {
    return this.until(CRLF, max, "line")
  }

  /** Exactly n bytes, as one Buffer (small reads). */
  async exact(n: number): Promise<Buffer> {
    while (this.size < n) await this.more()
    return this.take(n)
  }

  /** Exactly n bytes, streamed into `sink`. */
  async stream(n: number, sink: (chunk: Buffer) => void): Promise<void> {
    let left = n
    while (left > 0) {
      if (this.size === 0) await this.more()
      while (left > 0 && this.chunks.length > 0) {
        const c = this.chunks[0]!
        if (c.length <= left) {
          this.chunks.shift()
          this.size -= c.length
          left -= c.length
          sink(c)
        } else {
          this.chunks[0] = c.subarray(left)
          this.size -= left
          sink(c.subarray(0, left))
          left = 0
        }
      }
    }
  }

  /** Everything until the peer ends, streamed into `sink`; returns how it ended. */
  async rest(sink: (chunk: Buffer) => void): Promise<PeerClosed> {
    for (;;) {
      for (const c of this.chunks) sink(c)
      this.chunks = []
      this.size = 0
      try {
        await this.more()
      } catch (e) {
        if (e instanceof PeerClosed) {
          for (const c of this.chunks) sink(c)
          this.chunks = []
          this.size = 0
          return e
        }
        throw e
      }
    }
  }

  /** Waits until the peer ends or the socket closes, without reading (bytes that come are kept). */
  async closing(): Promise<PeerClosed> {
    for (;;) {
      try {
        await this.more()
      } catch (e) {
        if (e instanceof PeerClosed) return e
        throw e
      }
    }
  }
}
