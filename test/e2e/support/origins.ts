/**
 * Local origin servers for the e2e tests. Everything listens on 127.0.0.1, port 0, and is closed by `close()`.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import http from "node:http"
import https from "node:https"
import net from "node:net"
import { WebSocketServer } from "ws"

export const LOOPBACK = "127.0.0.1"

export interface Closable {
  readonly port: number
  close(): Promise<void>
}

const listen = (server: net.Server, backlog?: number, host: string = LOOPBACK): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen({ host, port: 0, ...(backlog === undefined ? {} : { backlog }) }, () => {
      server.off("error", reject)
      resolve((server.address() as net.AddressInfo).port)
    })
  })

/** Close a server and destroy the sockets it still holds. */
const closeServer = (server: net.Server, sockets: Set<net.Socket>): Promise<void> =>
  new Promise((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  })

const track = (server: net.Server): Set<net.Socket> => {
  const sockets = new Set<net.Socket>()
  server.on("connection", (s: net.Socket) => {
    sockets.add(s)
    s.on("error", () => {})
    s.once("close", () => sockets.delete(s))
  })
  return sockets
}

/** The deterministic bytes of the big download: a 64 KiB block of a repeating pattern, cut at `size`. */
const BLOCK = (() => {
  const b = Buffer.alloc(64 * 1024)
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 8)) & 0xff
  return b
})()

export const bigBodySha256 = (size: number): string => {
  const h = createHash("sha256")
  let left = size
  while (left > 0) {
    const n = Math.min(left, BLOCK.length)
    h.update(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))
    left -= n
  }
  return h.digest("hex")
}

const streamBig = (res: http.ServerResponse, size: number): void => {
  let left = size
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, BLOCK.length)
      left -= n
      if (!res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) {
        res.once("drain", pump)
        return
      }
    }
    res.end()
  }
  pump()
}

export interface HttpOrigin extends Closable {
  /** The name it answers with in `x-origin` and on `/name`. */
  readonly name: string
  /** Request heads it received, in order (method, url, headers as raw pairs). */
  readonly seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; rawHeaders: string[] }>
  /** Number of TCP connections accepted so far. */
  connections(): number
}

export interface EchoBody {
  readonly method: string
  readonly url: string
  readonly length: number
  readonly sha256: string
  readonly headers: http.IncomingHttpHeaders
}

/**
 * Routes:
 *  GET/HEAD /small          -> "hello from <name>\n" (Content-Length)
 *  GET /headers             -> JSON of the request head it received
 *  GET /chunked?n=K         -> K chunks "chunk i\n" written with pauses (Transfer-Encoding: chunked)
 *  POST|PUT /echo           -> JSON {method,url,length,sha256,headers} of the body received
 *  GET /big?size=N          -> N deterministic bytes (Content-Length), streamed; sha256 = bigBodySha256(N)
 *  GET /slow?ms=M           -> waits M ms, then "slow\n"
 *  GET /drip?n=K&ms=M       -> K chunks, one every M ms
 *  POST /continue           -> 100-continue is answered explicitly, then the echo of the body
 *  GET /close               -> body delimited by closing the connection (no Content-Length)
 *  any, with `Upgrade: echo` -> 101, then the connection echoes raw bytes
 */
