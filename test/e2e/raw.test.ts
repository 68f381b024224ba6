/**
 * Raw sockets for what real clients will not do: keep-alive across origins, pipelining, a head one byte
 * at a time, half-close through tunnels, early CONNECT bytes, error statuses, the access log.
 */
import { createHash, randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { refusedPort, startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, get, openTunnel, until } from "./support/wire.ts"

let proxy: Proxy
let a: HttpOrigin
let b: HttpOrigin
let manual: Awaited<ReturnType<typeof startTcpServer>>
let echo: Awaited<ReturnType<typeof startTcpServer>>
let slam: Awaited<ReturnType<typeof startTcpServer>>
let closedPort: number
let v6: HttpOrigin

beforeAll(async () => {
  ;[a, b, manual, echo, slam, v6, closedPort, proxy] = await Promise.all([
    startHttpOrigin("a"),
    startHttpOrigin("b"),
    startTcpServer("manual"),
    startTcpServer("echo"),
    startTcpServer("slam"),
    startHttpOrigin("v6", "::1"),
    refusedPort(),
    startProxy({ workers: 2, graceMs: 2000, maxRequestLine: 8192, maxHeadBytes: 65536 }),
  ])
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([a?.close(), b?.close(), manual?.close(), echo?.close(), slam?.close(), v6?.close()])
})

describe("HTTP forwarding on raw sockets", () => {
  it("several requests on one proxy connection, to two different origins", async () => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(`http://localhost:${a.port}/name`))
      const r1 = await c.readResponse()
      await c.write(get(`http://127.0.0.1:${b.port}/name`))
      const r2 = await c.readResponse()
      await c.write(get(`http://localhost:${a.port}/small`))
      const r3 = await c.readResponse()
      expect([r1.status, r2.status, r3.status]).toEqual([200, 200, 200])
      expect(r1.body.toString()).toBe("hello from a\n")
      expect(r2.body.toString()).toBe("hello from b\n")
      expect(r3.body.toString()).toBe("hello from a\n")
      expect(c.closed || c.ended).toBe(false)
      expect(b.seen.find((s) => s.url === "/name")?.headers.host).toBe(`127.0.0.1:${b.port}`)
    } finally {
      c.destroy()
    }
  })

  it("pipelining: two requests in one write, responses in order", async () => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(`http://localhost:${a.port}/slow?ms=200`) + get(`http://localhost:${b.port}/name`))
      const r1 = await c.readResponse()
      const r2 = await c.readResponse()
      expect(r1.body.toString()).toBe("slow\n")
      expect(r1.headers["x-origin"]).toBe("a")
      expect(r2.body.toString()).toBe("hello from b\n")
      expect(r2.headers["x-origin"]).toBe("b")
    } finally {
      c.destroy()
    }
  })

  it("a request head sent one byte at a time", async () => {
    const c = await Conn.open(proxy.port)
    try {
      const head = get(`http://localhost:${a.port}/small?bytewise`, "User-Agent: e2e\r\n")
      for (const ch of head) await c.write(ch)
      const r = await c.readResponse()
      expect(r.status).toBe(200)
      expect(r.body.toString()).toBe("hello from a\n")
    } finally {
      c.destroy()
    }
  })

  it("IPv6 literal origins: absolute-form http://[::1]:port/ and CONNECT [::1]:port", async () => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(`http://[::1]:${v6.port}/name`))
      const r = await c.readResponse()
      expect(r.status).toBe(200)
      expect(r.body.toString()).toBe("hello from v6\n")
      expect(v6.seen.find((s) => s.url === "/name")?.headers.host).toBe(`[::1]:${v6.port}`)
    } finally {
      c.destroy()
    }
    const t = await openTunnel(proxy.port, `[::1]:${v6.port}`)
    try {
      await t.write(`GET /small HTTP/1.1\r\nHost: [::1]:${v6.port}\r\n\r\n`)
      expect((await t.readResponse()).body.toString()).toBe("hello from v6\n")
    } finally {
      t.destroy()
    }
  })

  it("an HTTP/1.0 client never gets chunked coding: the body is close-delimited", async () => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(`GET http://localhost:${a.port}/chunked?n=3 HTTP/1.0\r\n\r\n`)
      const h = await c.readHead()
      expect(h.status).toBe(200)
      expect(h.headers["transfer-encoding"]).toBeUndefined()
      expect((await c.readToEnd()).toString()).toBe("chunk 0\nchunk 1\nchunk 2\n")
    } finally {
      c.destroy()
    }
  })

  it("hop-by-hop fields are removed, Via is added, Host is rewritten", async () => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(
        `GET http://localhost:${a.port}/headers HTTP/1.1\r\nHost: wrong.example\r\nConnection: keep-alive, X-Hop\r\n` +
          `X-Hop: secret\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nX-End: kept\r\n\r\n`,
      )
      const r = await c.readResponse()
      expect(r.status).toBe(200)
      expect(r.headers["via"]).toMatch(/^1\.1 /)
      const seen = JSON.parse(r.body.toString()) as { headers: Record<string, string> }
      expect(seen.headers["host"]).toBe(`localhost:${a.port}`)
      expect(seen.headers["x-hop"]).toBeUndefined()
      expect(seen.headers["proxy-connection"]).toBeUndefined()
      expect(seen.headers["proxy-authorization"]).toBeUndefined()
      expect(seen.headers["x-end"]).toBe("kept")
      expect(seen.headers["via"]).toMatch(/^1\.1 /)
    } finally {
      c.destroy()
    }
  })

  it("Upgrade: a 101 from the origin turns the connection into a tunnel", async () => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(
        `GET http://localhost:${a.port}/up HTTP/1.1\r\nHost: localhost:${a.port}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`,
      )
      const h = await c.readHead()
      expect(h.status).toBe(101)
      expect(h.headers["upgrade"]).toBe("echo")
      await c.write("raw bytes after 101")
      expect((await c.readBytes(19)).toString()).toBe("raw bytes after 101")
      c.end()
      await c.waitEnd()
    } finally {
      c.destroy()
    }
  })
})

