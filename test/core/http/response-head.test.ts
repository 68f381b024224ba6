import { describe, expect, it } from "vitest"
import { parseResponseHead, responseFraming } from "../../../src/core/http/response-head.ts"
import type { Framing, ResponseHead } from "../../../src/core/http/types.ts"
import { bytes } from "./helpers.ts"

const parse = (head: string) => parseResponseHead(bytes(head), { maxHeaders: 3 })

type Expect = { readonly ok: Partial<ResponseHead> } | { readonly error: RegExp }

// [rule, head, expected]
const cases: ReadonlyArray<readonly [string, string, Expect]> = [
  ["a status line with a reason", "HTTP/1.1 200 OK\r\n\r\n", { ok: { version: "1.1", status: 200, reason: "OK", headers: [] } }],
  ["a reason with spaces", "HTTP/1.0 404 Not Found\r\n\r\n", { ok: { version: "1.0", status: 404, reason: "Not Found" } }],
  ["a reason with obs-text", "HTTP/1.1 200 \xc7a va\r\n\r\n", { ok: { reason: "\xc7a va" } }],
  ["no SP and no reason is tolerated", "HTTP/1.1 200\r\n\r\n", { ok: { status: 200, reason: "" } }],
  ["SP and an empty reason", "HTTP/1.1 204 \r\n\r\n", { ok: { status: 204, reason: "" } }],
  ["LF-only line ends", "HTTP/1.1 200 OK\nA: b\n\n", { ok: { headers: [["A", "b"]] } }],
  ["status 100", "HTTP/1.1 100 Continue\r\n\r\n", { ok: { status: 100 } }],
  ["status 599", "HTTP/1.1 599 X\r\n\r\n", { ok: { status: 599 } }],
  ["status 099", "HTTP/1.1 099 X\r\n\r\n", { error: /out of range/ }],
  ["status 600", "HTTP/1.1 600 X\r\n\r\n", { error: /out of range/ }],
  ["a two-digit status", "HTTP/1.1 20 OK\r\n\r\n", { error: /malformed/ }],
  ["a four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", { error: /malformed/ }],
  ["a non-digit status", "HTTP/1.1 2x0 OK\r\n\r\n", { error: /status code/ }],
  ["two spaces after the version", "HTTP/1.1  200 OK\r\n\r\n", { error: /status code/ }],
  ["HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", { error: /unsupported HTTP version/ }],
  ["a lower-case version", "http/1.1 200 OK\r\n\r\n", { error: /malformed HTTP version/ }],
  ["not HTTP at all", "ICY 200 OK\r\n\r\n", { error: /malformed/ }],
  ["a control byte in the reason", "HTTP/1.1 200 O\x01K\r\n\r\n", { error: /0x01 in the reason phrase/ }],
  ["a bare CR in the reason", "HTTP/1.1 200 O\rK\r\n\r\n", { error: /bare CR/ }],
  ["a bare CR in a field", "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", { error: /bare CR/ }],
  ["obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", { error: /folding/ }],
  ["space before colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", { error: /colon/ }],
  ["as many fields as the limit", "HTTP/1.1 200 OK\r\nA: 1\r\nA: 2\r\nA: 3\r\n\r\n", { ok: { status: 200 } }],
  ["more fields than the limit", "HTTP/1.1 200 OK\r\nA: 1\r\nA: 2\r\nA: 3\r\nA: 4\r\n\r\n", { error: /more than 3/ }],
  ["no line end at all", "HTTP/1.1 200 OK", { error: /^the response head does not end with an empty line$/ }],
  ["a status line too short for a status", "HTTP/1.1 20\r\n\r\n", { error: /^malformed status line$/ }],
  ["no SP after the version", "HTTP/1.1-200 OK\r\n\r\n", { error: /^malformed status line$/ }],
  ["no SP after the status", "HTTP/1.1 200-OK\r\n\r\n", { error: /^malformed status line$/ }],
  ["no empty line after the fields", "HTTP/1.1 200 OK\r\nA: b\r\n", { error: /^the head does not end with an empty line$/ }],
]