export const startHttpOrigin = async (name = "origin", host: "127.0.0.1" | "::1" = LOOPBACK): Promise<HttpOrigin> => {
  const seen: HttpOrigin["seen"] = []
  let connections = 0
  const echo = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const h = createHash("sha256")
    let length = 0
    req.on("data", (d: Buffer) => {
      h.update(d)
      length += d.length
    })
    req.on("end", () => {
      const body: EchoBody = { method: req.method ?? "", url: req.url ?? "", length, sha256: h.digest("hex"), headers: req.headers }
      const text = JSON.stringify(body)
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "x-origin": name })
      res.end(text)
    })
  }
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders })
    const url = new URL(req.url ?? "/", "http://x")
    const q = (k: string, d: number): number => Number(url.searchParams.get(k) ?? d)
    switch (url.pathname) {
      case "/small":
      case "/name": {
        const body = `hello from ${name}\n`
        res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), "x-origin": name })
        res.end(req.method === "HEAD" ? undefined : body)
        return
      }
      case "/headers": {
        req.resume()
        req.on("end", () => {
          const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders })
          res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "x-origin": name })
          res.end(text)
        })
        return
      }
      case "/chunked": {
        const n = q("n", 5)
        res.writeHead(200, { "content-type": "text/plain", "x-origin": name }) // no length: chunked
        let i = 0
        const next = (): void => {
          if (i === n) return void res.end()
          res.write(`chunk ${i++}\n`)
          setTimeout(next, 5)
        }
        next()
        return
      }
      case "/echo":
        return echo(req, res)
      case "/continue":
        return echo(req, res)
      case "/big": {
        const size = q("size", 1024)
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size, "x-origin": name })
        streamBig(res, size)
        return
      }
      case "/slow": {
        const t = setTimeout(
          () => {
            if (res.destroyed) return
            res.writeHead(200, { "content-type": "text/plain", "content-length": 5, "x-origin": name })
            res.end("slow\n")
          },
          q("ms", 500),
        )
        res.on("close", () => clearTimeout(t))
        return
      }
      case "/drip": {
        const n = q("n", 5)
        const ms = q("ms", 100)
        res.writeHead(200, { "content-type": "text/plain", "x-origin": name })
        let i = 0
        const t = setInterval(() => {
          if (i === n) {
            clearInterval(t)
            return void res.end()
          }
          res.write(`drip ${i++}\n`)
        }, ms)
        res.on("close", () => clearInterval(t))
        return
      }
      case "/close": {
        res.writeHead(200, { "content-type": "text/plain", connection: "close", "x-origin": name })
        res.end("until close\n")
        return
      }
      default:
        res.writeHead(404, { "content-length": 0, "x-origin": name })
        res.end()
    }
  }
  const server = http.createServer({ keepAliveTimeout: 5000 }, handler)
  // Expect: 100-continue: Node answers it only when we say so.
  server.on("checkContinue", (req, res) => {
    res.writeContinue()
    handler(req, res)
  })
  // `Upgrade: echo`: 101, then a raw byte echo on the same connection.
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders })
    socket.on("error", () => {})
    if ((req.headers.upgrade ?? "").toLowerCase() !== "echo") return void socket.destroy()
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
    if (head.length > 0) socket.write(head)
    socket.on("data", (d: Buffer) => socket.write(d))
    socket.on("end", () => socket.end())
  })
  server.on("connection", () => void connections++)
  const sockets = track(server)
  const port = await listen(server, undefined, host)
  return { name, port, seen, connections: () => connections, close: () => closeServer(server, sockets) }
}

export interface TlsOrigin extends Closable {}

/** HTTPS origin with the generated certificate: GET /small and POST /echo like the HTTP origin. */
export const startTlsOrigin = async (key: string, cert: string): Promise<TlsOrigin> => {
  const server = https.createServer({ key, cert }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://x")
    if (url.pathname === "/echo") {
      const h = createHash("sha256")
      let length = 0
      req.on("data", (d: Buffer) => {
        h.update(d)
        length += d.length
      })
      req.on("end", () => {
        const text = JSON.stringify({ method: req.method, url: req.url, length, sha256: h.digest("hex"), headers: req.headers })
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
        res.end(text)
      })
      return
    }
    const body = "hello over tls\n"
    res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), "x-origin": "tls" })
    res.end(req.method === "HEAD" ? undefined : body)
  })
  const sockets = new Set<net.Socket>()
  server.on("connection", (s: net.Socket) => {
    sockets.add(s)
    s.on("error", () => {})
    s.once("close", () => sockets.delete(s))
  })
  server.on("tlsClientError", () => {})
  const port = await listen(server)
  return { port, close: () => closeServer(server, sockets) }
}

/** WebSocket echo server (plain ws://). */
export const startWsEcho = async (): Promise<Closable> => {
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { "content-length": 0 })
    res.end()
  })
  const wss = new WebSocketServer({ server })
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  const sockets = track(server)
  const port = await listen(server)
  return {
    port,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
      await closeServer(server, sockets)
    },
  }
}