describe("CONNECT tunnels on raw sockets", () => {
  it("half-close client -> origin: the origin sees the end and can still send", async () => {
    const accepted = manual.nextConnection()
    const c = await openTunnel(proxy.port, `127.0.0.1:${manual.port}`)
    try {
      const o = await accepted
      await c.write("ping")
      c.end()
      await until("origin sees the client's end", () => o.ended)
      expect(Buffer.concat(o.received).toString()).toBe("ping")
      expect(c.ended).toBe(false)
      o.socket.write("pong after your FIN")
      expect((await c.readBytes(19)).toString()).toBe("pong after your FIN")
      o.socket.end()
      await c.waitEnd()
      await c.closedPromise
    } finally {
      c.destroy()
    }
  })

  it("half-close origin -> client: the client sees the end and can still send", async () => {
    const accepted = manual.nextConnection()
    const c = await openTunnel(proxy.port, `localhost:${manual.port}`)
    try {
      const o = await accepted
      o.socket.write("bye")
      o.socket.end()
      expect((await c.readToEnd()).toString()).toBe("bye")
      expect(c.ended).toBe(true)
      await c.write("still talking")
      await until("origin gets the bytes sent after its FIN", () => Buffer.concat(o.received).toString() === "still talking")
      c.end()
      await until("origin sees the end", () => o.ended)
      await c.closedPromise
    } finally {
      c.destroy()
    }
  })

  it("16 MiB each way through a tunnel at once, byte for byte (backpressure both ways)", { timeout: 60_000 }, async () => {
    const c = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`)
    try {
      const data = randomBytes(16 * 1024 * 1024)
      const reading = c.readBytes(data.length, 50_000)
      await c.write(data)
      const back = await reading
      expect(createHash("sha256").update(back).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"))
      c.end()
      await c.waitEnd()
    } finally {
      c.destroy()
    }
  })

  it("bytes sent right after the CONNECT head, before the 200, reach the origin", async () => {
    const accepted = manual.nextConnection()
    const c = await Conn.open(proxy.port)
    try {
      const authority = `127.0.0.1:${manual.port}`
      await c.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\nEARLY-BYTES\x00\xff`)
      const h = await c.readHead()
      expect(h.status).toBe(200)
      const o = await accepted
      await until("origin gets the early bytes", () => Buffer.concat(o.received).length >= 13)
      expect(Buffer.concat(o.received)).toEqual(Buffer.from("EARLY-BYTES\x00\xff", "latin1"))
      o.socket.write("reply")
      expect((await c.readBytes(5)).toString()).toBe("reply")
    } finally {
      c.destroy()
    }
  })
})

