/**
 * docs/design.md, checked claim by claim: the rules a port reproduces from the text alone (activity and
 * deadlines §4, rows the prose leans on §5, framing §6.2, forwarded heads §6.3, reuse and responses
 * after 1xx heads §6.4, the generated responses §6.9, write splitting §6.10, Close flags §6.11, access
 * records §6.12). Each test names the section it holds to; when a behaviour changes, the section and its
 * test change together. The tests of §6.13 pin behaviour under review: they are expected to change when
 * it is fixed.
 */
import { describe, expect, it } from "vitest"
import { type Action, defaultLimits, type Event, type Limits, Postman } from "../../src/core/index.ts"
import { latin1, text } from "./harness.ts"

type Step = Event | "shutdown" | "abort"

/** A Postman started at 0, then one call per step at now = 1, 2, 3...; returns the actions of each call. */
const run = (steps: ReadonlyArray<Step>, options: { limits?: Partial<Limits>; auth?: boolean } = {}) => {
  const postman = new Postman({ limits: { ...defaultLimits, ...options.limits }, via: "hc", auth: options.auth === true })
  const calls: Array<ReadonlyArray<Action>> = [postman.start(0)]
  steps.forEach((step, i) => {
    const now = i + 1
    calls.push(step === "shutdown" ? postman.shutdown(now) : step === "abort" ? postman.abort(now, "stop") : postman.handle(step, now))
  })
  return { postman, calls, last: calls[calls.length - 1]! }
}

const fromClient = (s: string): Event => ({ _tag: "Received", side: "client", bytes: latin1(s) })
const fromOrigin = (s: string): Event => ({ _tag: "Received", side: "origin", bytes: latin1(s) })
const connected: Event = { _tag: "Connected" }
const reusedConnected: Event = { _tag: "Connected", reused: true }

/** Actions in the notation of the doc: `Write(client "...")`, `Close(origin false reusable)`, `Log(ok 200)`. */
const show = (actions: ReadonlyArray<Action>): string[] =>
  actions.map((a) => {
    switch (a._tag) {
      case "Write":
        return `Write(${a.side} ${JSON.stringify(text(a.bytes))})`
      case "Close":
        return `Close(${a.side} ${a.graceful}${a.reusable ? " reusable" : ""}${a.pinned === true ? " pinned" : ""})`
      case "Log":
        return `Log(${a.record.outcome} ${a.record.status})`
      case "SetDeadline":
        return `SetDeadline(${a.at})`
      case "Connect":
        return `Connect(${a.host}:${a.port}${a.fresh === true ? " fresh" : ""})`
      case "HalfClose":
      case "PauseReading":
      case "ResumeReading":
        return `${a._tag}(${a.side})`
      default:
        return a._tag
    }
  })

const writes = (actions: ReadonlyArray<Action>, side: "client" | "origin"): string[] =>
  actions.flatMap((a) => (a._tag === "Write" && a.side === side ? [text(a.bytes)] : []))

/** The record of the (one) Log among these actions. */
const logOf = (actions: ReadonlyArray<Action>) => actions.flatMap((a) => (a._tag === "Log" ? [a.record] : []))[0]!
/** Like `run` with every Received split into 1-byte events (each at its step's now): the actions of the last step. */
const bytewise = (steps: ReadonlyArray<Step>, limits: Partial<Limits> = {}) => {
  const postman = new Postman({ limits: { ...defaultLimits, ...limits }, via: "hc" })
  postman.start(0)
  let last: Action[] = []
  steps.forEach((step, i) => {
    last = []
    if (typeof step !== "string" && step._tag === "Received") {
      for (let k = 0; k < step.bytes.length; k++) last.push(...postman.handle({ ...step, bytes: step.bytes.subarray(k, k + 1) }, i + 1))
    } else if (typeof step !== "string") last.push(...postman.handle(step, i + 1))
  })
  return last
}