describe("parseResponseHead: rules", () => {
  it.each(cases)("%s", (_rule, head, expected) => {
    const r = parse(head)
    if ("ok" in expected) expect(r.ok ? r.value : r.reason).toMatchObject(expected.ok)
    else expect(r.ok ? r.value : r.reason).toMatch(expected.error)
  })
})

type FramingExpect = Framing | { readonly error: true }

// [rule, request method, status line, field lines, expected]
const framings: ReadonlyArray<readonly [string, string, string, string, FramingExpect]> = [
  ["Content-Length", "GET", "HTTP/1.1 200 OK", "Content-Length: 10\r\n", { kind: "length", length: 10 }],
  ["Content-Length 0: none", "GET", "HTTP/1.1 200 OK", "Content-Length: 0\r\n", { kind: "none" }],
  ["an equal Content-Length list", "GET", "HTTP/1.1 200 OK", "Content-Length: 3,3\r\n", { kind: "length", length: 3 }],
  ["differing Content-Length", "GET", "HTTP/1.1 200 OK", "Content-Length: 3\r\nContent-Length: 4\r\n", { error: true }],
  ["a non-numeric Content-Length", "GET", "HTTP/1.1 200 OK", "Content-Length: abc\r\n", { error: true }],
  ["a huge Content-Length", "GET", "HTTP/1.1 200 OK", "Content-Length: 99999999999999999999\r\n", { error: true }],
  ["chunked", "GET", "HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", { kind: "chunked" }],
  ["gzip, chunked: chunked", "GET", "HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked\r\n", { kind: "chunked" }],
  ["TE not ending in chunked: until-close", "GET", "HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n", { kind: "until-close" }],
  ["chunked not last", "GET", "HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip\r\n", { error: true }],
  ["chunked twice", "GET", "HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", { error: true }],
  ["TE and CL", "GET", "HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", { error: true }],
  ["TE in an HTTP/1.0 response", "GET", "HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\n", { error: true }],
  ["neither: until-close", "GET", "HTTP/1.1 200 OK", "", { kind: "until-close" }],
  ["HEAD: none despite Content-Length", "HEAD", "HTTP/1.1 200 OK", "Content-Length: 10\r\n", { kind: "none" }],
  ["HEAD: none despite chunked", "HEAD", "HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", { kind: "none" }],
  ["1xx: none", "GET", "HTTP/1.1 100 Continue", "", { kind: "none" }],
  ["101: none", "GET", "HTTP/1.1 101 Switching Protocols", "Upgrade: websocket\r\n", { kind: "none" }],
  ["204: none", "GET", "HTTP/1.1 204 No Content", "Content-Length: 5\r\n", { kind: "none" }],
  ["304: none", "GET", "HTTP/1.1 304 Not Modified", "Content-Length: 5\r\n", { kind: "none" }],
  ["205 is not exempt", "GET", "HTTP/1.1 205 Reset Content", "Content-Length: 0\r\n", { kind: "none" }],
  ["2xx to CONNECT: none", "CONNECT", "HTTP/1.1 200 OK", "Content-Length: 5\r\n", { kind: "none" }],
  ["non-2xx to CONNECT has a body", "CONNECT", "HTTP/1.1 407 Auth", "Content-Length: 5\r\n", { kind: "length", length: 5 }],
  ["299 to CONNECT: none", "CONNECT", "HTTP/1.1 299 X", "Content-Length: 5\r\n", { kind: "none" }],
  ["300 to CONNECT has a body", "CONNECT", "HTTP/1.1 300 Multiple Choices", "Content-Length: 5\r\n", { kind: "length", length: 5 }],
  ["199: none", "GET", "HTTP/1.1 199 X", "Content-Length: 5\r\n", { kind: "none" }],
  ["200 has its body", "GET", "HTTP/1.1 200 OK", "Content-Length: 5\r\n", { kind: "length", length: 5 }],
]

describe("responseFraming: rules", () => {
  it.each(framings)("%s", (_rule, method, line, fields, expected) => {
    const head = parse(`${line}\r\n${fields}\r\n`)
    expect(head.ok).toBe(true)
    if (!head.ok) return
    const r = responseFraming(head.value, method)
    expect(r.ok ? r.value : { error: true }).toEqual(expected)
    if (!r.ok) expect(r.reason.length).toBeGreaterThan(0)
  })
})
