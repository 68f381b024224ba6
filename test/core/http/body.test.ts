import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { type BodyFramer, type FeedResult, makeFramer } from "../../../src/core/http/body.ts"
import type { Framing } from "../../../src/core/http/types.ts"
import { bytes, splitAt, text } from "./helpers.ts"

const limits = { maxChunkLine: 32, maxTrailerBytes: 64 }

/**
 * What a framer made of a stream: the bytes it forwards, the bytes left after the body, and whether it is
 * done; or its error, with what it forwarded before it.
 */
type Outcome = { body: string; rest: string; done: boolean } | { error: string; sent?: string }

/** The bytes a feed says to forward of `chunk`. */
const forwarded = (chunk: Uint8Array, r: FeedResult): string =>
  r.pieces !== undefined ? r.pieces.map(text).join("") : text(chunk.subarray(0, r.forward))

/** Feed chunks as the Postman does: stop at done (the rest belongs to what follows) or at an error. */
const run = (framer: BodyFramer, chunks: ReadonlyArray<Uint8Array>): Outcome => {
  let body = ""
  let rest = ""
  let finished = false
  for (const chunk of chunks) {
    if (finished) {
      rest += text(chunk)
      continue
    }
    const r = framer.feed(chunk)
    body += forwarded(chunk, r)
    if (r.error !== undefined) return { error: r.error, sent: body }
    expect(r.consumed).toBeGreaterThanOrEqual(0)
    expect(r.consumed).toBeLessThanOrEqual(chunk.length)
    if (r.done) {
      finished = true
      rest += text(chunk.subarray(r.consumed))
    } else {
      expect(r.consumed).toBe(chunk.length) // a body that is not done takes everything offered
    }
  }
  return { body, rest, done: framer.done }
}

const chunked = () => makeFramer({ kind: "chunked" }, limits)

describe("makeFramer: none, length, until-close", () => {
  const cases: ReadonlyArray<readonly [string, Framing, string, Outcome, boolean]> = [
    ["none is done at once", { kind: "none" }, "next", { body: "", rest: "next", done: true }, true],
    ["length 0 is done at once", { kind: "length", length: 0 }, "next", { body: "", rest: "next", done: true }, true],
    ["length takes its count", { kind: "length", length: 3 }, "abcdef", { body: "abc", rest: "def", done: true }, true],
    ["length waits for more", { kind: "length", length: 10 }, "abc", { body: "abc", rest: "", done: false }, false],
    ["until-close takes everything", { kind: "until-close" }, "abcdef", { body: "abcdef", rest: "", done: false }, true],
  ]
  it.each(cases)("%s", (_rule, framing, input, expected, endOk) => {
    const framer = makeFramer(framing, limits)
    expect(run(framer, [bytes(input)])).toEqual(expected)
    expect(framer.endOfStream()).toBe(endOk)
  })
})

