/**
 * Origin connection reuse, over real loopback sockets: the worker's OriginPool takes the origin
 * connections the core releases as reusable and hands them to the next request for the same origin,
 * from the same client or another; it drops the ones the origin closes while idle.
 */
import * as http from "node:http"
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { Deadlines } from "../../../src/runtime/timers/Deadlines.ts"
import { OriginPool } from "../../../src/runtime/dial/OriginPool.ts"
import { baseInit, closeServer, listen, startProxy, until } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** An HTTP origin that counts the TCP connections it accepted. */
const countingOrigin = async (keepAliveTimeout = 5_000) => {
  let connections = 0
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    req.resume()
    req.on("end", () => res.end(`${req.url}`))
  })
  server.keepAliveTimeout = keepAliveTimeout
  server.on("connection", (s) => {
    connections++
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
  })
  const port = await listen(server as unknown as net.Server)
  cleanups.push(() => closeServer(server as unknown as net.Server))
  return {
    port,
    connections: () => connections,
    dropAll: () => {
      for (const s of sockets) s.destroy()
    },
  }
}

/** One request on a fresh client connection through the proxy; resolves with the response body. */
const get = (proxyPort: number, url: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: proxyPort, path: url, agent: false, headers: { connection: "close" } }, (res) => {
      let body = ""
      res.setEncoding("latin1")
      res.on("data", (d: string) => (body += d))
      res.on("end", () => resolve(`${res.statusCode} ${body}`))
    })
    req.on("error", reject)
    req.end()
  })

/** The next turn of the event loop: a connection put in the pool can be taken from then on. */
const nextTurn = () => new Promise((r) => setImmediate(r))

describe("origin connection reuse", () => {
  it("serves sequential requests from different clients over one origin connection", async () => {
    const origin = await countingOrigin()
    const proxy = await startProxy(baseInit())
    cleanups.push(() => proxy.stop())
    for (const path of ["/a", "/b", "/c"]) {
      expect(await get(proxy.port, `http://127.0.0.1:${origin.port}${path}`)).toBe(`200 ${path}`)
      await until("the origin connection back in the pool", () => proxy.server.pool.size === 1)
    }
    expect(origin.connections()).toBe(1)
    expect(proxy.server.pool.hits).toBe(2)
  })

  it("does not hand out a connection the origin closed while it was idle", async () => {
    const origin = await countingOrigin()
    const proxy = await startProxy(baseInit())
    cleanups.push(() => proxy.stop())
    expect(await get(proxy.port, `http://127.0.0.1:${origin.port}/one`)).toBe("200 /one")
    await until("the origin connection in the pool", () => proxy.server.pool.size === 1)
    origin.dropAll()
    await until("the closed connection out of the pool", () => proxy.server.pool.size === 0)
    expect(await get(proxy.port, `http://127.0.0.1:${origin.port}/two`)).toBe("200 /two")
    expect(origin.connections()).toBe(2)
  })

  it("keeps origins apart by host:port", async () => {
    const a = await countingOrigin()
    const b = await countingOrigin()
    const proxy = await startProxy(baseInit())
    cleanups.push(() => proxy.stop())
    expect(await get(proxy.port, `http://127.0.0.1:${a.port}/x`)).toBe("200 /x")
    await until("a's connection in the pool", () => proxy.server.pool.size === 1)
    expect(await get(proxy.port, `http://127.0.0.1:${b.port}/y`)).toBe("200 /y")
    expect([a.connections(), b.connections()]).toEqual([1, 1])
  })
})

