/** The responses the proxy writes itself, byte for byte. */
import { describe, expect, it } from "vitest"
import { authenticationRequired, connectEstablished, errorResponse, reasonPhrases } from "../../src/core/responses.ts"
import { text } from "./harness.ts"

describe("errorResponse", () => {
  it("is a short text/plain response that closes the connection", () => {
    expect(text(errorResponse(400, "bad request line", "hctunnel"))).toBe(
      "HTTP/1.1 400 Bad Request\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "Content-Length: 34\r\n" +
        "Via: 1.1 hctunnel\r\n" +
        "Connection: close\r\n" +
        "\r\n" +
        "400 Bad Request: bad request line\n",
    )
  })
  it("lists the allowed methods with a 405", () => {
    expect(text(errorResponse(405, "TRACE is not allowed", "p"))).toBe(
      "HTTP/1.1 405 Method Not Allowed\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "Content-Length: 45\r\n" +
        "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT\r\n" +
        "Via: 1.1 p\r\n" +
        "Connection: close\r\n" +
        "\r\n" +
        "405 Method Not Allowed: TRACE is not allowed\n",
    )
  })
  it("names a status it has no phrase for 'Error'", () => {
    expect(text(errorResponse(599, "x", "p"))).toMatch(/^HTTP\/1\.1 599 Error\r\n[\s\S]*\r\n\r\n599 Error: x\n$/)
  })
  it("replaces bytes outside printable ASCII in the detail", () => {
    expect(text(errorResponse(502, "a\r\nb\x00c\xe9d", "p"))).toMatch(/\r\n\r\n502 Bad Gateway: a\?\?b\?c\?d\n$/)
  })
  it.each(Object.entries(reasonPhrases))("%s has its reason phrase", (status, reason) => {
    expect(text(errorResponse(Number(status), "d", "p"))).toMatch(new RegExp(`^HTTP/1\\.1 ${status} ${reason}\\r\\n`))
  })
})

describe("authenticationRequired", () => {
  it.each([
    [true, "Connection: close\r\n"],
    [false, ""],
  ] as const)("close %s", (close, connection) => {
    expect(text(authenticationRequired("credentials\x01 missing", "p", close))).toBe(
      "HTTP/1.1 407 Proxy Authentication Required\r\n" +
        'Proxy-Authenticate: Basic realm="hctunnel", charset="UTF-8"\r\n' +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "Content-Length: 56\r\n" +
        "Via: 1.1 p\r\n" +
        connection +
        "\r\n" +
        "407 Proxy Authentication Required: credentials? missing\n",
    )
  })
})

it("answers a CONNECT with 200 and no framing", () => {
  expect(text(connectEstablished)).toBe("HTTP/1.1 200 Connection established\r\n\r\n")
})