// [rule, input, expected]: the body is the framing-included bytes up to the end of the chunked body.
const chunkedCases: ReadonlyArray<readonly [string, string, Outcome]> = [
  ["one chunk and the last chunk", "5\r\nhello\r\n0\r\n\r\nNEXT", { body: "5\r\nhello\r\n0\r\n\r\n", rest: "NEXT", done: true }],
  ["several chunks", "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n", { body: "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n", rest: "", done: true }],
  [
    "hex sizes, both cases",
    "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n",
    { body: "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", rest: "", done: true },
  ],
  ["leading zeros in the size", "0005\r\nhello\r\n000\r\n\r\n", { body: "0005\r\nhello\r\n000\r\n\r\n", rest: "", done: true }],
  // Chunk extensions (RFC 9112 §7.1.1) are validated, then dropped with the BWS before them.
  ["chunk extensions are dropped", '5;a=b;c="d e"\r\nhello\r\n0;x\r\n\r\n', { body: "5\r\nhello\r\n0\r\n\r\n", rest: "", done: true }],
  ["BWS before an extension", "5 \t;a\r\nhello\r\n0\r\n\r\n", { body: "5\r\nhello\r\n0\r\n\r\n", rest: "", done: true }],
  ["BWS around = and after ;", "5; a = b ;c\r\nhello\r\n0\r\n\r\n", { body: "5\r\nhello\r\n0\r\n\r\n", rest: "", done: true }],
  [
    "a quoted-string with a quoted-pair and obs-text",
    '5;a="x\\"y\xe9"\r\nhello\r\n0\r\n\r\n',
    { body: "5\r\nhello\r\n0\r\n\r\n", rest: "", done: true },
  ],
  ["an empty extension", "2;\r\nab\r\n", { error: "empty chunk extension name", sent: "" }],
  ["an empty extension name before =", "2;=b\r\nab\r\n", { error: "empty chunk extension name", sent: "" }],
  ["an empty extension value", "2;a=\r\nab\r\n", { error: "empty chunk extension value", sent: "" }],
  ["an unbalanced quote", '2;a="b\r\nab\r\n', { error: "unterminated or invalid quoted-string in chunk extension", sent: "" }],
  ["obs-text outside a quoted-string", "2;a=\xe9\r\nab\r\n", { error: "invalid character in chunk extension", sent: "" }],
  ["obs-text in an extension name", "2;\xe9\r\nab\r\n", { error: "invalid character in chunk extension", sent: "" }],
  ["a byte after a closing quote", '2;a="b"c\r\nab\r\n', { error: "invalid character in chunk extension", sent: "" }],
  ["whitespace before the line end", "2;a \r\nab\r\n", { error: "whitespace at the end of a chunk extension", sent: "" }],
  ["whitespace after a value before the line end", "2;a=b\t\r\nab\r\n", { error: "whitespace at the end of a chunk extension", sent: "" }],
  [
    "a malformed second size line: nothing of it is forwarded",
    "3\r\nabc\r\n2;\r\nxy\r\n",
    { error: "empty chunk extension name", sent: "3\r\nabc\r\n" },
  ],
  ["a trailer section", "0\r\nX-Sum: 1\r\nY:2\r\n\r\nN", { body: "0\r\nX-Sum: 1\r\nY:2\r\n\r\n", rest: "N", done: true }],
  [
    "trailer fields forbidden by RFC 9110 §6.5.1 are dropped",
    "0\r\nContent-Length: 5\r\nX: 1\r\nhost: e\r\nTE: a\r\nCookie: c\r\nY: 2\r\n\r\n",
    { body: "0\r\nX: 1\r\nY: 2\r\n\r\n", rest: "", done: true },
  ],
  [
    "their underscore spellings are dropped too (CGI reads Transfer_Encoding as Transfer-Encoding)",
    "0\r\nTransfer_Encoding: chunked\r\nX_Sum: 1\r\ncontent_length: 5\r\n\r\n",
    { body: "0\r\nX_Sum: 1\r\n\r\n", rest: "", done: true },
  ],
  ["an incomplete body is not done", "5\r\nhel", { body: "5\r\nhel", rest: "", done: false }],
  ["the largest chunk size", "1fffffffffffff\r\nab", { body: "1fffffffffffff\r\nab", rest: "", done: false }],
  ["an empty chunk size", "\r\nhello\r\n", { error: "missing or invalid chunk size" }],
  ["a non-hex chunk size", "g\r\n", { error: "missing or invalid chunk size" }],
  ["a signed chunk size", "+5\r\nhello\r\n", { error: "missing or invalid chunk size" }],
  ["a 0x prefix", "0x5\r\nhello\r\n", { error: "invalid character in chunk size" }],
  ["a size over 2^53-1", "20000000000000\r\n", { error: "chunk size too large" }],
  ["a size of 17 hex digits", "10000000000000000\r\n", { error: "chunk size too large" }],
  [
    "whitespace then junk after the size",
    "5 x\r\nhello\r\n",
    { error: "whitespace after a chunk size must be followed by a chunk extension" },
  ],
  [
    "whitespace then the line end after the size",
    "5 \r\nhello\r\n",
    { error: "whitespace after a chunk size must be followed by a chunk extension" },
  ],
  [
    "a bare LF after the size (forwarded verbatim: CRLF required)",
    "5\nhello\r\n0\r\n\r\n",
    { error: "bare LF in chunk size line (CRLF required)" },
  ],
  ["a bare LF ending the last chunk's trailer section", "0\r\n\n", { error: "bare LF in the trailer section (CRLF required)" }],
  ["a bare LF after a trailer field", "0\r\nX: y\n\r\n", { error: "bare LF in the trailer section (CRLF required)" }],
  ["a bare CR after the size", "5\rhello\r\n", { error: "bare CR in chunk size line" }],
  ["NUL in an extension", "5;a\0\r\nhello\r\n", { error: "invalid character in chunk extension" }],
  ["a bare CR in an extension", "5;a\rb\r\nhello\r\n", { error: "bare CR in chunk size line" }],
  ["a size line over the limit", "5;" + "a".repeat(40) + "\r\n", { error: "chunk size line longer than 32 bytes" }],
  ["data followed by LF only", "5\r\nhello\n0\r\n\r\n", { error: "chunk data not followed by CRLF" }],
  ["data longer than its size", "5\r\nhelloX\r\n", { error: "chunk data not followed by CRLF" }],
  ["data followed by CR and junk", "5\r\nhello\rX", { error: "chunk data not followed by CRLF" }],
  ["obs-fold in the trailer", "0\r\nA: b\r\n c\r\n\r\n", { error: "obsolete line folding in the trailer section" }],
  ["space before colon in the trailer", "0\r\nA : b\r\n\r\n", { error: "whitespace between a trailer field name and its colon" }],
  ["a trailer line without a colon", "0\r\nAb\r\n\r\n", { error: "invalid character in a trailer field name" }],
  ["an empty trailer name", "0\r\n: b\r\n\r\n", { error: "invalid character in a trailer field name" }],
  ["a bare CR in a trailer value", "0\r\nA: b\rc\r\n\r\n", { error: "bare CR in the trailer section" }],
  ["a bare CR as the final line", "0\r\n\rX", { error: "bare CR in the trailer section" }],
  ["a NUL in a trailer value", "0\r\nA: \0\r\n\r\n", { error: "invalid character in a trailer field value" }],
  ["a trailer section over the limit", "0\r\n" + "A: b\r\n".repeat(11) + "\r\n", { error: "trailer section larger than 64 bytes" }],
]