describe("chunked framing on the wire", () => {
  it("chunk extensions are dropped and forbidden trailer fields removed before the origin", async () => {
    const accepted = manual.nextConnection()
    const c = await Conn.open(proxy.port)
    try {
      await c.write(
        `POST http://127.0.0.1:${manual.port}/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n` +
          `3;sig="a b" ; n=1\r\nabc\r\n0\r\nContent-Length: 9\r\nX-Sum: 1\r\nHost: evil\r\n\r\n`,
      )
      const o = await accepted
      const seen = () => Buffer.concat(o.received).toString("latin1")
      await until("origin gets the whole body", () => seen().endsWith("X-Sum: 1\r\n\r\n"))
      expect(seen().slice(seen().indexOf("\r\n\r\n") + 4)).toBe("3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n")
      // Connection: close, so that this origin connection is not pooled for the next test's request.
      o.socket.end("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
      expect((await c.readResponse({ head: true })).status).toBe(204)
    } finally {
      c.destroy()
    }
  })

  it("an empty chunk extension is a 400, and no byte of its line reaches the origin", async () => {
    const accepted = manual.nextConnection()
    const c = await Conn.open(proxy.port)
    try {
      await c.write(
        `POST http://127.0.0.1:${manual.port}/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n2;\r\nab\r\n`,
      )
      const r = await c.readResponse()
      expect(r.status).toBe(400)
      expect(r.body.toString()).toMatch(/empty chunk extension name/)
      const o = await accepted
      await until("origin connection closed", () => o.ended || o.socket.destroyed)
      // The origin is abandoned (destroyed) at the 400: it may get the valid chunk or part of it, never the bad line.
      const seen = Buffer.concat(o.received).toString("latin1")
      const body = seen.includes("\r\n\r\n") ? seen.slice(seen.indexOf("\r\n\r\n") + 4) : ""
      expect("1\r\na\r\n".startsWith(body), JSON.stringify(body)).toBe(true)
    } finally {
      c.destroy()
    }
  })
})

/** Send `request`, read one response, check the proxy closes the connection after it. */
const expectError = async (request: string | Buffer, status: number): Promise<string> => {
  const c = await Conn.open(proxy.port)
  try {
    await c.write(request)
    const r = await c.readResponse()
    expect(r.status, r.rawHead).toBe(status)
    expect(r.headers["connection"]).toBe("close")
    expect(r.headers["content-type"]).toMatch(/^text\/plain/)
    await c.waitEnd()
    return r.body.toString()
  } finally {
    c.destroy()
  }
}

describe("error statuses", () => {
  it("502 when the origin refuses the connection (HTTP and CONNECT)", async () => {
    await expectError(get(`http://127.0.0.1:${closedPort}/`), 502)
    await expectError(`CONNECT 127.0.0.1:${closedPort} HTTP/1.1\r\nHost: 127.0.0.1:${closedPort}\r\n\r\n`, 502)
  })

  it("502 when the name does not resolve (*.invalid)", async () => {
    await expectError(get("http://nowhere.invalid/"), 502)
    await expectError("CONNECT nowhere.invalid:443 HTTP/1.1\r\nHost: nowhere.invalid:443\r\n\r\n", 502)
  })

  it("502 when the origin closes without a response", async () => {
    await expectError(get(`http://127.0.0.1:${slam.port}/dies`), 502)
  })

  it("400 for malformed requests", async () => {
    await expectError("GET /origin-form HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)
    await expectError("this is not http\r\n\r\n", 400)
    await expectError(`GET http://localhost:${a.port}/ HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n`, 400)
    await expectError(
      `POST http://localhost:${a.port}/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
    )
    await expectError(`GET http://localhost:${a.port}/ HTTP/1.1\r\n\r\n`, 400) // HTTP/1.1 without Host
  })

  it("400 at once for a TLS ClientHello sent to the plain proxy port, connecting nowhere", async () => {
    // What `printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' | nc 127.0.0.1 8888` sends: a TLS record
    // header and the start of a ClientHello, with no line end ever. The answer must not wait for headTimeout
    // (30 s here, longer than the reader waits): it comes at the first byte.
    const c = await Conn.open(proxy.port)
    try {
      await c.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]))
      const r = await c.readResponse()
      expect(r.status).toBe(400)
      expect(r.headers["connection"]).toBe("close")
      expect(r.body.toString()).toMatch(/plain HTTP proxy: use http:\/\/ \(not https:\/\/\) in the proxy URL/)
      await c.waitEnd()
    } finally {
      c.destroy()
    }
    const line = await proxy.waitForLine((l) => l.includes("TLS handshake"))
    // Logged as refused at its first byte, with nothing from (or to) any origin.
    expect(line).toMatch(/ - - 400 1\/0 .*client-error/)
  })

  it("400 at the first impossible byte of a request line, before any line end", async () => {
    for (const start of ["GET http://localhost/\x01", "G\x00", "GET http://localhost/ HTTQ", "GET http://localhost/ HTTP/1.1x"]) {
      const c = await Conn.open(proxy.port)
      try {
        await c.write(start) // no LF: only the impossible byte can end this
        const r = await c.readResponse()
        expect(r.status, JSON.stringify(start)).toBe(400)
        await c.waitEnd()
      } finally {
        c.destroy()
      }
    }
  })

  it("431 for a huge head", async () => {
    const big = `X-Big: ${"a".repeat(8000)}\r\n`.repeat(10)
    await expectError(get(`http://localhost:${a.port}/`, big), 431)
  })

  it("431 for too many header fields", async () => {
    const many = Array.from({ length: 150 }, (_, i) => `X-F${i}: v\r\n`).join("")
    await expectError(get(`http://localhost:${a.port}/`, many), 431)
  })

  it("414 for a long URI, answered before the head ends", async () => {
    const c = await Conn.open(proxy.port)
    try {
      await c.write(`GET http://localhost:${a.port}/${"x".repeat(10_000)}`) // no end of line yet
      const r = await c.readResponse()
      expect(r.status).toBe(414)
      await c.waitEnd()
    } finally {
      c.destroy()
    }
  })

  it("405 TRACE, 501 https:// in absolute form, 505 HTTP/2.0", async () => {
    await expectError(`TRACE http://localhost:${a.port}/ HTTP/1.1\r\nHost: a\r\n\r\n`, 405)
    await expectError(`GET https://localhost:${a.port}/ HTTP/1.1\r\nHost: a\r\n\r\n`, 501)
    await expectError(`GET http://localhost:${a.port}/ HTTP/2.0\r\nHost: a\r\n\r\n`, 505)
  })

  it("508 for a request that already went through this proxy (Via names it)", async () => {
    await expectError(get(`http://localhost:${a.port}/loop`, "Via: 1.1 hctunnel\r\n"), 508)
    expect(a.seen.filter((s) => s.url === "/loop")).toEqual([])
  })

  it("nothing malformed reaches the origin", async () => {
    const before = a.seen.length
    await expectError(`GET http://localhost:${a.port}/smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy`, 400)
    // The proxy's record of it: refused. Then a request sent afterwards reaches the origin, and it alone:
    // the refused one, had it been forwarded, would have been dialled before it.
    await proxy.waitForLine((l) => l.includes(`GET http://localhost:${a.port}/smuggle 400 `))
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(`http://localhost:${a.port}/small?after-smuggle`))
      expect((await c.readResponse()).status).toBe(200)
    } finally {
      c.destroy()
    }
    expect(a.seen.slice(before).map((s) => s.url)).toEqual(["/small?after-smuggle"])
  })
})