export interface TcpEvents {
  /** Bytes received per connection, and whether the peer ended. */
  readonly conns: Array<{ socket: net.Socket; received: Buffer[]; ended: boolean }>
}

/**
 * Raw TCP server driven by the test (`nextConnection()` resolves with the next connection accepted). Modes:
 *  - "echo": writes back what it receives; when the peer ends, ends too (after the echo).
 *  - "manual": does nothing by itself; the test reads `conns` and writes/ends the sockets.
 *  - "slam": closes the connection as soon as the first bytes arrive (an origin that dies without answering).
 */
export const startTcpServer = async (
  mode: "echo" | "manual" | "slam",
): Promise<Closable & TcpEvents & { nextConnection(): Promise<TcpEvents["conns"][number]> }> => {
  const conns: TcpEvents["conns"] = []
  const waiters: Array<(c: TcpEvents["conns"][number]) => void> = []
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const c = { socket, received: [] as Buffer[], ended: false }
    conns.push(c)
    socket.on("data", (d: Buffer) => {
      c.received.push(d)
      if (mode === "echo") socket.write(d)
      if (mode === "slam") socket.destroy()
    })
    socket.on("end", () => {
      c.ended = true
      if (mode === "echo") socket.end()
    })
    const w = waiters.shift()
    if (w !== undefined) w(c)
  })
  const sockets = track(server)
  const port = await listen(server)
  return {
    port,
    conns,
    nextConnection: () =>
      new Promise((resolve) => {
        waiters.push(resolve)
      }),
    close: () => closeServer(server, sockets),
  }
}

/** A port nothing listens on: bind, read the port, close. */
export const refusedPort = async (): Promise<number> => {
  const server = net.createServer()
  const port = await listen(server)
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

/** A free port for the proxy (the same trick as refusedPort). */
export const freePort = refusedPort

/** Accepts connections and never answers (never reads either). */
export const startSilentServer = async (): Promise<Closable & { accepted(): number }> => {
  let accepted = 0
  const server = net.createServer((s) => {
    accepted++
    s.pause()
  })
  server.on("connection", () => {})
  const sockets = track(server)
  const port = await listen(server)
  return { port, accepted: () => accepted, close: () => closeServer(server, sockets) }
}

/**
 * A listening socket whose accept queue is full, so that further connects hang (SYNs dropped) until the
 * connector's own timeout. Node always accepts, so a small python3 process holds a socket that listens
 * with backlog 0 and never accepts; we fill its queue with one connection of our own.
 * `verify()` checks a fresh connect does hang for `ms`.
 */
export const startBlackhole = async (): Promise<Closable & { verify(ms: number): Promise<boolean> }> => {
  const script = [
    "import socket, sys",
    "s = socket.socket()",
    "s.bind(('127.0.0.1', 0))",
    "s.listen(0)",
    "print(s.getsockname()[1], flush=True)",
    "sys.stdin.read()",
  ].join("\n")
  const child: ChildProcess = spawn("python3", ["-c", script], { stdio: ["pipe", "pipe", "inherit"] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once("error", reject)
    child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())))
  })
  const fillers: net.Socket[] = []
  const tryConnect = (ms: number): Promise<"connected" | "hang" | "error"> =>
    new Promise((resolve) => {
      const s = net.connect(port, LOOPBACK)
      const t = setTimeout(() => {
        s.destroy()
        resolve("hang")
      }, ms)
      s.once("connect", () => {
        clearTimeout(t)
        fillers.push(s)
        resolve("connected")
      })
      s.once("error", () => {
        clearTimeout(t)
        resolve("error")
      })
    })
  // Fill the queue (one, maybe two entries depending on the kernel) until a connect hangs.
  for (let i = 0; i < 4; i++) if ((await tryConnect(300)) === "hang") break
  return {
    port,
    verify: async (ms) => (await tryConnect(ms)) === "hang",
    close: async () => {
      for (const s of fillers) s.destroy()
      child.stdin!.end()
      if (child.exitCode === null) {
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            child.kill("SIGKILL")
          }, 2000)
          child.once("exit", () => {
            clearTimeout(t)
            r()
          })
        })
      }
    },
  }
}