describe("makeFramer: chunked rules", () => {
  it.each(chunkedCases)("%s", (_rule, input, expected) => {
    const whole = run(chunked(), [bytes(input)])
    if ("error" in expected) expect(whole).toMatchObject(expected)
    else expect(whole).toEqual(expected)
    // Byte by byte gives the same, what is forwarded before an error included.
    expect(
      run(
        chunked(),
        [...bytes(input)].map((b) => Uint8Array.of(b)),
      ),
    ).toEqual(whole)
  })

  it("endOfStream is legal only once the chunked body is complete", () => {
    const framer = chunked()
    framer.feed(bytes("5\r\nhel"))
    expect(framer.endOfStream()).toBe(false)
    framer.feed(bytes("lo\r\n0\r\n\r\n"))
    expect(framer.done).toBe(true)
    expect(framer.endOfStream()).toBe(true)
  })

  it("keeps answering its error", () => {
    const framer = chunked()
    expect(framer.feed(bytes("z"))).toEqual({ error: "missing or invalid chunk size", consumed: 0, done: false, forward: 0 })
    expect(framer.feed(bytes("5\r\nhello\r\n"))).toEqual({ error: "missing or invalid chunk size", consumed: 0, done: false, forward: 0 })
  })

  it("reports the valid prefix before an error", () => {
    expect(chunked().feed(bytes("3\r\nabc\r\nzz\r\n"))).toEqual({
      error: "missing or invalid chunk size",
      consumed: 8,
      done: false,
      forward: 8,
    })
  })

  it("a done framer consumes nothing more", () => {
    const framer = chunked()
    framer.feed(bytes("0\r\n\r\n"))
    expect(framer.feed(bytes("GET"))).toEqual({ consumed: 0, done: true, forward: 0 })
  })

  it("skips chunk data in bulk: a 1 MB chunk in one feed", () => {
    const data = new Uint8Array(1 << 20).fill(0x61)
    const framer = chunked()
    expect(framer.feed(bytes("100000\r\n"))).toEqual({ consumed: 8, done: false, forward: 8 })
    expect(framer.feed(data)).toEqual({ consumed: data.length, done: false, forward: data.length })
    expect(framer.feed(bytes("\r\n0\r\n\r\n"))).toEqual({ consumed: 7, done: true, forward: 7 })
  })

  it("holds a size line split across reads, and retains only its digits", () => {
    const framer = chunked()
    expect(framer.feed(bytes("00"))).toEqual({ consumed: 2, done: false, forward: 0 })
    expect(framer.held).toBe(2)
    expect(framer.feed(bytes("5;ext=1"))).toEqual({ consumed: 7, done: false, forward: 0 })
    expect(framer.held).toBe(3)
    const r = framer.feed(bytes("\r\nhello\r\n"))
    expect(r.pieces?.map(text)).toEqual(["005\r\n", "hello\r\n"])
    expect(framer.held).toBe(0)
  })
})

