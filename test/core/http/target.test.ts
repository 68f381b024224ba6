/**
 * Request-targets, table-driven: IPv6 literals (RFC 3986 §3.2.2), authority-form for CONNECT and
 * absolute-form for the rest, each refusal with its reason.
 */
import { describe, expect, it } from "vitest"
import { isIPv6, parseAbsoluteForm, parseAuthorityForm } from "../../../src/core/http/target.ts"

describe("isIPv6", () => {
  it.each([
    "::",
    "::1",
    "1::",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4",
    "::ffff:127.0.0.1",
    "::1.2.3.4",
    "1::1.2.3.4",
    "abcd:EF01::",
    "0:0:0:0:0:0:0:0",
  ])("%s is an IPv6 address", (s) => {
    expect(isIPv6(s)).toBe(true)
  })

  it.each([
    ["", "empty"],
    ["1::2::3", "two ::"],
    [":::", "three colons"],
    ["1:2:3:4:5:6:7", "seven groups, no ::"],
    ["1:2:3:4:5:6:7:8:9", "nine groups"],
    ["1:2:3:4:5:6:7:8::", ":: with eight groups"],
    ["1:2:3:4::5:6:7:8", ":: with eight groups around it"],
    ["1:2:3:4:5:6:7:1.2.3.4", "an IPv4 making nine units"],
    ["::g", "a non-hex digit"],
    ["::12345", "a group of five digits"],
    ["1::2:", "an empty last group"],
    [":1::2", "an empty first group"],
    ["::1.2.3.999", "an invalid embedded IPv4"],
    ["::1.2.3", "an embedded IPv4 of three parts"],
    ["::01.2.3.4", "an embedded IPv4 with a leading zero"],
    ["::1.2.3.4:5", "an IPv4 that is not the last group"],
    ["1.2.3.4::", "an IPv4 before ::"],
    ["::1.2.3.4.", "an IPv4 with a trailing dot"],
    ["::a.2.3.4", "a non-digit in the IPv4"],
    ["::1%eth0", "a zone id"],
  ])("%j is not (%s)", (s) => {
    expect(isIPv6(s)).toBe(false)
  })
})

describe("parseAuthorityForm (CONNECT)", () => {
  it.each([
    ["example.com:443", "example.com", 443],
    ["EXAMPLE.com:1", "example.com", 1],
    ["a.test:65535", "a.test", 65535],
    ["[::1]:8443", "::1", 8443],
    ["[ABCD::1]:443", "abcd::1", 443],
    // numeric hosts are normalised after lower-casing: a hex letter in upper case still counts
    ["1.2.3.0XA:443", "1.2.3.10", 443],
    ["0x7F.1:22", "127.0.0.1", 22],
  ] as const)("%s -> %s port %i", (raw, host, port) => {
    expect(parseAuthorityForm(raw)).toEqual({ ok: true, value: { form: "authority", host, port } })
  })

  it.each([
    ["example.com", "CONNECT needs a port (host:port)"],
    ["example.com:", "invalid port in the request-target (must be 1..65535)"],
    ["example.com:0", "invalid port in the request-target (must be 1..65535)"],
    ["example.com:65536", "invalid port in the request-target (must be 1..65535)"],
    ["example.com:443443", "invalid port in the request-target (must be 1..65535)"],
    ["example.com:44a", "invalid port in the request-target (must be 1..65535)"],
    ["example.com:-1", "invalid port in the request-target (must be 1..65535)"],
    [":443", "empty host in the request-target"],
    ["user@example.com:443", "userinfo (user@) in the request-target is not allowed"],
    ["[::1:443", "unterminated IPv6 literal in the request-target"],
    ["[::g]:443", "invalid IPv6 literal in the request-target"],
    ["[::1]x:443", "invalid authority in the request-target"],
    ["[::1]443", "invalid authority in the request-target"],
    ["exa mple.com:443", "invalid host in the request-target"],
    ["a%zz.com:443", "invalid host in the request-target"],
    ["a%2.com:443", "invalid host in the request-target"],
    ["a%:443", "invalid host in the request-target"],
    ["a%20b:443", "percent-encoded host names are not supported in the request-target"],
    ["1.2.3.256:443", "the host in the request-target ends in a number but is not a valid IPv4 address"],
  ])("%j is refused: %s", (raw, reason) => {
    expect(parseAuthorityForm(raw)).toEqual({ ok: false, rejection: { status: 400, reason } })
  })
})

describe("parseAbsoluteForm", () => {
  it.each([
    ["http://example.com", "example.com", 80, "/"],
    ["http://example.com/", "example.com", 80, "/"],
    ["HTTP://Example.COM:8080/a/b?c=d", "example.com", 8080, "/a/b?c=d"],
    ["http://example.com?q", "example.com", 80, "/?q"],
    ["hTtP://[::1]/x", "::1", 80, "/x"],
    ["http://a.test:1/", "a.test", 1, "/"],
  ] as const)("%s -> %s:%i %s", (raw, host, port, path) => {
    expect(parseAbsoluteForm(raw)).toEqual({ ok: true, value: { form: "absolute", host, port, path } })
  })

  it.each([
    ["/x", 400, "this is a proxy: the request-target must be an absolute URI (http://host/path)"],
    ["*", 400, "this is a proxy: the request-target must be an absolute URI (http://host/path)"],
    ["1http://x/", 400, "this is a proxy: the request-target must be an absolute URI (http://host/path)"],
    ["https://example.com/", 501, "https URIs are not proxied this way: use CONNECT for https"],
    ["HTTPS://example.com/", 501, "https URIs are not proxied this way: use CONNECT for https"],
    ["ftp://example.com/", 501, 'the URI scheme "ftp" is not supported'],
    ["web+x://example.com/", 501, 'the URI scheme "web+x" is not supported'],
    ["http://example.com/#top", 400, "a fragment (#) in the request-target is not allowed"],
    ["http:example.com/", 400, "an http URI needs an authority (http://host/...)"],
    ["http:/example.com/", 400, "an http URI needs an authority (http://host/...)"],
    ["http:///x", 400, "empty host in the request-target"],
    ["http://user@example.com/", 400, "userinfo (user@) in the request-target is not allowed"],
    ["http://example.com:0/", 400, "invalid port in the request-target (must be 1..65535)"],
    ["http://example.com:/", 400, "invalid port in the request-target (must be 1..65535)"],
  ] as const)("%j is refused with %i: %s", (raw, status, reason) => {
    expect(parseAbsoluteForm(raw)).toEqual({ ok: false, rejection: { status, reason } })
  })
})