describe("access log", () => {
  it("one line per request with method, target and status", async () => {
    const target = `http://localhost:${a.port}/small?log=${Date.now()}`
    const c = await Conn.open(proxy.port)
    try {
      await c.write(get(target))
      expect((await c.readResponse()).status).toBe(200)
      const line = await proxy.waitForLine((l) => l.includes(target))
      expect(line).toMatch(/\bGET\b/)
      expect(line).toMatch(/\b200\b/)
      // A second request on the same connection (the same worker, whose lines are written in order): once
      // its line is there, a second line for the first request would be too.
      await c.write(get(`${target}&next`))
      expect((await c.readResponse()).status).toBe(200)
      await proxy.waitForLine((l) => l.includes(`${target}&next`))
    } finally {
      c.destroy()
    }
    expect(proxy.stdout.filter((l) => l.includes(target) && !l.includes("&next"))).toHaveLength(1)
  })

  it("errors and tunnels are logged too", async () => {
    const target = `http://127.0.0.1:${closedPort}/refused-${Date.now()}`
    await expectError(get(target), 502)
    const line = await proxy.waitForLine((l) => l.includes(target))
    expect(line).toMatch(/\bGET\b.*\b502\b/)
    const accepted = manual.nextConnection()
    const t = await openTunnel(proxy.port, `127.0.0.1:${manual.port}`)
    const o = await accepted
    t.end()
    await until("origin sees the end", () => o.ended)
    o.socket.end()
    await t.closedPromise
    await proxy.waitForLine((l) => /\bCONNECT\b/.test(l) && l.includes(`127.0.0.1:${manual.port}`) && /\b200\b/.test(l))
  })
})
