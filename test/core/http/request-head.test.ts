import { describe, expect, it } from "vitest"
import { parseRequestHead, requestFraming } from "../../../src/core/http/request-head.ts"
import type { Framing, RequestHead, Target } from "../../../src/core/http/types.ts"
import { bytes } from "./helpers.ts"

const limits = { maxRequestLine: 100, maxHeaders: 5 }

const parse = (head: string) => parseRequestHead(bytes(head), limits)

/** A GET through the proxy with the given extra field lines. */
const get = (fields = "Host: a\r\n", line = "GET http://a/ HTTP/1.1") => `${line}\r\n${fields}\r\n`

type Expect = { readonly status: number; readonly reason: RegExp } | { readonly ok: Partial<RequestHead> }

// [rule, head, expected]: each rule of the contract with accepted and refused cases.
const cases: ReadonlyArray<readonly [string, string, Expect]> = [
  // request-line
  ["a well-formed request line", get(), { ok: { method: "GET", rawTarget: "http://a/", version: "1.1" } }],
  ["an extension method is a token", get("Host: a\r\n", "PURGE http://a/ HTTP/1.1"), { ok: { method: "PURGE" } }],
  ["a method with a non-token byte", get("Host: a\r\n", "GE(T http://a/ HTTP/1.1"), { status: 400, reason: /method/ }],
  ["an empty method", get("Host: a\r\n", " http://a/ HTTP/1.1"), { status: 400, reason: /malformed/ }],
  ["two spaces after the method", get("Host: a\r\n", "GET  http://a/ HTTP/1.1"), { status: 400, reason: /double space/ }],
  ["two spaces before the version", get("Host: a\r\n", "GET http://a/  HTTP/1.1"), { status: 400, reason: /version/ }],
  ["a trailing space after the version", get("Host: a\r\n", "GET http://a/ HTTP/1.1 "), { status: 400, reason: /version/ }],
  ["HTAB instead of SP", get("Host: a\r\n", "GET\thttp://a/ HTTP/1.1"), { status: 400, reason: /./ }],
  ["no version at all (HTTP/0.9 style)", get("Host: a\r\n", "GET http://a/"), { status: 400, reason: /malformed/ }],
  ["a line of exactly the limit", get("Host: a\r\n", `GET http://a/${"x".repeat(100 - 22)} HTTP/1.1`), { ok: { method: "GET" } }],
  [
    "a line over the limit because of its target: 414",
    get("Host: a\r\n", `GET http://a/${"x".repeat(100)} HTTP/1.1`),
    { status: 414, reason: /request-target/ },
  ],
  [
    "a line over the limit because of its method: 400",
    get("Host: a\r\n", `${"M".repeat(90)} http://a/ HTTP/1.1`),
    { status: 400, reason: /request line/ },
  ],
  // version
  ["HTTP/1.0 is accepted", get("", "GET http://a/ HTTP/1.0"), { ok: { version: "1.0" } }],
  ["HTTP/2.0: 505", get("Host: a\r\n", "GET http://a/ HTTP/2.0"), { status: 505, reason: /HTTP\/2\.0/ }],
  ["HTTP/0.9: 505", get("Host: a\r\n", "GET http://a/ HTTP/0.9"), { status: 505, reason: /not supported/ }],
  ["HTTP/1.2: 505", get("Host: a\r\n", "GET http://a/ HTTP/1.2"), { status: 505, reason: /not supported/ }],
  ["lower-case http/1.1: 400", get("Host: a\r\n", "GET http://a/ http/1.1"), { status: 400, reason: /version/ }],
  ["HTTP/1.10: 400", get("Host: a\r\n", "GET http://a/ HTTP/1.10"), { status: 400, reason: /version/ }],
  ["HTTP/11: 400", get("Host: a\r\n", "GET http://a/ HTTP/11"), { status: 400, reason: /version/ }],
  // line ends and control bytes
  ["LF-only line ends", "GET http://a/ HTTP/1.1\nHost: a\n\n", { ok: { headers: [["Host", "a"]] } }],
  ["a bare CR in the request line", get("Host: a\r\n", "GET http://a/\r HTTP/1.1"), { status: 400, reason: /bare CR/ }],
  ["a bare CR in a field value", get("Host: a\r\nX: b\rc\r\n"), { status: 400, reason: /bare CR/ }],
  ["a bare CR at the end of a field value", get("Host: a\r\nX: b\r\r\n"), { status: 400, reason: /bare CR/ }],
  ["a leading bare CR before the request line", "\r" + get(), { status: 400, reason: /method/ }],
  ["NUL in the request-target", get("Host: a\r\n", "GET http://a/\0 HTTP/1.1"), { status: 400, reason: /0x00/ }],
  ["NUL in a field value", get("Host: a\r\nX: \0\r\n"), { status: 400, reason: /0x00 in a field value/ }],
  ["DEL in a field value", get("Host: a\r\nX: \x7f\r\n"), { status: 400, reason: /0x7f/ }],
  [
    "obs-text in a field value is kept as latin1",
    get("Host: a\r\nX: caf\xe9\r\n"),
    {
      ok: {
        headers: [
          ["Host", "a"],
          ["X", "caf\xe9"],
        ],
      },
    },
  ],
  // field lines
  [
    "OWS around a value is trimmed, inner spaces kept",
    get("Host: a\r\nX: \t b  c \t\r\n"),
    {
      ok: {
        headers: [
          ["Host", "a"],
          ["X", "b  c"],
        ],
      },
    },
  ],
  [
    "an empty value",
    get("Host: a\r\nX:\r\n"),
    {
      ok: {
        headers: [
          ["Host", "a"],
          ["X", ""],
        ],
      },
    },
  ],
  ["names keep their case", get("hOsT: a\r\n"), { ok: { headers: [["hOsT", "a"]] } }],
  ["whitespace between name and colon", get("Host: a\r\nX : b\r\n"), { status: 400, reason: /between a field name and its colon/ }],
  ["obs-fold (a line starting with SP)", get("Host: a\r\nX: b\r\n c\r\n"), { status: 400, reason: /folding/ }],
  ["obs-fold (a line starting with HTAB)", get("Host: a\r\nX: b\r\n\tc\r\n"), { status: 400, reason: /folding/ }],
  ["an empty field name", get("Host: a\r\n: b\r\n"), { status: 400, reason: /empty field name/ }],
  ["a non-token byte in a field name", get("Host: a\r\nX(y): b\r\n"), { status: 400, reason: /field name/ }],
  ["a field line without a colon", get("Host: a\r\nXb\r\n"), { status: 400, reason: /without a colon/ }],
  ["as many fields as the limit", get("Host: a\r\n" + "X: 1\r\n".repeat(4)), { ok: { method: "GET" } }],
  ["more fields than the limit: 431", get("Host: a\r\n" + "X: 1\r\n".repeat(5)), { status: 431, reason: /more than 5/ }],
  ["bytes after the empty line", get() + "junk", { status: 400, reason: /after the end/ }],
  ["no empty line at the end", "GET http://a/ HTTP/1.1\r\nHost: a\r\n", { status: 400, reason: /empty line/ }],
  // Host
  ["HTTP/1.1 without Host", get(""), { status: 400, reason: /needs a Host/ }],
  ["HTTP/1.1 with two Host fields", get("Host: a\r\nhost: a\r\n"), { status: 400, reason: /more than one Host/ }],
  ["HTTP/1.0 without Host", get("", "GET http://a/ HTTP/1.0"), { ok: { version: "1.0" } }],
  ["HTTP/1.0 with two Host fields", get("Host: a\r\nHost: a\r\n", "GET http://a/ HTTP/1.0"), { status: 400, reason: /more than one Host/ }],
  // methods
  ["TRACE is refused", get("Host: a\r\n", "TRACE http://a/ HTTP/1.1"), { status: 405, reason: /TRACE/ }],
  ["OPTIONS is not refused", get("Host: a\r\n", "OPTIONS http://a/ HTTP/1.1"), { ok: { method: "OPTIONS" } }],
]