describe("OriginPool", () => {
  const pair = async () => {
    const accepted: net.Socket[] = []
    const server = net.createServer((s) => accepted.push(s))
    const port = await listen(server)
    const client = net.connect({ host: "127.0.0.1", port })
    await new Promise((r) => client.once("connect", r))
    cleanups.push(async () => {
      client.destroy()
      for (const s of accepted) s.destroy()
      await closeServer(server)
    })
    return { client, accepted }
  }

  it("expires idle connections at the idle deadline and destroys them", async () => {
    let now = 1_000
    const deadlines = new Deadlines({ clock: () => now })
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines, { idleMs: 30, maxPerOrigin: 4, maxTotal: 8 })
    const { client } = await pair()
    pool.put("o:80", client)
    expect(pool.size).toBe(1)
    now = 1_029
    deadlines.fire()
    expect(pool.size).toBe(1)
    expect(client.destroyed).toBe(false)
    now = 1_030
    deadlines.fire()
    expect(pool.size).toBe(0)
    expect(client.destroyed).toBe(true)
    expect(pool.take("o:80")).toBeUndefined()
  })

  it("keeps at most maxPerOrigin per key, dropping the oldest", async () => {
    const deadlines = new Deadlines()
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines, { idleMs: 10_000, maxPerOrigin: 2, maxTotal: 8 })
    const sockets = await Promise.all([pair(), pair(), pair()])
    for (const { client } of sockets) pool.put("o:80", client)
    expect(pool.size).toBe(2)
    expect(sockets[0]!.client.destroyed).toBe(true)
    await nextTurn()
    expect(pool.take("o:80")).toBe(sockets[2]!.client)
    pool.close()
    expect(pool.size).toBe(0)
    expect(sockets[1]!.client.destroyed).toBe(true)
    pool.put("o:80", sockets[2]!.client)
    expect(pool.size).toBe(0) // closed: pools nothing more
  })

  it("puts its listeners on a socket once, however often it comes back, and still notices the origin's FIN", async () => {
    const deadlines = new Deadlines()
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines)
    const { client, accepted } = await pair()
    const counts = () => ["data", "end", "error", "close"].map((e) => client.listenerCount(e))
    pool.put("o:80", client)
    const once = counts()
    for (let i = 0; i < 5; i++) {
      await nextTurn()
      expect(pool.take("o:80")).toBe(client)
      expect(client.isPaused()).toBe(false) // the taker decides whether it flows
      pool.put("o:80", client)
    }
    expect(counts()).toEqual(once)
    await nextTurn()
    expect(pool.take("o:80")).toBe(client)
    // While taken, bytes are the taker's business: the pool leaves it alone. (Our listener comes after the
    // pool's, so when it runs the pool has seen the bytes.)
    const read = new Promise((r) => client.once("data", r))
    accepted[0]!.write("a response")
    await read
    expect(client.destroyed).toBe(false)
    pool.put("o:80", client)
    expect(pool.size).toBe(1)
    accepted[0]!.end() // while pooled again, the origin's FIN drops it
    await until("the connection out of the pool", () => pool.size === 0)
    expect(client.destroyed).toBe(true)
  })

  it("hands out no connection in the turn of the event loop it was put in: bytes already sent are read first (issue 17 item 6)", async () => {
    const deadlines = new Deadlines()
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines)
    const [older, newer] = await Promise.all([pair(), pair()])
    pool.put("o:80", older.client)
    await nextTurn()
    // The origin's stray bytes are on their way when the connection comes back, not yet read.
    newer.accepted[0]!.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
    expect(newer.client.readableLength).toBe(0)
    pool.put("o:80", newer.client)
    expect(pool.take("o:80")).toBe(older.client) // the older one, whose turn has passed
    expect(pool.take("o:80")).toBeUndefined() // the newer one waits for the loop to look at it
    expect(pool.size).toBe(1)
    await until("the newer connection dropped for its stray bytes", () => newer.client.destroyed)
    expect(pool.size).toBe(0)
  })

  it("drops a connection on which the idle origin sends bytes", async () => {
    const deadlines = new Deadlines()
    cleanups.push(() => deadlines.stop())
    const pool = new OriginPool(deadlines)
    const { client, accepted } = await pair()
    pool.put("o:80", client)
    accepted[0]!.write("unsolicited")
    await until("the connection out of the pool", () => pool.size === 0)
    expect(client.destroyed).toBe(true)
  })
})
