/**
 * What the Postman reports beyond its actions' tags, table-driven: the exact bytes it holds in each state
 * (`bufferedBytes`), the details its logs and error responses carry, and the limits of a chunked body.
 */
import { describe, expect, it } from "vitest"
import { connect, Harness } from "./harness.ts"

const logOf = (h: Harness) => h.logs.at(-1)
const body = (h: Harness) => h.clientText().split("\r\n\r\n").slice(1).join("\r\n\r\n")

describe("bufferedBytes: exactly the bytes the core holds", () => {
  it.each<[string, (h: Harness) => void, number]>([
    ["a new connection", () => {}, 0],
    ["part of a head", (h) => h.client("GET http://a/ HT"), 16],
    ["a whole head and a pipelined part", (h) => h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\nGET http://a/x"), 14],
    ["Connecting with body bytes queued", (h) => h.client("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"), 3],
    [
      "Forwarding with part of the response head",
      (h) => {
        h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")
        connect(h)
        h.fromOrigin("HTTP/1.1 200 OK\r\nContent-")
      },
      25,
    ],
    [
      "Forwarding with a pipelined request held",
      (h) => {
        h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")
        connect(h)
        h.client("GET http://a/2 HTTP/1.1\r\n")
      },
      25,
    ],
    [
      "a tunnel",
      (h) => {
        h.client("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
        connect(h)
        h.client("abc")
        h.fromOrigin("defg")
      },
      0,
    ],
    [
      "Closed, then bytes that are ignored",
      (h) => {
        h.send({ _tag: "Errored", side: "client", message: "reset" })
        h.client("late bytes")
      },
      0,
    ],
  ])("%s", (_what, drive, expected) => {
    const h = new Harness()
    drive(h)
    expect(h.postman.bufferedBytes).toBe(expected)
  })

  it("Authorizing with body bytes queued", () => {
    const h = new Harness({}, "hctunnel", true)
    h.client("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhe")
    expect(h.postman.state).toBe("Authorizing")
    expect(h.postman.bufferedBytes).toBe(2)
  })
})

describe("details in logs and error responses", () => {
  it("an errored client socket: the runtime's message", () => {
    const h = new Harness()
    h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")
    h.send({ _tag: "Errored", side: "client", message: "ECONNRESET" })
    expect(logOf(h)?.detail).toBe("client: ECONNRESET")
  })
  it.each([
    ["", "403 Forbidden: destination a:81 denied\n"],
    ["10.0.0.0/8 is not allowed", "403 Forbidden: 10.0.0.0/8 is not allowed\n"],
  ])("a denied destination, message %j", (message, expected) => {
    const h = new Harness()
    h.client("GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n")
    h.markOrigin("closed")
    h.send({ _tag: "ConnectFailed", reason: "denied", message })
    expect(body(h)).toBe(expected)
    expect(logOf(h)?.outcome).toBe("denied")
  })
})

describe("a chunked request body's limits", () => {
  const post = (h: Harness) => {
    h.client("POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    connect(h)
  }
  it.each([
    ["a chunk-size line of 4096 bytes is read", `1;${"x".repeat(4092)}\r\na\r\n0\r\n\r\n`, true],
    ["a chunk-size line longer than 4096 bytes is refused", `1;${"x".repeat(4093)}\r\na\r\n0\r\n\r\n`, false],
  ])("%s", (_what, chunks, ok) => {
    const h = new Harness()
    post(h)
    h.client(chunks)
    expect(h.postman.closed).toBe(!ok)
    if (!ok) expect(logOf(h)?.detail).toMatch(/chunk size line longer than 4096 bytes/)
  })
  it.each([
    ["trailers up to maxHeadBytes are read", 1024 - 4, true],
    ["trailers larger than maxHeadBytes are refused", 1024 + 10, false],
  ])("%s", (_what, size, ok) => {
    const h = new Harness({ maxHeadBytes: 1024 })
    post(h)
    h.client(`1\r\na\r\n0\r\nX: ${"t".repeat(size - 5)}\r\n\r\n`)
    expect(h.postman.closed).toBe(!ok)
    if (!ok) expect(logOf(h)?.detail).toMatch(/trailer section larger than 1024 bytes/)
  })
})

describe("bytes after the client's FIN", () => {
  it("are not queued for the origin while connecting", () => {
    const h = new Harness()
    h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")
    h.send({ _tag: "Ended", side: "client" })
    h.client("late")
    expect(h.postman.bufferedBytes).toBe(0)
    connect(h)
    expect(h.originText()).not.toContain("late")
  })
})

describe("a forwarding loop (Via names us)", () => {
  it.each([
    "Via: 1.1 hctunnel",
    "Via: 1.0 other, 1.1 hctunnel",
    "Via: 1.1  hctunnel",
    "Via: 1.1\thctunnel (comment)",
    "Via: 1.1 a,1.1 hctunnel",
  ])("%s: 508", (via) => {
    const h = new Harness()
    h.client(`GET http://a/ HTTP/1.1\r\nHost: a\r\n${via}\r\n\r\n`)
    expect(body(h)).toBe("508 Loop Detected: the request already passed through this proxy (Via)\n")
  })
  it.each(["Via: 1.1 hctunnel2", "Via: hctunnel", "Via: 1.1 other hctunnel"])("%s: forwarded", (via) => {
    const h = new Harness()
    h.client(`GET http://a/ HTTP/1.1\r\nHost: a\r\n${via}\r\n\r\n`)
    expect(h.connects).toHaveLength(1)
  })
})

describe("an upgrade needs both Connection: upgrade and Upgrade", () => {
  const switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
  it.each([
    ["Connection: upgrade\r\nUpgrade: websocket\r\n", "Tunnel"],
    ["Upgrade: websocket\r\n", "Closed"],
    ["Connection: upgrade\r\n", "Closed"],
  ])("%j: a 101 leads to %s", (fields, state) => {
    const h = new Harness()
    h.client(`GET http://a/ HTTP/1.1\r\nHost: a\r\n${fields}\r\n`)
    connect(h)
    h.fromOrigin(switching)
    expect(h.postman.state).toBe(state)
    if (state === "Closed") expect(h.clientText()).toMatch(/^HTTP\/1\.1 502 /)
  })
})

describe("proxy authentication", () => {
  it("asks for every Proxy-Authorization value, joined", () => {
    const h = new Harness({}, "hctunnel", true)
    h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic a\r\nProxy-Authorization: Basic b\r\n\r\n")
    expect(h.authentications).toEqual(["Basic a, Basic b"])
  })
  it.each([
    ["a GET: nothing left to read, the connection stays", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", "AwaitingHead"],
    ["a POST whose body has not arrived", "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "Closed"],
    ["a POST whose body arrived too (still unread)", "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "Closed"],
    ["a POST with an empty body", "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "AwaitingHead"],
    ["a CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "AwaitingHead"],
    ["a CONNECT with early tunnel bytes", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nearly", "Closed"],
  ])("a 407 after %s: %s", (_what, request, state) => {
    const h = new Harness({}, "hctunnel", true)
    h.client(request)
    h.send({ _tag: "AuthenticationFailed", reason: "invalid", message: "wrong password" })
    expect(h.clientText()).toMatch(/^HTTP\/1\.1 407 /)
    expect(h.postman.state).toBe(state)
  })
})

describe("origin answers", () => {
  const get = (h: Harness, upstream?: { proxy: string }) => {
    h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    h.markOrigin("open")
    h.send(upstream === undefined ? { _tag: "Connected" } : { _tag: "Connected", upstream })
  }
  it.each([
    ["HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "upstream proxy p:3128 answered 407 Proxy Authentication Required"],
    ["HTTP/1.1 407\r\n\r\n", "upstream proxy p:3128 answered 407"],
    ["HTTP/1.1 407 \r\n\r\n", "upstream proxy p:3128 answered 407"],
  ])("a parent proxy's %j is our 502: %s", (answer, detail) => {
    const h = new Harness()
    get(h, { proxy: "p:3128" })
    h.fromOrigin(answer)
    expect(body(h)).toBe(`502 Bad Gateway: ${detail}\n`)
  })
  it("a response with both framings is a 502 that says why", () => {
    const h = new Harness()
    get(h)
    h.fromOrigin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
    expect(body(h)).toBe("502 Bad Gateway: malformed response from the origin: both Transfer-Encoding and Content-Length in the response\n")
  })
  it("bytes after a 101 in the same read are the new protocol's, relayed and counted", () => {
    const h = new Harness()
    get(h)
    h.client("client-early")
    h.fromOrigin("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nserver-first")
    expect(h.postman.state).toBe("Tunnel")
    expect(h.clientText().endsWith("\r\n\r\nserver-first")).toBe(true)
    expect(h.originText().endsWith("\r\n\r\nclient-early")).toBe(true)
    h.send({ _tag: "Ended", side: "client" })
    h.send({ _tag: "Ended", side: "origin" })
    const log = logOf(h)
    expect([log?.status, log?.bytesFromOrigin]).toEqual([101, 89])
  })
})

describe("response heads forwarded", () => {
  const request = (h: Harness, head: string) => {
    h.client(head)
    connect(h)
  }
  it("a final response's Upgrade is dropped (only a 101 keeps it)", () => {
    const h = new Harness()
    request(h, "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n")
    h.fromOrigin("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n")
    expect(h.clientText()).toBe("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 hctunnel\r\n\r\n")
  })
  it("an interim response's Upgrade is dropped too", () => {
    const h = new Harness()
    request(h, "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")
    h.fromOrigin("HTTP/1.1 103 Early Hints\r\nUpgrade: h2c\r\nLink: </a>\r\n\r\n")
    expect(h.clientText()).toBe("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nVia: 1.1 hctunnel\r\n\r\n")
  })
  it("an HTTP/1.0 client gets no interim response", () => {
    const h = new Harness()
    request(h, "GET http://a/ HTTP/1.0\r\nHost: a\r\n\r\n")
    h.fromOrigin("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    expect(h.clientText()).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
  })
  it("a malformed response body: the log says why", () => {
    const h = new Harness()
    request(h, "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")
    h.fromOrigin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    expect(logOf(h)?.detail).toMatch(/^malformed response body from the origin: /)
  })
  it("an upgrade: its log is an upgrade's, with the bytes both ways", () => {
    const head = "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    const switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    const h = new Harness()
    request(h, head)
    h.client("early")
    h.fromOrigin(switching)
    h.client("up")
    h.fromOrigin("down")
    h.send({ _tag: "Ended", side: "client" })
    h.send({ _tag: "Ended", side: "origin" })
    const log = logOf(h)
    expect([log?.kind, log?.status, log?.bytesFromClient, log?.bytesFromOrigin]).toEqual([
      "upgrade",
      101,
      head.length + "early".length + "up".length,
      switching.length + "down".length,
    ])
  })
  it("a client that half-closed before the 101: the origin is half-closed at once", () => {
    const h = new Harness()
    request(h, "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    h.send({ _tag: "Ended", side: "client" })
    const actions = h.fromOrigin("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    expect(actions.filter((a) => a._tag === "HalfClose").map((a) => (a._tag === "HalfClose" ? a.side : ""))).toEqual(["origin"])
  })
})

describe("ends and failures", () => {
  const get = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"
  it("a client that closes before its request body is complete: the log says so", () => {
    const h = new Harness()
    h.client("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhe")
    connect(h)
    h.send({ _tag: "Ended", side: "client" })
    expect(logOf(h)?.detail).toBe("the client closed before its request body was complete")
  })
  it("a client that half-closes after its request gets its response with Connection: close", () => {
    const h = new Harness()
    h.client(get)
    connect(h)
    h.send({ _tag: "Ended", side: "client" })
    h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    expect(h.clientText()).toBe("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 hctunnel\r\nConnection: close\r\n\r\n")
    expect(h.postman.closed).toBe(true)
  })
  it("an origin that closes in the middle of a response body: the log says so", () => {
    const h = new Harness()
    h.client(get)
    connect(h)
    h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    h.send({ _tag: "Ended", side: "origin" })
    expect(logOf(h)?.detail).toBe("the origin closed the connection in the middle of the response body")
  })
  it("an origin socket error in a tunnel: the log has the runtime's message", () => {
    const h = new Harness()
    h.client("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
    connect(h)
    h.markOrigin("errored")
    h.send({ _tag: "Errored", side: "origin", message: "ETIMEDOUT" })
    expect(logOf(h)?.detail).toBe("origin: ETIMEDOUT")
  })
  it("a request is retried once on a fresh connection, not twice", () => {
    const h = new Harness()
    h.client(get)
    connect(h, 0, true)
    h.markOrigin("errored")
    h.send({ _tag: "Errored", side: "origin", message: "ECONNRESET" })
    expect(h.connects).toHaveLength(2)
    connect(h, 0, true)
    h.markOrigin("errored")
    h.send({ _tag: "Errored", side: "origin", message: "ECONNRESET" })
    expect(h.connects).toHaveLength(2)
    expect(h.clientText()).toMatch(/^HTTP\/1\.1 502 /)
  })
  it("no retry once part of a response head came back", () => {
    const h = new Harness()
    h.client(get)
    connect(h, 0, true)
    h.fromOrigin("HTTP/1.1 2")
    h.send({ _tag: "Ended", side: "origin" })
    expect(h.connects).toHaveLength(1)
    expect(h.clientText()).toMatch(/^HTTP\/1\.1 502 /)
  })
  it("an earlier deadline firing while a head arrives does not time the head out", () => {
    // Keep-alive deadline (idle since the last response + 100) before the head deadline (head start + 1000).
    const h = new Harness({ keepAliveTimeout: 100, headTimeout: 1000 })
    h.client(get)
    connect(h)
    h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    h.client("GET http://a/ HT", 50)
    h.now = 150
    h.send({ _tag: "Timeout" })
    expect(h.postman.closed).toBe(false)
    h.now = 1050
    h.send({ _tag: "Timeout" })
    expect(h.clientText()).toMatch(/HTTP\/1\.1 408 /)
  })
})

describe("log records", () => {
  it("an idle tunnel: timeout, and the log says why", () => {
    const h = new Harness({ idleTimeout: 1000 })
    h.client("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
    connect(h)
    h.fireDeadline()
    expect([logOf(h)?.outcome, logOf(h)?.detail]).toEqual(["timeout", "the tunnel was idle for too long"])
  })
  it("a completed exchange: no detail, and the user once authenticated", () => {
    const h = new Harness({}, "hctunnel", true)
    h.client("GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic x\r\n\r\n")
    h.send({ _tag: "Authenticated", user: "alice" })
    connect(h)
    h.fromOrigin("HTTP/1.1 204 No Content\r\n\r\n")
    expect(logOf(h)).toEqual({
      kind: "http",
      method: "GET",
      target: "http://a/",
      status: 204,
      bytesFromClient: 65,
      bytesFromOrigin: 27,
      startedAt: 0,
      endedAt: 0,
      outcome: "ok",
      user: "alice",
    })
  })
})
