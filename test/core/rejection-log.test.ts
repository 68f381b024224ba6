/**
 * docs/design.md §6.6: a refused request is logged with its method and target whenever its request line
 * was parsed (a complete, valid line), and with `- -` only when it was not.
 */
import { describe, expect, it } from "vitest"
import { Harness } from "./harness.ts"

const line = "GET http://a.example/x?y=1 HTTP/1.1\r\n"

// [rule, client bytes, limits, status, method, target]
const cases: ReadonlyArray<readonly [string, string, Record<string, number>, number, string, string]> = [
  ["405 TRACE", "TRACE http://a.example/t HTTP/1.1\r\nHost: a.example\r\n\r\n", {}, 405, "TRACE", "http://a.example/t"],
  ["508 forwarding loop", `${line}Host: a.example\r\nVia: 1.1 hctunnel\r\n\r\n`, {}, 508, "GET", "http://a.example/x?y=1"],
  ["501 https:// in absolute form", "GET https://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", {}, 501, "GET", "https://a.example/"],
  [
    "501 an unsupported transfer coding",
    "POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    {},
    501,
    "POST",
    "http://a.example/",
  ],
  ["505 HTTP/2.0", "GET http://a.example/ HTTP/2.0\r\nHost: a.example\r\n\r\n", {}, 505, "GET", "http://a.example/"],
  ["400 origin-form", "GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n", {}, 400, "GET", "/x"],
  ["400 a bad field after the line", `${line}Host: a.example\r\nBad Name: 1\r\n\r\n`, {}, 400, "GET", "http://a.example/x?y=1"],
  ["400 no Host", `${line}\r\n`, {}, 400, "GET", "http://a.example/x?y=1"],
  ["431 too many fields", `${line}Host: a\r\n${"X: 1\r\n".repeat(5)}\r\n`, { maxHeaders: 3 }, 431, "GET", "http://a.example/x?y=1"],
  [
    "431 a head too large after the line (one piece)",
    `${line}Host: a\r\nX: ${"a".repeat(300)}\r\n`,
    { maxHeadBytes: 256 },
    431,
    "GET",
    "http://a.example/x?y=1",
  ],
  ["400 an impossible byte: not parsed", "GET http://a.example/\x01", {}, 400, "-", "-"],
  ["414 a long target: not parsed", `GET http://a.example/${"t".repeat(100)}`, { maxRequestLine: 64 }, 414, "-", "-"],
  [
    "431 a head too large inside its line: not parsed",
    `GET http://a.example/${"t".repeat(300)}`,
    { maxHeadBytes: 256, maxRequestLine: 1024 },
    431,
    "-",
    "-",
  ],
]

describe("the log of a refused request", () => {
  it.each(cases)("%s", (_rule, input, limits, status, method, target) => {
    for (const pieces of [[input], [...input]]) {
      const h = new Harness(limits)
      for (const p of pieces) if (!h.postman.closed) h.client(p)
      expect(h.logs.map((l) => [l.status, l.method, l.target])).toEqual([[status, method, target]])
    }
  })

  it("408: a head that stalls after its request line names it; one that stalls inside it does not", () => {
    const h = new Harness()
    h.client(`${line}Host: a.ex`)
    h.fireDeadline()
    expect(h.logs.map((l) => [l.status, l.method, l.target])).toEqual([[408, "GET", "http://a.example/x?y=1"]])
    const g = new Harness()
    g.client("GET http://a.exa")
    g.fireDeadline()
    expect(g.logs.map((l) => [l.status, l.method, l.target])).toEqual([[408, "-", "-"]])
  })
})