const errorBytes = (status: number, reason: string, detail: string, extra = ""): string => {
  const body = `${status} ${reason}: ${detail}\n`
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n${extra}Via: 1.1 hc\r\nConnection: close\r\n\r\n${body}`
}

const GET = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"

describe("§6.9 responses the proxy writes itself", () => {
  it("an error response is exactly the documented template, control bytes of the detail replaced by ?", () => {
    const { last } = run([fromClient("GET http://a/ HTTP/1.1\r\nHost: a\r\nX\x01: y\r\n\r\n")])
    expect(show(last)).toEqual([
      `Write(client ${JSON.stringify(errorBytes(400, "Bad Request", "invalid character 0x01 in a field name"))})`,
      "Log(client-error 400)",
      "Close(client true)",
    ])
    const denied = run([fromClient(GET), { _tag: "ConnectFailed", reason: "denied", message: "no\tway\u00e9" }]).last
    expect(writes(denied, "client")).toEqual([errorBytes(403, "Forbidden", "no?way?")])
  })

  it("405 carries Allow before Via", () => {
    const { last } = run([fromClient("TRACE http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")])
    expect(writes(last, "client")).toEqual([
      errorBytes(
        405,
        "Method Not Allowed",
        "TRACE is refused: a proxy must not reflect request headers that may carry credentials",
        "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT\r\n",
      ),
    ])
  })

  it("407 has Proxy-Authenticate first, and Connection: close only when the connection closes (§6.6)", () => {
    const failed: Event = { _tag: "AuthenticationFailed", reason: "missing", message: "credentials required" }
    const body = "407 Proxy Authentication Required: credentials required\n"
    const head = `HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="hctunnel", charset="UTF-8"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nVia: 1.1 hc\r\n`
    const kept = run([fromClient(GET), failed], { auth: true })
    expect(show(kept.last)).toEqual([`Write(client ${JSON.stringify(`${head}\r\n${body}`)})`, "Log(unauthenticated 407)"])
    expect(kept.postman.state).toBe("AwaitingHead")
    const closed = run([fromClient("GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), failed], { auth: true })
    expect(show(closed.last)).toEqual([
      `Write(client ${JSON.stringify(`${head}Connection: close\r\n\r\n${body}`)})`,
      "Log(unauthenticated 407)",
      "Close(client true)",
    ])
  })

  it("the CONNECT 200 is 39 bytes and nothing else", () => {
    const { last } = run([fromClient("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), connected])
    expect(writes(last, "client")).toEqual(["HTTP/1.1 200 Connection established\r\n\r\n"])
  })

  it("ConnectFailed details name the Connect's host and port", () => {
    const fail = (reason: "unresolved" | "refused" | "unreachable" | "error" | "timeout") =>
      text(
        run([fromClient("GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n"), { _tag: "ConnectFailed", reason, message: "x" }]).last.flatMap(
          (a) => (a._tag === "Write" ? [a.bytes] : []),
        )[0]!,
      ).split("\r\n\r\n")[1]
    expect(fail("unresolved")).toBe("502 Bad Gateway: could not resolve host a\n")
    expect(fail("refused")).toBe("502 Bad Gateway: connection refused by a:81\n")
    expect(fail("unreachable")).toBe("502 Bad Gateway: a:81 is unreachable\n")
    expect(fail("error")).toBe("502 Bad Gateway: could not connect to a:81\n")
    expect(fail("timeout")).toBe("504 Gateway Timeout: timed out connecting to a:81\n")
  })
})

describe("§6.2 request framing, first rule that applies", () => {
  const cases: ReadonlyArray<[string, string, number | "ok", string?]> = [
    ["GET", "Transfer-Encoding: chunked\r\nContent-Length: x", 400, "both Transfer-Encoding and Content-Length"],
    ["GET", "Transfer-Encoding: gzip\r\nContent-Length: 3", 400, "both Transfer-Encoding and Content-Length"],
    ["GET", "Transfer-Encoding:\r\n", 400, "an empty Transfer-Encoding"],
    ["GET", "Transfer-Encoding: chunked, chunked", 400, "chunked applied more than once in Transfer-Encoding"],
    ["GET", "Transfer-Encoding: chunked, gzip", 400, "chunked is not the final Transfer-Encoding"],
    ["GET", "Transfer-Encoding: gzip", 400, "the final Transfer-Encoding of a request must be chunked"],
    ["GET", "Transfer-Encoding: gzip, CHUNKED", 501, "only the chunked transfer coding is supported in requests"],
    ["GET", "Content-Length: 1, 2", 400, "conflicting Content-Length values"],
    ["GET", "Content-Length: ,", 400, "Content-Length is not a number"],
    ["GET", "Content-Length: 99999999999999999999", 400, "Content-Length is too large"],
    ["CONNECT", "Content-Length: 1", 400, "a CONNECT request cannot have a body"],
    ["CONNECT", "Transfer-Encoding: gzip", "ok"],
    ["CONNECT", "Content-Length: 0", "ok"],
  ]
  for (const [method, field, status, detail] of cases) {
    it(`${method} with ${JSON.stringify(field)}: ${status}`, () => {
      const target = method === "CONNECT" ? "a:443" : "http://a/"
      const { last } = run([
        fromClient(`${method} ${target} HTTP/1.1\r\nHost: a\r\n${field.endsWith("\r\n") ? field : `${field}\r\n`}\r\n`),
      ])
      if (status === "ok") return expect(show(last)[0]).toBe("Connect(a:443)")
      const reason = status === 400 ? "Bad Request" : "Not Implemented"
      expect(writes(last, "client")).toEqual([errorBytes(status, reason, detail!)])
    })
  }

  it("Transfer-Encoding in an HTTP/1.0 request is 400 even with a valid chunked", () => {
    const { last } = run([fromClient("POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")])
    expect(writes(last, "client")).toEqual([errorBytes(400, "Bad Request", "Transfer-Encoding in an HTTP/1.0 request")])
  })

  it("an HTTP/1.0 response with Transfer-Encoding is a 502 (§6.4)", () => {
    const { last } = run([fromClient(GET), connected, fromOrigin("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")])
    expect(writes(last, "client")).toEqual([
      errorBytes(502, "Bad Gateway", "malformed response from the origin: Transfer-Encoding in an HTTP/1.0 response"),
    ])
  })
})

describe("§6.3 the forwarded head", () => {
  it("Connection removes the fields it names, but never Content-Length, Transfer-Encoding or Via", () => {
    const request =
      "POST http://A.example:80/p?q HTTP/1.1\r\nHost: x\r\nVia: 1.0 one, 1.1 two\r\nVia:\r\nVia: 2 three\r\n" +
      "Connection: Foo, content-length, TRANSFER-ENCODING, via\r\nFoo: 1\r\nContent-Length: 0003\r\nContent-Length: 3\r\nEmpty:\r\nKeep-Alive: 5\r\n\r\n"
    const { last } = run([fromClient(request), connected])
    expect(writes(last, "origin")).toEqual([
      "POST /p?q HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nEmpty: \r\nVia: 1.0 one, 1.1 two, 2 three, 1.1 hc\r\n\r\n",
    ])
  })

  it("an upgrade keeps Upgrade in place and ends the head with Connection: upgrade; the 101 likewise", () => {
    const request = "GET http://a:8080/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nX: 1\r\n\r\n"
    const { calls } = run([
      fromClient(request),
      connected,
      fromOrigin("HTTP/1.1 101 \r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
    ])
    expect(writes(calls[2]!, "origin")).toEqual([
      "GET /ws HTTP/1.1\r\nHost: a:8080\r\nUpgrade: websocket\r\nX: 1\r\nVia: 1.1 hc\r\nConnection: upgrade\r\n\r\n",
    ])
    expect(writes(calls[3]!, "client")).toEqual(["HTTP/1.1 101 \r\nUpgrade: websocket\r\nVia: 1.1 hc\r\nConnection: upgrade\r\n\r\n"])
  })

  it("an HTTP/1.0 request goes out as HTTP/1.0 with Via 1.0", () => {
    const { last } = run([fromClient("GET http://[::1]:81/ HTTP/1.0\r\n\r\n"), connected])
    expect(writes(last, "origin")).toEqual(["GET / HTTP/1.0\r\nHost: [::1]:81\r\nVia: 1.0 hc\r\n\r\n"])
  })
})

describe("§6.1 the loop check", () => {
  const loops = (via: string) =>
    show(run([fromClient(`GET http://a/ HTTP/1.1\r\nHost: a\r\nVia: ${via}\r\n\r\n`)]).last)[1] === "Log(client-error 508)"
  it("matches the second word of any element exactly", () => {
    expect(loops("1.1 hc")).toBe(true)
    expect(loops("1.0 x, HTTP/1.1 hc")).toBe(true)
    expect(loops("1.1 hc (comment)")).toBe(true)
    expect(loops("1.1 HC")).toBe(false)
    expect(loops("1.1 hc:3128")).toBe(false)
    expect(loops("hc")).toBe(false)
  })
  it("holds for CONNECT too (issue 17, item 11)", () => {
    const connect = (via: string) => run([fromClient(`CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nVia: ${via}\r\n\r\n`)]).last
    expect(show(connect("1.1 hc"))[1]).toBe("Log(client-error 508)")
    expect(show(connect("1.1 other, 1.1 hc"))[1]).toBe("Log(client-error 508)")
  })
})

