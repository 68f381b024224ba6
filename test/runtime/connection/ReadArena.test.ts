/**
 * Sockets read into buffers we supply (internal/ReadArena.ts: a shared one, copied out; private bulk
 * buffers for streaming sockets, read without a copy). These tests
 * drive it over real loopback sockets and check every byte: a client that stops reading (writes to it
 * queue up, so bulk buffers must be replaced), and a response head that arrives in
 * pieces (the core keeps part of it between reads). Note: backpressure pauses a reader as soon as
 * writes queue past the socket's high-water mark, so the hazard that replacing a referenced bulk buffer
 * guards against (a partial write that leaves under 16 KiB queued, then another read) is rare: a mutant
 * without the replacement still passed these tests. The e2e and runtime suites did catch the earlier
 * design's flaw (one arena shared by all sockets, which Node keeps registered per socket).
 */
import { createHash, randomBytes } from "node:crypto"
import * as http from "node:http"
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { BULK_READ_BYTES, readAcceptedInto } from "../../../src/runtime/connection/ReadArena.ts"
import { baseInit, closeServer, listen, startProxy, until } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex")

/** An origin that writes `payload` (in `pieces` writes with pauses) to whoever connects, then ends. */
const sourceOrigin = async (payload: Buffer, pieces: number[]) => {
  const server = net.createServer(async (s) => {
    s.on("error", () => {})
    s.resume() // read (and ignore) the request, so that the proxy's FIN is seen and the socket closes
    let at = 0
    for (const n of pieces) {
      s.write(payload.subarray(at, at + n))
      at += n
      await new Promise((r) => setTimeout(r, 5))
    }
    s.end(payload.subarray(at))
  })
  const port = await listen(server)
  cleanups.push(() => closeServer(server))
  return port
}

/**
 * Reads everything from `socket` like a slow client: it stops for 300 ms after the first bytes and for
 * 100 ms after every further 4 MiB, long enough for the kernel buffers to fill and the proxy's writes
 * to the client to queue (the case where origin bytes must not stay in the shared arena).
 */
const readSlowly = (socket: net.Socket, skipHead: boolean): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let received = 0
    let head = skipHead
    socket.on("data", (d: Buffer) => {
      if (head) {
        const end = d.indexOf("\r\n\r\n")
        if (end < 0) return
        head = false
        d = d.subarray(end + 4)
      }
      const before = received
      received += d.length
      chunks.push(Buffer.from(d))
      if (before === 0 || Math.floor(before / (4 << 20)) !== Math.floor(received / (4 << 20))) {
        socket.pause()
        setTimeout(() => socket.resume(), before === 0 ? 300 : 100)
      }
    })
    socket.on("end", () => resolve(Buffer.concat(chunks)))
    socket.on("error", reject)
  })

describe("origin reads through the shared arena", () => {
  it("delivers every byte of a tunnel download to a slow client", async () => {
    const payload = randomBytes(24 * 1024 * 1024)
    const port = await sourceOrigin(payload, [1, 300_000, 70_000])
    const proxy = await startProxy(baseInit())
    cleanups.push(() => proxy.stop())
    const client = net.connect({ host: "127.0.0.1", port: proxy.port })
    const got = readSlowly(client, true)
    client.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
    const body = await got
    client.destroy()
    expect(body.length).toBe(payload.length)
    expect(sha(body)).toBe(sha(payload))
  })

  it("keeps a response head that arrives in pieces intact, and the body after it", async () => {
    const body = randomBytes(2 * 1024 * 1024)
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Long: ${"v".repeat(3000)}\r\n\r\n`)
    const response = Buffer.concat([head, body])
    const port = await sourceOrigin(response, [10, 1000, 2000, 50_000])
    const proxy = await startProxy(baseInit())
    cleanups.push(() => proxy.stop())
    const client = net.connect({ host: "127.0.0.1", port: proxy.port })
    const got = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = []
      client.on("data", (d: Buffer) => chunks.push(Buffer.from(d)))
      client.on("end", () => resolve(Buffer.concat(chunks)))
    })
    client.end(`GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)
    const all = await got
    const split = all.indexOf("\r\n\r\n")
    expect(all.subarray(0, split).toString("latin1")).toContain(`X-Long: ${"v".repeat(3000)}`)
    expect(sha(all.subarray(split + 4))).toBe(sha(body))
  })
})

