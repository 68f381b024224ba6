/**
 * Counterexamples found by the properties (vitest runs or `npm run fuzz`), kept as plain examples so
 * they are replayed on every run whatever the seed.
 */
import { describe, expect, it } from "vitest"
import { defaultLimits, Postman } from "../../src/core/index.ts"
import { connect, describe as tag, Harness } from "../core/harness.ts"
import { latin1 } from "../core/harness.ts"
import { segment } from "./support.ts"
import { byteConservation, nothingMalformedReachesOrigin } from "./properties.ts"

const connectHead = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"

const statusOf = (h: Harness) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(h.clientText())?.[1] ?? 0)

describe("regressions", () => {
  // deadlines, seed 52379361: a GET with Upgrade on a reused origin that ended before answering; the
  // retry's Connected came at exactly the idle deadline counted from the request head (300000), so the
  // Forwarding deadline asked for was `now` itself. Connected is activity now (design §4).
  it("a retried request connected at the idle deadline gets a deadline ahead of now", () => {
    const p = new Postman({ limits: defaultLimits, via: "hctunnel" })
    p.start(0)
    p.handle(
      {
        _tag: "Received",
        side: "client",
        bytes: latin1("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
      },
      0,
    )
    p.handle({ _tag: "Connected", reused: true }, 2640)
    p.handle({ _tag: "Ended", side: "origin" }, 296_502) // reused, nothing received: retried (F18)
    expect(p.state).toBe("Connecting")
    p.handle({ _tag: "Timeout" }, 300_000) // the old idle deadline: now the connect one is armed
    p.handle({ _tag: "Connected" }, 300_000)
    expect(p.state).toBe("Forwarding")
    expect(p.deadline).toBeGreaterThan(300_000)
  })

  // tunnel-model, seed -450630437: [Blocked(origin), ClientErrors]. Closing the origin resumed reading
  // from the client (it was paused for the blocked origin) right before closing the client: T7 is
  // exactly Log, Close(origin), Close(client).
  it("T7 with the origin blocked: no ResumeReading(client) before Close(client)", () => {
    const h = new Harness()
    h.client(connectHead)
    connect(h)
    h.send({ _tag: "Blocked", side: "origin" })
    expect(h.paused.client).toBe(true)
    const step = h.send({ _tag: "Errored", side: "client", message: "ECONNRESET" })
    expect(step.map(tag)).toEqual(["Log", "Close(origin)", "Close(client)"])
  })

  // malformed, "long method" with cuts [1]: the early request-line check answered 414 to a request
  // line made long by its method when it came in pieces, and the parser answered 400 when it came in
  // one chunk (request-head.ts: 414 only when the target made the line long).
  it("a request line made long by its method gets the same status whatever the split", () => {
    const bytes = latin1(`${"P".repeat(1100)} http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n`)
    const statuses = [[bytes], segment(bytes, [1]), segment(bytes, [700])].map((pieces) => {
      const h = new Harness({ maxRequestLine: 1024, maxHeadBytes: 4096 })
      for (const p of pieces) if (!h.postman.closed) h.client(p)
      return statusOf(h)
    })
    expect(statuses).toEqual([400, 400, 400])
  })

  // A target longer than maxRequestLine in a head longer than maxHeadBytes: in pieces the early check
  // answered 414, in one chunk (the LF in the chunk switched the check off) the head reader answered
  // 431; and an empty line before the request line ("\r\n", skipped by the head reader) switched the
  // check off as well. The line is over its limit long before the head is: 414 in every case.
  it("a long target is a 414 whatever the split, with or without an empty line first", () => {
    const statuses: number[] = []
    for (const preamble of ["", "\r\n"]) {
      const bytes = latin1(`${preamble}POST http://example.com/${"t".repeat(1300)} HTTP/1.1\r\nHost: example.com\r\n\r\n`)
      for (const pieces of [[bytes], segment(bytes, [2, 1]), segment(bytes, [2, 100])]) {
        const h = new Harness({ maxRequestLine: 1024, maxHeadBytes: 1200 })
        for (const p of pieces) if (!h.postman.closed) h.client(p)
        statuses.push(statusOf(h))
      }
    }
    expect(statuses).toEqual([414, 414, 414, 414, 414, 414])
  })

  // teardown, seed 683494942 (and deadlines, seed -598020018, the origin's mirror image): bytes
  // delivered after Ended on the same side (nonsense: nothing follows a FIN) were relayed in a tunnel,
  // writing to the side that had just been half-closed. They are ignored now.
  it("bytes after Ended(client) are not relayed to a half-closed origin", () => {
    const h = new Harness()
    h.client(connectHead)
    h.send({ _tag: "Ended", side: "client" })
    connect(h)
    expect(h.halfClosed.origin).toBe(1)
    expect(h.client("late").map(tag)).toEqual([])
    expect(h.originText()).toBe("")
  })
  it("bytes after Ended(origin) are not relayed to a half-closed client", () => {
    const h = new Harness()
    h.client(connectHead)
    connect(h)
    h.send({ _tag: "Ended", side: "origin" })
    expect(h.halfClosed.client).toBe(1)
    expect(h.fromOrigin("late").map(tag)).toEqual([])
  })

  // malformed, "bad chunk size" with cuts [1] (whole-vs-split comparison of §7.2): the origin used to get
  // the valid chunk before the bad one ("3\r\nabc\r\n") only when it arrived in an earlier piece. Fixed:
  // BodyFramer.feed reports the valid prefix with the error, and the Postman forwards it before failing.
  it("a bad chunk size: the origin gets the same bytes whatever the split", () => {
    const bytes = latin1("POST http://example.com/x HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
    const sent = [[bytes], segment(bytes, [1])].map((pieces) => {
      const h = new Harness()
      for (const p of pieces) {
        if (h.postman.closed) break
        h.client(p)
        if (h.origin === "connecting") connect(h)
      }
      expect(statusOf(h)).toBe(400)
      return h.originText(0)
    })
    expect(sent[0]).toBe(sent[1])
  })

  it("keeps the shared predicates importable", () => {
    expect(typeof byteConservation.predicate).toBe("function")
    expect(typeof nothingMalformedReachesOrigin.predicate).toBe("function")
  })
})