describe("§3 a CONNECT's Connect carries the Via it came with (for a parent's CONNECT)", () => {
  const connectOf = (fields: string) =>
    run([fromClient(`CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n${fields}\r\n`)]).last.find((a) => a._tag === "Connect")
  it("the received Via values, joined, empty ones skipped; absent without any", () => {
    expect(connectOf("Via: 1.1 edge\r\nX: y\r\nvia: \r\nVia: 1.0 lb (x)\r\n")).toEqual({
      _tag: "Connect",
      host: "a",
      port: 443,
      tunnel: true,
      receivedVia: "1.1 edge, 1.0 lb (x)",
    })
    expect(connectOf("")).toEqual({ _tag: "Connect", host: "a", port: 443, tunnel: true })
  })
  it("a plain request's Connect never has it (its forwarded head carries the Via, §6.3)", () => {
    const plain = run([fromClient("GET http://a/ HTTP/1.1\r\nHost: a\r\nVia: 1.1 edge\r\n\r\n")]).last.find((a) => a._tag === "Connect")
    expect(plain).toEqual({ _tag: "Connect", host: "a", port: 80 })
  })
})

describe("§6.4 reuse of the origin connection", () => {
  const closeOf = (response: string, request = GET) =>
    show(run([fromClient(request), connected, fromOrigin(response)]).last).find((a) => a.startsWith("Close(origin"))
  it("reusable: Close(origin, graceful false, reusable true)", () => {
    expect(closeOf("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")).toBe("Close(origin false reusable)")
    expect(closeOf("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx")).toBe("Close(origin false reusable)")
  })
  it("not reusable: graceful true", () => {
    expect(closeOf("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx")).toBe("Close(origin true)")
    expect(closeOf("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")).toBe("Close(origin true)")
    expect(closeOf("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy")).toBe("Close(origin true)")
  })
  it("not reusable after a response that cannot have a body, even a clean one (issue 17 item 6)", () => {
    const HEAD = "HEAD http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"
    expect(closeOf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HEAD)).toBe("Close(origin true)")
    expect(closeOf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray", HEAD)).toBe("Close(origin true)")
    expect(closeOf("HTTP/1.1 204 No Content\r\n\r\n")).toBe("Close(origin true)")
    expect(closeOf("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")).toBe("Close(origin true)")
    // A body of length 0 is a body: the origin and the proxy agree where it ends.
    expect(closeOf("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).toBe("Close(origin false reusable)")
    // After a 1xx the final response decides.
    expect(closeOf("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")).toBe("Close(origin false reusable)")
  })
  it("pinned when the request or the response authenticates the connection (NTLM, Negotiate; issue 17 item 7)", () => {
    const ok = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    const withAuth = (value: string) => `GET http://a/ HTTP/1.1\r\nHost: a\r\nAuthorization: ${value}\r\n\r\n`
    expect(closeOf(ok, withAuth("NTLM TlRMTVNTUAADAAAA"))).toBe("Close(origin true pinned)")
    expect(closeOf(ok, withAuth("negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAu"))).toBe("Close(origin true pinned)")
    expect(closeOf(ok, withAuth("Basic YTpi"))).toBe("Close(origin false reusable)")
    expect(closeOf(ok, withAuth("Bearer NTLM"))).toBe("Close(origin false reusable)")
    const challenge = (fields: string) => `HTTP/1.1 401 Unauthorized\r\n${fields}Content-Length: 1\r\n\r\nx`
    expect(closeOf(challenge("WWW-Authenticate: NTLM\r\n"))).toBe("Close(origin true pinned)")
    expect(closeOf(challenge('WWW-Authenticate: Basic realm="x", Negotiate\r\n'))).toBe("Close(origin true pinned)")
    expect(closeOf(challenge('WWW-Authenticate: Basic realm="x"\r\nwww-authenticate: ntlm\r\n'))).toBe("Close(origin true pinned)")
    expect(closeOf(challenge('WWW-Authenticate: Basic realm="NTLM"\r\n'))).toBe("Close(origin false reusable)")
    // Not kept when it could not be reused anyway, nor when the client connection closes after this response.
    expect(closeOf(`${challenge("WWW-Authenticate: NTLM\r\n")}y`)).toBe("Close(origin true)")
    expect(closeOf(challenge("WWW-Authenticate: NTLM\r\nConnection: close\r\n"))).toBe("Close(origin true)")
    expect(closeOf(challenge("WWW-Authenticate: NTLM\r\n"), "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")).toBe(
      "Close(origin true)",
    )
  })
})

describe("§4 activity and deadlines", () => {
  it("the Forwarding deadline counts from Connected (the origin became usable), then from the last Received", () => {
    const { calls, postman } = run([fromClient(GET), connected])
    expect(show(calls[2]!).filter((a) => a.startsWith("SetDeadline"))).toEqual([])
    expect(postman.deadline).toBe(1 + defaultLimits.connectTimeout)
    const timeout = postman.handle({ _tag: "Timeout" }, 1 + defaultLimits.connectTimeout)
    expect(show(timeout)).toEqual([`SetDeadline(${2 + defaultLimits.idleTimeout})`])
  })
  it("a connect slower than idleTimeout does not leave the exchange due the moment it connects", () => {
    const p = new Postman({ limits: { ...defaultLimits, idleTimeout: 5000, connectTimeout: 10_000 }, via: "hc" })
    p.start(0)
    p.handle(fromClient(GET), 0)
    expect(show(p.handle(connected, 6000)).filter((a) => a.startsWith("SetDeadline"))).toEqual([])
    expect(p.deadline).toBe(10_000) // the connect deadline, armed earlier and kept (lazy)
    expect(show(p.handle({ _tag: "Timeout" }, 10_000))).toEqual(["SetDeadline(11000)"]) // 6000 + idleTimeout
  })
  it("Drained is not activity", () => {
    const { postman } = run([fromClient(GET), connected, { _tag: "Blocked", side: "origin" }, { _tag: "Drained", side: "origin" }])
    postman.handle({ _tag: "Timeout" }, 20_000)
    expect(show(postman.handle({ _tag: "Timeout" }, 2 + defaultLimits.idleTimeout))[0]).toBe(
      "Write(client " + JSON.stringify(errorBytes(504, "Gateway Timeout", "the origin did not respond in time")) + ")",
    )
  })
})

describe("§6.10 write splitting", () => {
  it("queued client bytes are written one Write per queued piece", () => {
    const { last } = run([fromClient("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\nab"), fromClient("c"), fromClient("de"), connected])
    expect(writes(last, "origin")).toEqual(["ab", "c", "de"])
  })
  it("a size line with an extension splits the run; a size line across events is one new piece", () => {
    const head = "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    const { calls } = run([
      fromClient(head),
      connected,
      fromClient("5;x=1\r\nhello\r\n1"),
      fromClient("0\r\n0123456789abcdef\r\n0\r\n\r\n"),
    ])
    expect(writes(calls[3]!, "origin")).toEqual(["5", "\r\nhello\r\n"])
    expect(writes(calls[4]!, "origin")).toEqual(["10\r\n", "0123456789abcdef\r\n0\r\n\r\n"])
  })
})