describe("parseRequestHead: rules", () => {
  it.each(cases)("%s", (_rule, head, expected) => {
    const r = parse(head)
    if ("ok" in expected) {
      expect(r.ok ? r.value : r.rejection).toMatchObject(expected.ok)
    } else {
      expect(r.ok ? r.value : r.rejection).toMatchObject({ status: expected.status })
      expect(r.ok ? "" : r.rejection.reason).toMatch(expected.reason)
    }
  })
})

type TargetExpect = { readonly target: Target } | { readonly status: number; readonly reason: RegExp }

// [rule, method, request-target, expected]
const targets: ReadonlyArray<readonly [string, string, string, TargetExpect]> = [
  // CONNECT: authority-form
  ["CONNECT host:port", "CONNECT", "example.com:443", { target: { form: "authority", host: "example.com", port: 443 } }],
  ["CONNECT lower-cases the host", "CONNECT", "Example.COM:443", { target: { form: "authority", host: "example.com", port: 443 } }],
  ["CONNECT to an IPv4", "CONNECT", "10.0.0.1:22", { target: { form: "authority", host: "10.0.0.1", port: 22 } }],
  [
    "CONNECT to an IPv6, brackets removed",
    "CONNECT",
    "[2001:DB8::1]:443",
    { target: { form: "authority", host: "2001:db8::1", port: 443 } },
  ],
  [
    "CONNECT to an IPv6 ending in IPv4",
    "CONNECT",
    "[::ffff:10.0.0.1]:443",
    { target: { form: "authority", host: "::ffff:10.0.0.1", port: 443 } },
  ],
  ["CONNECT port 65535", "CONNECT", "a:65535", { target: { form: "authority", host: "a", port: 65535 } }],
  ["CONNECT without a port", "CONNECT", "example.com", { status: 400, reason: /port/ }],
  ["CONNECT with an empty port", "CONNECT", "example.com:", { status: 400, reason: /port/ }],
  ["CONNECT to port 0", "CONNECT", "example.com:0", { status: 400, reason: /port/ }],
  ["CONNECT to port 65536", "CONNECT", "example.com:65536", { status: 400, reason: /port/ }],
  ["CONNECT with a signed port", "CONNECT", "example.com:+443", { status: 400, reason: /port/ }],
  ["CONNECT with an absolute URI", "CONNECT", "http://example.com:443/", { status: 400, reason: /./ }],
  ["CONNECT with origin-form", "CONNECT", "/", { status: 400, reason: /./ }],
  ["CONNECT with userinfo", "CONNECT", "user@example.com:443", { status: 400, reason: /userinfo/ }],
  ["CONNECT with an empty host", "CONNECT", ":443", { status: 400, reason: /empty host/ }],
  // One spelling for every name rule: one trailing dot (the DNS root) dropped; an empty label refused.
  ["CONNECT drops one trailing dot", "CONNECT", "Internal.Test.:443", { target: { form: "authority", host: "internal.test", port: 443 } }],
  ["CONNECT with two trailing dots", "CONNECT", "internal.test..:443", { status: 400, reason: /empty label/ }],
  ["CONNECT with two dots inside", "CONNECT", "internal..test:443", { status: 400, reason: /empty label/ }],
  ["CONNECT with a leading dot", "CONNECT", ".internal.test:443", { status: 400, reason: /empty label/ }],
  ["CONNECT to the root alone", "CONNECT", ".:443", { status: 400, reason: /empty label/ }],
  ["CONNECT to an IPv4 with a trailing dot", "CONNECT", "10.0.0.1.:22", { target: { form: "authority", host: "10.0.0.1", port: 22 } }],
  ["CONNECT with an unbracketed IPv6", "CONNECT", "::1:443", { status: 400, reason: /./ }],
  ["CONNECT with a bad IPv6", "CONNECT", "[1:2:3:4:5:6:7:8:9]:443", { status: 400, reason: /IPv6/ }],
  ["CONNECT with an IPv6 zone id", "CONNECT", "[fe80::1%25eth0]:443", { status: 400, reason: /IPv6/ }],
  ["CONNECT with an unterminated IPv6", "CONNECT", "[::1:443", { status: 400, reason: /IPv6/ }],
  ["CONNECT with a bad percent-encoding", "CONNECT", "a%zz:443", { status: 400, reason: /host/ }],
  // absolute-form
  [
    "http URI with path and query",
    "GET",
    "http://example.com/a/b?x=1",
    { target: { form: "absolute", host: "example.com", port: 80, path: "/a/b?x=1" } },
  ],
  [
    "scheme and host are case-insensitive",
    "GET",
    "HTTP://Example.Com:8080/P",
    { target: { form: "absolute", host: "example.com", port: 8080, path: "/P" } },
  ],
  ["an empty path becomes /", "GET", "http://example.com", { target: { form: "absolute", host: "example.com", port: 80, path: "/" } }],
  [
    "a query without a path gets /",
    "GET",
    "http://example.com?q",
    { target: { form: "absolute", host: "example.com", port: 80, path: "/?q" } },
  ],
  ["IPv6 host", "GET", "http://[::1]:8080/", { target: { form: "absolute", host: "::1", port: 8080, path: "/" } }],
  [
    "raw { | } in a query (as browsers send them)",
    "GET",
    "http://a/?q={x|y}",
    { target: { form: "absolute", host: "a", port: 80, path: "/?q={x|y}" } },
  ],
  ["a fragment", "GET", "http://example.com/#frag", { status: 400, reason: /fragment/ }],
  ["userinfo", "GET", "http://user:pw@example.com/", { status: 400, reason: /userinfo/ }],
  [
    "a trailing dot is dropped, from the Host written too",
    "GET",
    "http://Internal.Test.:8080/x",
    { target: { form: "absolute", host: "internal.test", port: 8080, path: "/x" } },
  ],
  ["two trailing dots", "GET", "http://internal.test../", { status: 400, reason: /empty label/ }],
  ["two dots inside", "GET", "http://internal..test/", { status: 400, reason: /empty label/ }],
  ["a leading dot", "GET", "http://.internal.test:80/", { status: 400, reason: /empty label/ }],
  ["a numeric host with two trailing dots", "GET", "http://127.1../", { status: 400, reason: /empty label/ }],
  ["an empty host", "GET", "http:///path", { status: 400, reason: /empty host/ }],
  ["no authority", "GET", "http:/path", { status: 400, reason: /authority/ }],
  ["a bad port", "GET", "http://a:99999/", { status: 400, reason: /port/ }],
  ["https: 501 (use CONNECT)", "GET", "https://example.com/", { status: 501, reason: /CONNECT/ }],
  ["other schemes: 501", "GET", "ftp://example.com/", { status: 501, reason: /ftp/ }],
  ["origin-form: 400 (this is a proxy)", "GET", "/index.html", { status: 400, reason: /proxy.*absolute URI/ }],
  ["asterisk-form: 400 (this is a proxy)", "OPTIONS", "*", { status: 400, reason: /proxy.*absolute URI/ }],
  ["a non-ASCII byte in the target", "GET", "http://a/\xe9", { status: 400, reason: /0xe9 in the request-target/ }],
  ["DEL in the target", "GET", "http://a/\x7f", { status: 400, reason: /0x7f in the request-target/ }],
  ["a control byte in the target", "GET", "http://a/\x01", { status: 400, reason: /0x01 in the request-target/ }],
]

