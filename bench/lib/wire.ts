/**
 * Client-side plumbing shared by the generators: addresses, connections that read into one reused buffer,
 * CONNECT tunnels, and a minimal HTTP/1.1 response reader (Content-Length or read-to-close bodies).
 */
import net from "node:net"

/**
 * BENCH_PROXY_AUTH=user:password: every CONNECT and request carries these proxy credentials (Basic), to
 * measure a proxy that requires authentication (hctunnel --auth-file). Unset: no credentials.
 */
const proxyAuthorizationLine =
  process.env["BENCH_PROXY_AUTH"] === undefined
    ? ""
    : `Proxy-Authorization: Basic ${Buffer.from(process.env["BENCH_PROXY_AUTH"]).toString("base64")}\r\n`

export interface Endpoint {
  readonly host: string
  readonly port: number
}

/** "127.0.0.1:8080", "[::1]:8080" or "localhost:8080". */
export const parseEndpoint = (s: string): Endpoint => {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s)
  if (m === null) throw new Error(`not host:port: ${s}`)
  const port = Number(m[2])
  if (!(port > 0 && port < 65536)) throw new Error(`bad port in ${s}`)
  return { host: m[1]!, port }
}

export const authority = (e: Endpoint): string => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`)

/** The bench only ever talks to loopback addresses. */
export const assertLoopback = (e: Endpoint): void => {
  const h = e.host
  if (!(h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h))) {
    throw new Error(`refusing non-loopback address ${h} (the bench only targets 127.0.0.1 / ::1)`)
  }
}

export type Handler = (chunk: Buffer) => void

/** A socket whose reads land in one reused buffer and go to a swappable handler (chunks are views: copy to keep). */
export interface Conn {
  readonly socket: net.Socket
  handler: Handler
}

const noop: Handler = () => {}

export const connect = (ep: Endpoint, readBuffer: Buffer = Buffer.allocUnsafe(256 * 1024)): Promise<Conn> =>
  new Promise((resolve, reject) => {
    const conn: { socket: net.Socket | undefined; handler: Handler } = { socket: undefined, handler: noop }
    const socket = net.connect({
      host: ep.host,
      port: ep.port,
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array) => {
          conn.handler(Buffer.from(buf.buffer, buf.byteOffset, n))
          return true
        },
      },
    })
    conn.socket = socket
    const onError = (err: Error): void => reject(err)
    socket.once("error", onError)
    socket.once("connect", () => {
      socket.off("error", onError)
      resolve(conn as Conn)
    })
  })

const CRLFCRLF = Buffer.from("\r\n\r\n")

export interface Tunnel {
  readonly conn: Conn
  /** Bytes that arrived after the proxy's 200 head (already belong to the tunnel). */
  readonly rest: Buffer
}

/**
 * A byte stream to target: directly when proxy is undefined, else through `CONNECT target` on the proxy.
 * Resolves once the proxy answered 2xx (the tunnel counts as open only then).
 */
export const openTunnel = async (proxy: Endpoint | undefined, target: Endpoint, readBuffer?: Buffer): Promise<Tunnel> => {
  if (proxy === undefined) return { conn: await connect(target, readBuffer), rest: Buffer.alloc(0) }
  const conn = await connect(proxy, readBuffer)
  const a = authority(target)
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0)
    const fail = (err: Error): void => {
      conn.socket.destroy()
      reject(err)
    }
    const onClose = (): void => fail(new Error("proxy closed before answering CONNECT"))
    conn.socket.once("close", onClose)
    conn.socket.once("error", fail)
    conn.handler = (chunk) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf(CRLFCRLF)
      if (end < 0) {
        if (head.length > 64 * 1024) fail(new Error("CONNECT response head too large"))
        return
      }
      conn.handler = noop
      conn.socket.off("close", onClose)
      conn.socket.off("error", fail)
      const status = /^HTTP\/1\.\d (\d{3})/.exec(head.subarray(0, Math.min(end, 200)).toString("latin1"))
      if (status === null || !status[1]!.startsWith("2")) {
        return fail(new Error(`CONNECT ${a} refused: ${head.subarray(0, end).toString("latin1").split("\r\n")[0]}`))
      }
      resolve({ conn, rest: Buffer.from(head.subarray(end + 4)) })
    }
    conn.socket.write(`CONNECT ${a} HTTP/1.1\r\nHost: ${a}\r\n${proxyAuthorizationLine}\r\n`)
  })
}

export interface Response {
  readonly status: number
  readonly bodyBytes: number
  /** The server said it will close (Connection: close, or HTTP/1.0 without keep-alive, or a read-to-close body). */
  readonly closing: boolean
}

/**
 * Incremental reader of responses on one connection. Counts body bytes without keeping them.
 * Feed chunks with push(); call closed() when the socket ends (finishes a read-to-close body).
 */
export class ResponseReader {
  #head: Buffer = Buffer.alloc(0)
  #inBody = false
  #status = 0
  #remaining = 0 // -1: until close
  #body = 0
  #closing = false
  readonly #onResponse: (r: Response) => void

  constructor(onResponse: (r: Response) => void) {
    this.#onResponse = onResponse
  }

  push(chunk: Buffer): void {
    let c = chunk
    while (c.length > 0) {
      if (!this.#inBody) {
        const joined = this.#head.length === 0 ? c : Buffer.concat([this.#head, c])
        const end = joined.indexOf(CRLFCRLF)
        if (end < 0) {
          this.#head = Buffer.from(joined)
          if (this.#head.length > 64 * 1024) throw new Error("response head too large")
          return
        }
        this.#parseHead(joined.subarray(0, end).toString("latin1"))
        c = joined.subarray(end + 4)
        this.#head = Buffer.alloc(0)
        if (this.#remaining === 0) this.#finish()
        continue
      }
      if (this.#remaining < 0) {
        this.#body += c.length
        return
      }
      const take = Math.min(this.#remaining, c.length)
      this.#body += take
      this.#remaining -= take
      c = c.subarray(take)
      if (this.#remaining === 0) this.#finish()
    }
  }

  /** No response is partly read (a close now loses no response bytes). */
  get idle(): boolean {
    return !this.#inBody && this.#head.length === 0
  }

  closed(): void {
    if (this.#inBody && this.#remaining < 0) {
      this.#remaining = 0
      this.#finish()
    }
  }

  #parseHead(text: string): void {
    const lines = text.split("\r\n")
    const m = /^HTTP\/1\.(\d) (\d{3})/.exec(lines[0] ?? "")
    if (m === null) throw new Error(`bad status line: ${lines[0]}`)
    this.#status = Number(m[2])
    let length = -1
    let conn = ""
    for (const line of lines.slice(1)) {
      const i = line.indexOf(":")
      const name = line.slice(0, i).trim().toLowerCase()
      const value = line.slice(i + 1).trim()
      if (name === "content-length") length = Number(value)
      else if (name === "connection") conn = value.toLowerCase()
      else if (name === "transfer-encoding") throw new Error("chunked responses are not expected by the bench")
    }
    if (this.#status === 204 || this.#status === 304) length = 0
    this.#closing = conn.includes("close") || (m[1] === "0" && !conn.includes("keep-alive")) || length < 0
    this.#remaining = length
    this.#body = 0
    this.#inBody = true
  }

  #finish(): void {
    this.#inBody = false
    this.#onResponse({ status: this.#status, bodyBytes: this.#body, closing: this.#closing })
  }
}

/** A GET for path on origin: origin-form when direct, absolute-form when through a proxy. */
export const getRequest = (origin: Endpoint, path: string, viaProxy: boolean): Buffer => {
  const a = authority(origin)
  const target = viaProxy ? `http://${a}${path}` : path
  return Buffer.from(`GET ${target} HTTP/1.1\r\nHost: ${a}\r\nUser-Agent: hctunnel-bench\r\n${proxyAuthorizationLine}\r\n`, "latin1")
}