/** Well-formed chunked bodies, with extensions and trailers, followed by other bytes; and what is forwarded of them. */
const chunkedBody = fc
  .record({
    chunks: fc.array(
      fc.record({
        data: fc.string({ maxLength: 20 }).filter((s) => s.length > 0),
        ext: fc.constantFrom("", ";a", ";a=b", ' ;x="y"', '; a = "\\" " ;b'),
        zeros: fc.constantFrom("", "0", "00"),
      }),
      { maxLength: 5 },
    ),
    trailers: fc.array(fc.constantFrom("X: y", "Sum:1", "A-B: c d", "Content-Length: 1", "Host: h"), { maxLength: 3 }),
    after: fc.constantFrom("", "GET / HTTP/1.1\r\n", "junk"),
  })
  .map(({ chunks, trailers, after }) => {
    let body = ""
    let sent = ""
    for (const c of chunks) {
      const size = `${c.zeros}${c.data.length.toString(16)}`
      body += `${size}${c.ext}\r\n${c.data}\r\n`
      sent += `${size}\r\n${c.data}\r\n`
    }
    body += "0\r\n" + trailers.map((t) => t + "\r\n").join("") + "\r\n"
    sent +=
      "0\r\n" +
      trailers
        .filter((t) => !/^(Content-Length|Host):/.test(t))
        .map((t) => t + "\r\n")
        .join("") +
      "\r\n"
    return { body, sent, after }
  })

/** Arbitrary bytes from the chunked alphabet, valid or not. */
const chunkedNoise = fc
  .array(fc.constantFrom("0", "1", "5", "a", "F", "\r", "\n", "\r\n", ";", " ", "x", "hello", ":", "\0", "=", '"', "\\", "\xe9", "Host:"), {
    maxLength: 40,
  })
  .map((parts) => parts.join(""))

describe("makeFramer: chunked segmentation invariance", () => {
  test.prop([chunkedBody, fc.array(fc.nat(), { maxLength: 10 })])(
    "a valid body split anywhere is found complete, with the same end",
    ({ body, sent, after }, cuts) => {
      const input = bytes(body + after)
      expect(run(chunked(), splitAt(input, cuts))).toEqual({ body: sent, rest: after, done: true })
    },
  )

  test.prop([chunkedNoise, fc.array(fc.nat(), { maxLength: 10 })])(
    "any input split anywhere gives the same outcome as the whole input",
    (s, cuts) => {
      const input = bytes(s)
      expect(run(chunked(), splitAt(input, cuts))).toEqual(run(chunked(), [input]))
    },
  )
})
