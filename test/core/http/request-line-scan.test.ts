import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { RequestLineScan, TLS_TO_PLAIN_PROXY } from "../../../src/core/http/request-line-scan.ts"
import { bytes, splitAt } from "./helpers.ts"

const MAX_LINE = 64
const MAX_HEAD = 256

/** What the scan made of a stream: no refusal, or a refusal with its status, reason and byte count. */
type Outcome = { readonly pass: true } | { readonly status: number; readonly reason: string; readonly at: number }

const scan = (chunks: ReadonlyArray<Uint8Array>): Outcome => {
  const s = new RequestLineScan(MAX_LINE, MAX_HEAD)
  for (const chunk of chunks) {
    const r = s.push(chunk)
    if (r !== undefined) return { status: r.status, reason: r.reason, at: s.seen }
  }
  return { pass: true }
}

const refused = (status: number, at: number, reason: RegExp) => ({ status, at, reason })

// [rule, bytes (no LF means the line is still open), expected: pass, or status + the byte count it comes at]
const cases: ReadonlyArray<readonly [string, string, { pass: true } | ReturnType<typeof refused>]> = [
  ["a valid line passes", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", { pass: true }],
  ["a valid line, LF only", "GET http://a/ HTTP/1.0\nHost: a\n\n", { pass: true }],
  ["empty lines before the line are skipped", "\r\n\nGET http://a/ HTTP/1.1\r\n", { pass: true }],
  ["a line still arriving passes", "GET http://a/ HT", { pass: true }],
  ["HTTP/2.0 passes (505 is the parser's, once the head is complete)", "GET http://a/ HTTP/2.0\r\n", { pass: true }],
  ["a bare CR after the line is the parser's", "GET http://a/ HTTP/1.1\r\nX: a\rb", { pass: true }],
  // method
  ["a TLS ClientHello: at its first byte", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", refused(400, 1, /plain HTTP proxy/)],
  ["a TLS record after empty lines", "\r\n\x16\x03\x01", refused(400, 3, /TLS handshake/)],
  ["NUL in the method", "G\0ET http://a/ HTTP/1.1\r\n", refused(400, 2, /0x00 in the method/)],
  ["a non-token byte in the method", "GE(T http://a/", refused(400, 3, /0x28 in the method/)],
  ["obs-text in the method", "G\xe9T", refused(400, 2, /0xe9 in the method/)],
  ["an empty method", " http://a/ HTTP/1.1\r\n", refused(400, 1, /empty method/)],
  ["HTAB after the method", "GET\thttp://a/", refused(400, 4, /0x09 in the method/)],
  ["a line that ends in the method", "GET\r\n", refused(400, 4, /bare CR in the method/)],
  ["a bare CR before the line", "\rGET", refused(400, 2, /bare CR before the request line/)],
  // target
  ["a double space", "GET  http://a/", refused(400, 5, /double space/)],
  ["a control byte in the target", "GET http://a/\x01x HTTP/1.1\r\n", refused(400, 14, /0x01 in the request-target/)],
  ["DEL in the target", "GET http://a/\x7f", refused(400, 14, /0x7f in the request-target/)],
  ["obs-text in the target", "GET http://a/\xff", refused(400, 14, /0xff in the request-target/)],
  ["CR in the target", "GET http://a/\r\n", refused(400, 14, /bare CR in the request-target/)],
  ["HTTP/0.9 (no version)", "GET http://a/\n", refused(400, 14, /ends before its HTTP version/)],
  // version
  ["lower-case http", "GET http://a/ h", refused(400, 15, /malformed HTTP version/)],
  ["a version that cannot become HTTP/x.y", "GET http://a/ HTTP/1,1", refused(400, 21, /malformed HTTP version/)],
  ["a letter for a digit", "GET http://a/ HTTP/x", refused(400, 20, /malformed HTTP version/)],
  ["HTTP/1.10", "GET http://a/ HTTP/1.10\r\n", refused(400, 23, /malformed HTTP version/)],
  ["HTTP/11", "GET http://a/ HTTP/11", refused(400, 21, /malformed HTTP version/)],
  ["a space before the version", "GET http://a/  HTTP/1.1", refused(400, 15, /malformed HTTP version/)],
  ["a space after the version", "GET http://a/ HTTP/1.1 \r\n", refused(400, 23, /malformed HTTP version/)],
  ["a bare CR after the version", "GET http://a/ HTTP/1.1\rX", refused(400, 24, /bare CR in the request line/)],
  ["a control byte in the version", "GET http://a/ HTTP\0", refused(400, 19, /0x00 in the request line/)],
  // length
  [
    "a long target: 414 as soon as the line is too long",
    `GET http://a/${"x".repeat(100)}`,
    refused(414, MAX_LINE + 1, /request-target is longer than 44/),
  ],
  [
    "a long method: 400 once the target has ended",
    `${"M".repeat(70)} http://a/ HTTP/1.1\r\n`,
    refused(400, 81, /request line is longer than 64/),
  ],
  ["a line of exactly the limit passes", `GET http://a/${"x".repeat(MAX_LINE - 22)} HTTP/1.1\r\n`, { pass: true }],
]

describe("RequestLineScan: refuses at the first impossible byte", () => {
  it.each(cases)("%s", (_rule, input, expected) => {
    const whole = scan([bytes(input)])
    if ("pass" in expected) {
      expect(whole).toEqual({ pass: true })
    } else {
      expect(whole).toMatchObject({ status: expected.status, at: expected.at })
      expect("reason" in whole ? whole.reason : "").toMatch(expected.reason)
    }
    // Byte by byte: the same answer at the same byte.
    expect(scan([...bytes(input)].map((b) => Uint8Array.of(b)))).toEqual(whole)
  })

  it("names the fix for a TLS client in its reason", () => {
    expect(scan([bytes("\x16\x03\x01")])).toEqual({ status: 400, reason: TLS_TO_PLAIN_PROXY, at: 1 })
  })

  it("says whether the line is complete", () => {
    const s = new RequestLineScan(MAX_LINE, MAX_HEAD)
    s.push(bytes("GET http://a/ HTTP/1.1\r"))
    expect(s.lineComplete).toBe(false)
    s.push(bytes("\nHost: a\r\n"))
    expect(s.lineComplete).toBe(true)
    expect(s.seen).toBe(33)
  })
})

/** Request-line-ish noise: valid pieces and impossible bytes. */
const noise = fc
  .array(fc.constantFrom("GET", " ", "http://a/", "HTTP/1.1", "HTTP/", "1", ".", "\r", "\n", "\0", "\x16", "x", "\xe9", "\t"), {
    maxLength: 20,
  })
  .map((parts) => parts.join(""))

describe("RequestLineScan: segmentation", () => {
  test.prop([noise, fc.array(fc.nat(), { maxLength: 10 })])(
    "any split gives the same answer at the same byte as the whole input",
    (s, cuts) => {
      const input = bytes(s)
      expect(scan(splitAt(input, cuts))).toEqual(scan([input]))
    },
  )
})