describe("readAcceptedIntoArena", () => {
  it("makes an accepted socket read into our buffers, in reads larger than Node's 64 KiB", async () => {
    const reads: number[] = []
    const intoOurs: number[] = []
    let enabled = false
    const ours = Buffer.allocUnsafe(BULK_READ_BYTES)
    const done = new Promise<void>((resolve) => {
      const server = net.createServer({ pauseOnConnect: false }, (socket) => {
        enabled = readAcceptedInto(
          socket,
          () => ours,
          (n: number, buffer: Buffer) => {
            reads.push(n)
            if (buffer === ours) intoOurs.push(n) // the first read goes into the shared buffer, the next ones here
            return true
          },
        )
        socket.on("end", () => {
          socket.end()
          resolve()
        })
      })
      cleanups.push(() => closeServer(server))
      void listen(server).then((port) => {
        const client = net.connect({ host: "127.0.0.1", port }, () => {
          // Written before the server reads, so that the data piles up in the socket buffer.
          client.end(Buffer.alloc(3 * BULK_READ_BYTES, 7))
        })
        client.on("error", () => {})
      })
    })
    await done
    expect(enabled).toBe(true) // if a Node upgrade removes the slots, this says so
    expect(reads.reduce((a, b) => a + b, 0)).toBe(3 * BULK_READ_BYTES)
    expect(intoOurs.length).toBe(reads.length - 1)
    expect(Math.max(...intoOurs)).toBeGreaterThan(64 * 1024)
  })
})

describe("bulk reads on a reused origin connection", () => {
  it("delivers two large responses intact over one pooled origin connection", async () => {
    const body = randomBytes(8 * 1024 * 1024)
    let connections = 0
    const origin = http.createServer((req, res) => {
      req.resume()
      res.setHeader("content-length", body.length)
      res.end(body)
    })
    origin.on("connection", () => connections++)
    const port = await listen(origin as unknown as net.Server)
    cleanups.push(() => closeServer(origin as unknown as net.Server))
    const proxy = await startProxy(baseInit())
    cleanups.push(() => proxy.stop())
    const fetchOnce = () =>
      new Promise<Buffer>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: proxy.port, path: `http://127.0.0.1:${port}/big`, agent: false }, (res) => {
          const chunks: Buffer[] = []
          res.on("data", (d: Buffer) => chunks.push(d))
          res.on("end", () => resolve(Buffer.concat(chunks)))
        })
        req.on("error", reject)
        req.end()
      })
    const first = await fetchOnce()
    await until("the origin connection back in the pool", () => proxy.server.pool.size === 1)
    const second = await fetchOnce()
    expect(sha(first)).toBe(sha(body))
    expect(sha(second)).toBe(sha(body))
    expect(connections).toBe(1)
    expect(proxy.server.pool.hits).toBe(1)
  })
})

describe("Node's onread contract that Connection's one buffer generator relies on", () => {
  // Connection.ts serves every socket with one module-level buffer generator: the read callback notes
  // its socket and the generator, which Node calls with no arguments, takes it. That is only right if
  // Node calls the generator right after the read callback of the same socket, every time. If a Node
  // upgrade changes that, this fails (rather than sockets silently reading into each other's buffers).
  it("calls the buffer generator right after each read callback of the same socket", async () => {
    const server = net.createServer(async (s) => {
      for (let i = 0; i < 5; i++) {
        s.write(Buffer.alloc(1000 + i, i))
        await new Promise((r) => setTimeout(r, 10))
      }
      s.end()
    })
    const port = await listen(server)
    cleanups.push(() => closeServer(server))
    const calls: Array<string> = []
    const buffer = Buffer.alloc(4096)
    let total = 0
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({
        host: "127.0.0.1",
        port,
        onread: {
          buffer: () => {
            calls.push("buffer")
            return buffer
          },
          callback: (n) => {
            calls.push("read")
            total += n
            return true
          },
        },
      })
      socket.on("error", reject)
      socket.on("end", () => {
        socket.destroy()
        resolve()
      })
    })
    expect(total).toBe(5 * 1000 + 10)
    const reads = calls.filter((c) => c === "read").length
    expect(reads).toBeGreaterThan(0)
    // Any calls before the first read (when the handle is made), then strictly read, buffer, read, buffer...
    const first = calls.indexOf("read")
    expect(calls.slice(0, first).every((c) => c === "buffer")).toBe(true)
    expect(calls.slice(first)).toEqual(Array.from({ length: reads }, () => ["read", "buffer"]).flat())
  })
})
