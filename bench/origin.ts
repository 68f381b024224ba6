/**
 * The origin servers of the bench, in one process of their own (so their CPU is not the proxy's or the generator's):
 *  - bulk: TCP. The client sends one line, then:
 *      "SRC <n>\n"  -> the server writes n bytes and waits for the client to close;
 *      "SINK <n>\n" -> the server reads n bytes, then writes "DONE\n".
 *  - echo: TCP echo (for tunnel-per-request and idle tunnels; holds connections open as long as the client does).
 *  - http: minimal HTTP/1.1 server on raw sockets, keep-alive:
 *      GET /small      -> 100-byte body
 *      GET /bytes/<n>  -> n-byte body (Content-Length)
 *      GET /__stats    -> {"bulk":n,"echo":n,"http":n}: connections accepted so far by each server
 * Prints one JSON line {pid, bulk, echo, http} once listening. Exits when stdin closes.
 * Usage: node bench/origin.ts [--host 127.0.0.1]
 */
import net from "node:net"
import { assertLoopback, flags } from "./lib/wire.ts"

const args = flags(process.argv.slice(2))
const host = args.get("host") ?? "127.0.0.1"
assertLoopback({ host, port: 1 })

const CHUNK = Buffer.alloc(1024 * 1024, 0x61)
const SMALL_BODY = Buffer.alloc(100, 0x62)
const SMALL_RESPONSE = Buffer.concat([
  Buffer.from("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n"),
  SMALL_BODY,
])

/** Write n bytes from the shared chunk with backpressure. */
const writeBytes = (socket: net.Socket, n: number, done: () => void): void => {
  let left = n
  const pump = (): void => {
    while (left > 0) {
      const c = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left)
      left -= c.length
      if (!socket.write(c)) {
        if (left > 0) socket.once("drain", pump)
        else socket.once("drain", done)
        return
      }
    }
    done()
  }
  pump()
}

const onError = (socket: net.Socket): void => {
  socket.on("error", () => socket.destroy())
}

/**
 * Reads of every origin socket land in this one buffer (handlers run synchronously and copy what they keep):
 * no 64 KiB allocation per read, so the origin's CPU stays small next to the proxy's.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024)

/**
 * Re-wrap an accepted socket's handle in a Socket that reads into READ_BUFFER (net.Server has no onread option;
 * the server is created with pauseOnConnect so no read happened yet). Falls back to "data" events.
 */
const adopt = (accepted: net.Socket, onBytes: (socket: net.Socket, view: Buffer) => void): net.Socket => {
  const handle = (accepted as unknown as { _handle?: unknown })._handle
  if (handle === undefined || handle === null) {
    accepted.on("data", (d: Buffer) => onBytes(accepted, d))
    accepted.resume()
    return accepted
  }
  const socket: net.Socket = new net.Socket({
    handle,
    onread: {
      buffer: READ_BUFFER,
      callback: (n: number) => {
        onBytes(socket, READ_BUFFER.subarray(0, n))
        return true
      },
    },
  } as unknown as net.SocketConstructorOpts)
  socket.resume()
  return socket
}

/** Connections accepted per server (GET /__stats on the http port returns them as JSON). */
const acceptedCount = { bulk: 0, echo: 0, http: 0 }

const bulk = net.createServer({ pauseOnConnect: true }, (accepted) => {
  acceptedCount.bulk++
  let line = ""
  let sinkLeft = -1
  const socket = adopt(accepted, (socket, d) => {
    if (sinkLeft >= 0) {
      sinkLeft -= d.length
      if (sinkLeft <= 0) {
        sinkLeft = -1
        socket.write("DONE\n")
      }
      return
    }
    line += d.toString("latin1")
    const nl = line.indexOf("\n")
    if (nl < 0) {
      if (line.length > 100) socket.destroy()
      return
    }
    const cmd = /^(SRC|SINK) (\d+)$/.exec(line.slice(0, nl).trim())
    const after = line.length - nl - 1
    line = ""
    if (cmd === null) return void socket.destroy()
    const n = Number(cmd[2])
    if (cmd[1] === "SRC") writeBytes(socket, n, () => {})
    else {
      sinkLeft = n - after
      if (sinkLeft <= 0) {
        sinkLeft = -1
        socket.write("DONE\n")
      }
    }
  })
  onError(socket)
})

const echo = net.createServer({ pauseOnConnect: true }, (accepted) => {
  acceptedCount.echo++
  const socket = adopt(accepted, (socket, d) => socket.write(Buffer.from(d)))
  onError(socket)
  socket.setNoDelay(true)
})

const CRLFCRLF = Buffer.from("\r\n\r\n")

const http = net.createServer({ pauseOnConnect: true }, (accepted) => {
  acceptedCount.http++
  let buf: Buffer = Buffer.alloc(0)
  let skipBody = 0
  let busy = false
  const work = (): void => {
    while (!busy && socket.writable) {
      if (skipBody > 0) {
        const k = Math.min(skipBody, buf.length)
        skipBody -= k
        buf = buf.subarray(k)
        if (skipBody > 0) return
      }
      const end = buf.indexOf(CRLFCRLF)
      if (end < 0) {
        if (buf.length > 64 * 1024) socket.destroy()
        return
      }
      const head = buf.subarray(0, end).toString("latin1")
      buf = buf.subarray(end + 4)
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      if (cl !== null) skipBody = Number(cl[1])
      const close = /\r\nconnection:[^\r]*close/i.test(head) || /HTTP\/1\.0$/.test(head.slice(0, head.indexOf("\r\n")))
      const target = head.slice(head.indexOf(" ") + 1, head.indexOf(" ", head.indexOf(" ") + 1))
      const path = target.startsWith("http://") ? target.slice(target.indexOf("/", 7)) : target
      const big = /^\/bytes\/(\d+)$/.exec(path)
      if (path === "/small") {
        socket.write(SMALL_RESPONSE)
        if (close) socket.end()
      } else if (big !== null) {
        const n = Number(big[1])
        busy = true
        socket.pause()
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\n${close ? "Connection: close\r\n" : ""}\r\n`,
        )
        writeBytes(socket, n, () => {
          busy = false
          if (close) socket.end()
          else {
            socket.resume()
            work()
          }
        })
      } else if (path === "/__stats") {
        const body = JSON.stringify(acceptedCount)
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
        if (close) socket.end()
      } else {
        socket.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        if (close) socket.end()
      }
    }
  }
  const socket = adopt(accepted, (_socket, d) => {
    buf = buf.length === 0 ? Buffer.from(d) : Buffer.concat([buf, d])
    work()
  })
  onError(socket)
  socket.setNoDelay(true)
})

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen({ host, port: 0, backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port))
  })

const [bulkPort, echoPort, httpPort] = await Promise.all([listen(bulk), listen(echo), listen(http)])
process.stdout.write(JSON.stringify({ pid: process.pid, host, bulk: bulkPort, echo: echoPort, http: httpPort }) + "\n")
process.stdin.on("data", () => {})
process.stdin.on("end", () => process.exit(0))
process.on("SIGTERM", () => process.exit(0))
