/**
 * Issue 12 §3, the two behaviours that were wrong in the code rather than in the text:
 * - a final error status can still follow forwarded 1xx heads, so an origin that fails after a 1xx
 *   (end, reset, idle timeout) is answered 502/504 like one that failed before it (rows F12, F14, F15);
 * - the log of a 431 counts the same bytes however the head was split (§7.2, row A3).
 */
import { describe, expect, it } from "vitest"
import { connect, Harness, originErrored } from "./harness.ts"

const get = "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"

const afterInterim = () => {
  const h = new Harness()
  h.client(get)
  connect(h)
  h.fromOrigin("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n")
  expect(h.clientText().match(/^HTTP\/1\.1 1\d\d /gm)).toEqual(["HTTP/1.1 100 ", "HTTP/1.1 103 "])
  return h
}
const finalStatus = (h: Harness) => /HTTP\/1\.1 (\d{3}) [^\r]*\r\n(?![\s\S]*HTTP\/1\.1 \d{3} )/.exec(h.clientText())?.[1]

describe("an origin failure after forwarded 1xx heads", () => {
  it("Ended(origin): 502 after the interim heads", () => {
    const h = afterInterim()
    h.send({ _tag: "Ended", side: "origin" })
    expect(finalStatus(h)).toBe("502")
    expect(h.logs.map((l) => [l.status, l.outcome])).toEqual([[502, "origin-error"]])
  })
  it("Errored(origin): 502 after the interim heads", () => {
    const h = afterInterim()
    originErrored(h)
    expect(finalStatus(h)).toBe("502")
  })
  it("idle Timeout: 504 after the interim heads", () => {
    const h = afterInterim()
    h.fireDeadline()
    h.fireDeadline()
    expect(finalStatus(h)).toBe("504")
    expect(h.logs.map((l) => [l.status, l.outcome])).toEqual([[504, "timeout"]])
  })
  it("a malformed final head after them: 502", () => {
    const h = afterInterim()
    h.fromOrigin("HTTP/1.1 abc\r\n\r\n")
    expect(finalStatus(h)).toBe("502")
  })
})

describe("the 431 log", () => {
  const head = `GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nX-Big: ${"x".repeat(400)}\r\n\r\n`
  it.each([1, 2, 7, 64, 129, 1000])("counts maxHeadBytes + 1 bytes with pieces of %i bytes", (size) => {
    const h = new Harness({ maxHeadBytes: 128 })
    for (let at = 0; at < head.length && !h.postman.closed; at += size) h.client(head.slice(at, at + size))
    expect(h.logs.map((l) => [l.status, l.bytesFromClient])).toEqual([[431, 129]])
  })
})
