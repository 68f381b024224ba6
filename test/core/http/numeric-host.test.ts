/**
 * Numeric host forms (WHATWG URL IPv4 parser): normalised to a dotted quad, or refused, before any
 * destination policy or resolver sees them.
 */
import { describe, expect, it } from "vitest"
import { cannotEndInNumber, isCanonicalQuad, normalizeNumericHost } from "../../../src/core/http/numeric-host.ts"
import { parseAbsoluteForm, parseAuthorityForm } from "../../../src/core/http/target.ts"

describe("normalizeNumericHost", () => {
  it.each([
    ["2130706433", "127.0.0.1"],
    ["0x7f000001", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["0x7f.0.0.1", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["127.0.1", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["0177.1", "127.0.0.1"],
    ["017700000001", "127.0.0.1"],
    ["127.0.0.1", "127.0.0.1"],
    ["127.0.0.1.", "127.0.0.1"],
    ["0", "0.0.0.0"],
    ["0x", "0.0.0.0"],
    ["0xa9fea9fe", "169.254.169.254"],
    ["169.254.43518", "169.254.169.254"],
    ["10.0.0.010", "10.0.0.8"],
    ["4294967295", "255.255.255.255"],
    ["1.2.3.0x4", "1.2.3.4"],
    // the hex prefix in either case (WHATWG), though the target parser lower-cases hosts first
    ["0X7f.1", "127.0.0.1"],
    ["0X7F000001", "127.0.0.1"],
    ["255.0.0.01", "255.0.0.1"],
    ["0255.0.0.1", "173.0.0.1"],
    // the canonical dotted quad (checked without splitting) and its near misses
    ["255.255.255.255", "255.255.255.255"],
    ["0.0.0.0", "0.0.0.0"],
    ["1.2.3.04", "1.2.3.4"],
    ["00.1.2.3", "0.1.2.3"],
  ])("%s -> %s", (host, dotted) => {
    expect(normalizeNumericHost(host)).toEqual({ ok: true, host: dotted })
  })

  it.each([
    ["example.com"],
    ["a.b.c"],
    ["localhost"],
    ["1.2.3.foo"],
    ["0x7f.example"],
    ["xn--nxasmq6b.example"],
    ["a1"],
    ["1a.com"],
    ["example.org."],
    ["cafe"],
    ["box"],
    // last labels that are no IPv4 number in any base
    ["0xg1"],
    ["0a7"],
    ["07a"],
    ["1a"],
  ])("leaves the name %s alone", (host) => {
    expect(normalizeNumericHost(host)).toEqual({ ok: true, host })
  })

  it.each([
    ["4294967296"],
    ["1.2.3.256"],
    ["256.1.1.1"],
    ["1.2.3.4.5"],
    ["1.2.3.4.0"],
    ["09"],
    ["1..2"],
    ["1.2.3.4.5."],
    ["1.2.3.1000"],
    ["foo.123"],
    ["foo.0x1"],
    ["09.1.1.1"],
    ["0x1g.1"],
    ["1.2.65536"],
    ["99999999999999999999999"],
    ["%31%32%37.0.0.1"],
    ["exa%6dple.com"],
  ])("refuses %s", (host) => {
    expect(normalizeNumericHost(host).ok).toBe(false)
  })
})

describe("the target parser normalises before anything else", () => {
  it("CONNECT and absolute-form", () => {
    expect(parseAuthorityForm("2130706433:22")).toEqual({ ok: true, value: { form: "authority", host: "127.0.0.1", port: 22 } })
    expect(parseAuthorityForm("0X7F.1:443")).toEqual({ ok: true, value: { form: "authority", host: "127.0.0.1", port: 443 } })
    expect(parseAbsoluteForm("http://127.1:8080/x")).toEqual({
      ok: true,
      value: { form: "absolute", host: "127.0.0.1", port: 8080, path: "/x" },
    })
    expect(parseAbsoluteForm("http://0177.0.0.1/")).toEqual({
      ok: true,
      value: { form: "absolute", host: "127.0.0.1", port: 80, path: "/" },
    })
    expect(parseAbsoluteForm("http://[::ffff:127.0.0.1]/")).toEqual({
      ok: true,
      value: { form: "absolute", host: "::ffff:127.0.0.1", port: 80, path: "/" },
    })
  })
  it("refuses with 400", () => {
    for (const raw of ["http://1.2.3.256/", "http://%31%32%37.0.0.1/", "http://foo.123/"]) {
      const r = parseAbsoluteForm(raw)
      expect(r.ok ? undefined : r.rejection.status, raw).toBe(400)
    }
    const r = parseAuthorityForm("4294967296:443")
    expect(r.ok ? undefined : r.rejection.status).toBe(400)
  })
})

/** The fast paths: they must say yes exactly when the slow path would change nothing. */
describe("isCanonicalQuad", () => {
  it.each([
    ["127.0.0.1", true],
    ["0.0.0.0", true],
    ["255.255.255.255", true],
    ["1.22.103.9", true],
    ["10.0.0.10", true],
    ["1.2.3", false],
    ["1.2.3.4.5", false],
    ["1.2.3.", false],
    [".1.2.3", false],
    ["1..2.3", false],
    ["1.2.3.4.", false],
    ["01.2.3.4", false],
    ["1.2.3.04", false],
    ["1.2.3.00", false],
    ["1.2.3.256", false],
    ["1.2.3.1000", false],
    ["1.2.3.0255", false],
    ["1.2.3.a", false],
    ["1.2.3.4a", false],
    ["1.2.3./", false],
    ["1.2.3.:", false],
    ["", false],
  ] as const)("%j: %s", (host, expected) => {
    expect(isCanonicalQuad(host)).toBe(expected)
  })
})

describe("cannotEndInNumber", () => {
  it.each([
    ["example.com", true],
    ["example.com.", true],
    ["localhost", true],
    ["a.b-", true],
    ["", true],
    [".", true],
    ["a/", true],
    ["a:", true],
    ["a`", true],
    ["a.g", true],
    ["a.y", true],
    ["a.0", false],
    ["a.9", false],
    ["a.9.", false],
    ["a.a", false],
    ["a.f", false],
    ["a.x", false],
  ] as const)("%j: %s", (host, expected) => {
    expect(cannotEndInNumber(host)).toBe(expected)
  })
})