describe("parseRequestHead: request-target", () => {
  it.each(targets)("%s", (_rule, method, target, expected) => {
    const r = parse(`${method} ${target} HTTP/1.1\r\nHost: h\r\n\r\n`)
    if ("target" in expected) {
      expect(r.ok ? r.value.target : r.rejection).toEqual(expected.target)
    } else {
      expect(r.ok ? r.value : r.rejection).toMatchObject({ status: expected.status })
      expect(r.ok ? "" : r.rejection.reason).toMatch(expected.reason)
    }
  })
})

type FramingExpect = Framing | { readonly status: number }

// [rule, request line, field lines, expected framing]
const framings: ReadonlyArray<readonly [string, string, string, FramingExpect]> = [
  ["no body fields: none", "GET http://a/ HTTP/1.1", "", { kind: "none" }],
  ["Content-Length", "POST http://a/ HTTP/1.1", "Content-Length: 42\r\n", { kind: "length", length: 42 }],
  ["Content-Length 0: none", "POST http://a/ HTTP/1.1", "Content-Length: 0\r\n", { kind: "none" }],
  ["Content-Length with leading zeros", "POST http://a/ HTTP/1.1", "Content-Length: 007\r\n", { kind: "length", length: 7 }],
  [
    "equal Content-Length fields collapse",
    "POST http://a/ HTTP/1.1",
    "Content-Length: 5\r\nContent-Length: 5\r\n",
    { kind: "length", length: 5 },
  ],
  ["an equal Content-Length list collapses", "POST http://a/ HTTP/1.1", "Content-Length: 5, 5\r\n", { kind: "length", length: 5 }],
  ["differing Content-Length fields", "POST http://a/ HTTP/1.1", "Content-Length: 5\r\nContent-Length: 6\r\n", { status: 400 }],
  ["a differing Content-Length list", "POST http://a/ HTTP/1.1", "Content-Length: 5, 6\r\n", { status: 400 }],
  ["a signed Content-Length", "POST http://a/ HTTP/1.1", "Content-Length: +5\r\n", { status: 400 }],
  ["a negative Content-Length", "POST http://a/ HTTP/1.1", "Content-Length: -1\r\n", { status: 400 }],
  ["a space inside Content-Length", "POST http://a/ HTTP/1.1", "Content-Length: 1 2\r\n", { status: 400 }],
  ["a hex Content-Length", "POST http://a/ HTTP/1.1", "Content-Length: 0x10\r\n", { status: 400 }],
  ["an empty Content-Length", "POST http://a/ HTTP/1.1", "Content-Length:\r\n", { status: 400 }],
  [
    "Content-Length = MAX_SAFE_INTEGER",
    "POST http://a/ HTTP/1.1",
    "Content-Length: 9007199254740991\r\n",
    { kind: "length", length: Number.MAX_SAFE_INTEGER },
  ],
  ["Content-Length > MAX_SAFE_INTEGER", "POST http://a/ HTTP/1.1", "Content-Length: 9007199254740992\r\n", { status: 400 }],
  ["chunked", "POST http://a/ HTTP/1.1", "Transfer-Encoding: chunked\r\n", { kind: "chunked" }],
  ["chunked, any case", "POST http://a/ HTTP/1.1", "transfer-encoding: ChUnKeD\r\n", { kind: "chunked" }],
  [
    "TE and CL together: smuggling guard",
    "POST http://a/ HTTP/1.1",
    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    { status: 400 },
  ],
  ["TE in HTTP/1.0", "POST http://a/ HTTP/1.0", "Transfer-Encoding: chunked\r\n", { status: 400 }],
  ["gzip before chunked: 501", "POST http://a/ HTTP/1.1", "Transfer-Encoding: gzip, chunked\r\n", { status: 501 }],
  [
    "codings in several fields: 501",
    "POST http://a/ HTTP/1.1",
    "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
    { status: 501 },
  ],
  ["chunked not last: 400", "POST http://a/ HTTP/1.1", "Transfer-Encoding: chunked, gzip\r\n", { status: 400 }],
  ["no chunked at all: 400", "POST http://a/ HTTP/1.1", "Transfer-Encoding: gzip\r\n", { status: 400 }],
  ["chunked twice: 400", "POST http://a/ HTTP/1.1", "Transfer-Encoding: chunked, chunked\r\n", { status: 400 }],
  ["an empty Transfer-Encoding: 400", "POST http://a/ HTTP/1.1", "Transfer-Encoding:\r\n", { status: 400 }],
  ["CONNECT: none", "CONNECT a:443 HTTP/1.1", "", { kind: "none" }],
  ["CONNECT with Content-Length 0: none", "CONNECT a:443 HTTP/1.1", "Content-Length: 0\r\n", { kind: "none" }],
  ["CONNECT with Transfer-Encoding: ignored", "CONNECT a:443 HTTP/1.1", "Transfer-Encoding: chunked\r\n", { kind: "none" }],
  ["CONNECT with Content-Length > 0", "CONNECT a:443 HTTP/1.1", "Content-Length: 5\r\n", { status: 400 }],
]

describe("requestFraming: rules", () => {
  it.each(framings)("%s", (_rule, line, fields, expected) => {
    const head = parse(`${line}\r\nHost: a\r\n${fields}\r\n`)
    expect(head.ok).toBe(true)
    if (!head.ok) return
    const r = requestFraming(head.value)
    expect(r.ok ? r.value : { status: r.rejection.status }).toEqual(expected)
  })
})