/** Exit when the parent goes away (stdin closes) or after a hard deadline: generators never outlive the harness. */
export const guardProcess = (deadlineMs: number): void => {
  process.stdin.on("data", () => {})
  process.stdin.on("end", () => process.exit(3))
  process.stdin.on("error", () => process.exit(3))
  setTimeout(() => {
    process.stderr.write(`deadline of ${deadlineMs} ms reached\n`)
    process.exit(4)
  }, deadlineMs).unref()
}

/** Print one JSON result line; cpuTotalSeconds (the whole process so far, startup included) is always added. */
export const report = (obj: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ ...obj, cpuTotalSeconds: cpuNow() }) + "\n")
}

/** process.cpuUsage() as seconds. */
export const cpuNow = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Read `--name value` flags into a map. */
export const flags = (argv: ReadonlyArray<string>): Map<string, string> => {
  const m = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a.startsWith("--")) {
      const next = argv[i + 1]
      if (next !== undefined && !next.startsWith("--")) {
        m.set(a.slice(2), next)
        i++
      } else m.set(a.slice(2), "true")
    }
  }
  return m
}

export const need = (m: Map<string, string>, name: string): string => {
  const v = m.get(name)
  if (v === undefined) throw new Error(`missing --${name}`)
  return v
}

/** A TCP port free on 127.0.0.1 right now (bound, read, released). */
export const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = net.createServer()
    s.once("error", rej)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => res(port))
    })
  })