describe("§5 rows the prose leans on", () => {
  it("C13: Errored(origin) while connecting: 502, and the origin socket closed once (abrupt)", () => {
    const { last } = run([fromClient(GET), { _tag: "Errored", side: "origin", message: "reset" }])
    expect(show(last)).toEqual([
      `Write(client ${JSON.stringify(errorBytes(502, "Bad Gateway", "the origin connection failed: reset"))})`,
      "Log(origin-error 502)",
      "Close(origin false)",
      "Close(client true)",
    ])
  })
  it("T15: the mirror of T5, the client ends after the origin", () => {
    const { last } = run([
      fromClient("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
      connected,
      { _tag: "Ended", side: "origin" },
      { _tag: "Ended", side: "client" },
    ])
    expect(show(last)).toEqual(["HalfClose(origin)", "Log(ok 200)", "Close(origin true)", "Close(client true)"])
  })
  it("T14: bytes after a FIN are ignored", () => {
    const { last } = run([
      fromClient("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
      connected,
      { _tag: "Ended", side: "origin" },
      fromOrigin("late"),
    ])
    expect(last).toEqual([])
  })
  it("S5: abort() in AwaitingHead closes without a Log; S7: in Connecting it logs shutdown", () => {
    expect(show(run(["abort"]).last)).toEqual(["Close(client false)"])
    expect(show(run([fromClient(GET), "abort"]).last)).toEqual(["Log(shutdown 0)", "Close(origin false)", "Close(client false)"])
  })
  it("F30: a reusable Close(origin) resumes a client paused by Blocked(origin)", () => {
    const { last } = run([
      fromClient(GET),
      connected,
      { _tag: "Blocked", side: "origin" },
      fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ])
    expect(show(last).slice(-2)).toEqual(["Close(origin false reusable)", "ResumeReading(client)"])
  })
  it("a full queue is taken at Connected: ResumeReading(client) comes before any Write", () => {
    const { last } = run([fromClient("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n"), fromClient("abcdef"), connected], {
      limits: { maxBufferedBytes: 4 },
    })
    expect(show(last).map((a) => a.replace(/ ".*"\)$/, ")"))).toEqual(["ResumeReading(client)", "Write(origin)", "Write(origin)"])
  })
})

describe("§6.11 every origin socket gets exactly one Close(origin), also after Errored(origin)", () => {
  const reset: Event = { _tag: "Errored", side: "origin", message: "reset" }
  it("F19: a retry closes the failed socket (abrupt) before dialling again, without a Log", () => {
    const { last } = run([fromClient(GET), reusedConnected, reset])
    expect(show(last)).toEqual(["Close(origin false)", "Connect(a:80 fresh)"])
  })
  it("F24: after the final head, both sockets destroyed; the status is the response's", () => {
    const { last } = run([fromClient(GET), connected, fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), reset])
    expect(show(last)).toEqual(["Log(origin-error 200)", "Close(origin false)", "Close(client false)"])
  })
  it("T6: in a tunnel, both sockets destroyed", () => {
    const { last } = run([fromClient("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), connected, reset])
    expect(show(last)).toEqual(["Log(aborted 200)", "Close(origin false)", "Close(client false)"])
  })
})

describe("§6.2 a malformed chunked request body", () => {
  const chunked = fromClient("POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
  it("F3: a 400 while no final head went out, 1xx heads or not", () => {
    const { last } = run([chunked, connected, fromOrigin("HTTP/1.1 100 Continue\r\n\r\n"), fromClient("zz\r\n")])
    expect(show(last)).toEqual([
      `Write(client ${JSON.stringify(errorBytes(400, "Bad Request", "malformed request body: missing or invalid chunk size"))})`,
      "Log(client-error 400)",
      "Close(origin false)",
      "Close(client true)",
    ])
  })
  it("F39: after the final head, a cut; the framer error is the Log's detail", () => {
    const { last } = run([chunked, connected, fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), fromClient("zz\r\n")])
    expect(show(last)).toEqual(["Log(client-error 200)", "Close(origin false)", "Close(client false)"])
    expect(logOf(last).detail).toBe("malformed request body: missing or invalid chunk size")
  })
})

describe("§6.4 interim heads do not begin the response", () => {
  const hint = fromOrigin("HTTP/1.1 103 Early Hints\r\n\r\n")
  const answered = (last: ReadonlyArray<Action>, status: number, reason: string, detail: string) =>
    expect(show(last)).toEqual([
      `Write(client ${JSON.stringify(errorBytes(status, reason, detail))})`,
      `Log(${status === 504 ? "timeout" : "origin-error"} ${status})`,
      "Close(origin false)",
      "Close(client true)",
    ])
  it("F12: after a forwarded 1xx, an origin that closes still gets a 502", () => {
    answered(
      run([fromClient(GET), connected, hint, { _tag: "Ended", side: "origin" }]).last,
      502,
      "Bad Gateway",
      "the origin closed the connection without a response",
    )
  })
  it("F14: an origin that fails, 502", () => {
    answered(
      run([fromClient(GET), connected, hint, { _tag: "Errored", side: "origin", message: "reset" }]).last,
      502,
      "Bad Gateway",
      "the origin connection failed: reset",
    )
  })
  it("F15: the idle deadline, 504", () => {
    const { postman } = run([fromClient(GET), connected, hint])
    answered(
      postman.handle({ _tag: "Timeout" }, 3 + defaultLimits.idleTimeout),
      504,
      "Gateway Timeout",
      "the origin did not respond in time",
    )
  })
  it("F7, F36, F37: a malformed or oversized final head, or a 101 not asked for, 502", () => {
    answered(
      run([fromClient(GET), connected, hint, fromOrigin("HTTP/1.1 abc\r\n\r\n")]).last,
      502,
      "Bad Gateway",
      "malformed response from the origin: malformed status code",
    )
    const big = run([fromClient(GET), connected, hint, fromOrigin(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(300)}\r\n`)], {
      limits: { maxHeadBytes: 256 },
    }).last
    answered(big, 502, "Bad Gateway", "the origin's response head is too large")
    answered(
      run([fromClient(GET), connected, hint, fromOrigin("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")]).last,
      502,
      "Bad Gateway",
      "the origin switched protocols without being asked to",
    )
  })
})

describe("§6.12 byte counts", () => {
  it("a 431 logs maxHeadBytes + 1 bytes, however split and with skipped empty lines not counted", () => {
    const head = `GET http://a/ HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(300)}\r\n\r\n`
    const limits = { maxHeadBytes: 256 }
    expect(logOf(run([fromClient(head)], { limits }).last).bytesFromClient).toBe(257)
    expect(logOf(run([fromClient(`\r\n\r\n${head}`)], { limits }).last).bytesFromClient).toBe(257)
    expect(logOf(bytewise([fromClient(`\r\n${head}`)], limits)).bytesFromClient).toBe(257)
  })
  it("a 408 counts every byte received for the unfinished head, skipped empty lines included", () => {
    const { postman } = run([fromClient("\r\nGET http://a/ HT"), fromClient("TP/1.1\r\n")])
    expect(logOf(postman.handle({ _tag: "Timeout" }, 3 + defaultLimits.headTimeout)).bytesFromClient).toBe(26)
  })
  it("bytesFromOrigin counts the bytes used: not the body after a refused chunked head (F21), not bytes after the response (F40)", () => {
    const f21 = run([
      fromClient("GET http://a/ HTTP/1.0\r\n\r\n"),
      connected,
      fromOrigin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
    ])
    expect(logOf(f21.last).bytesFromOrigin).toBe("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".length)
    const f40 = run([fromClient(GET), connected, fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxyz")])
    expect(logOf(f40.last).bytesFromOrigin).toBe("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx".length)
  })
  it("an oversized response head counts maxHeadBytes + 1, plus the 1xx heads before it (F36)", () => {
    const hint = "HTTP/1.1 103 Early Hints\r\n\r\n"
    const steps = [fromClient(GET), connected, fromOrigin(hint), fromOrigin(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(300)}\r\n`)]
    expect(logOf(run(steps, { limits: { maxHeadBytes: 256 } }).last).bytesFromOrigin).toBe(hint.length + 257)
    expect(logOf(bytewise(steps, { maxHeadBytes: 256 })).bytesFromOrigin).toBe(hint.length + 257)
  })
  it("status 0 when the client ends the exchange after only 1xx heads", () => {
    const { last } = run([
      fromClient(GET),
      connected,
      fromOrigin("HTTP/1.1 103 Early Hints\r\n\r\n"),
      { _tag: "Errored", side: "client", message: "reset" },
    ])
    expect(show(last)).toEqual(["Log(aborted 0)", "Close(origin false)", "Close(client false)"])
  })
})

describe("§6.13 behaviour under review (change these with the section)", () => {
  it("1. a request body entirely queued while connecting is still incomplete at Ended(client)", () => {
    const { last } = run([
      fromClient("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"),
      { _tag: "Ended", side: "client" },
    ])
    expect(show(last)).toEqual(["Log(aborted 0)", "Close(origin false)", "Close(client false)"])
  })
  it("2. empty lines before an oversized response head count only when they came in an earlier event", () => {
    const head = `HTTP/1.1 200 OK\r\nX: ${"a".repeat(300)}\r\n`
    const limits = { maxHeadBytes: 256 }
    expect(logOf(run([fromClient(GET), connected, fromOrigin(`\r\n${head}`)], { limits }).last).bytesFromOrigin).toBe(257)
    expect(logOf(run([fromClient(GET), connected, fromOrigin("\r\n"), fromOrigin(head)], { limits }).last).bytesFromOrigin).toBe(259)
  })
  it("3. an HTTP/1.0 keep-alive request keeps the connection, but its response does not say keep-alive", () => {
    const { postman, last } = run([
      fromClient("GET http://a/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
      connected,
      fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ])
    expect(writes(last, "client")).toEqual(["HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 hc\r\n\r\n"])
    expect(postman.state).toBe("AwaitingHead")
  })
  it("4. the loop check is exact: another case or a port is not this proxy", () => {
    const loops = (via: string) =>
      show(run([fromClient(`GET http://a/ HTTP/1.1\r\nHost: a\r\nVia: ${via}\r\n\r\n`)]).last)[1] === "Log(client-error 508)"
    expect([loops("1.1 hc"), loops("1.1 HC"), loops("1.1 hc:3128")]).toEqual([true, false, false])
  })
})

describe("§6.9 details", () => {
  it("an IPv6 host is written in brackets, as a client writes the authority", () => {
    const { last } = run([
      fromClient("CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
      { _tag: "ConnectFailed", reason: "refused", message: "x" },
    ])
    expect(writes(last, "client")).toEqual([errorBytes(502, "Bad Gateway", "connection refused by [::1]:443")])
  })
})
