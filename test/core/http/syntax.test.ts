import { describe, expect, it } from "vitest"
import { decodeLatin1, encodeLatin1 } from "../../../src/core/http/latin1.ts"
import { isFieldValueChar, isTargetChar, isTchar, isToken, isUriChar, isVchar } from "../../../src/core/http/syntax.ts"

const members = (t: Uint8Array): string => {
  let s = ""
  for (let b = 0; b < 128; b++) if (t[b] === 1) s += String.fromCharCode(b)
  return s
}

describe("character classes", () => {
  it("tchar is ALPHA / DIGIT and !#$%&'*+-.^_`|~", () => {
    expect(members(isTchar)).toBe("!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~")
    expect(isTchar[0x80]).toBe(0)
  })
  it("VCHAR is 0x21..0x7E", () => {
    expect(members(isVchar)).toBe(Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)).join(""))
    expect(isVchar[0xff]).toBe(0)
  })
  it("field-value chars are VCHAR, obs-text, SP, HTAB", () => {
    expect(members(isFieldValueChar)).toBe("\t " + members(isVchar))
    expect(isFieldValueChar[0x80]).toBe(1)
    expect(isFieldValueChar[0xff]).toBe(1)
    for (const b of [0x00, 0x0a, 0x0d, 0x7f]) expect(isFieldValueChar[b]).toBe(0)
  })
  it("URI chars are RFC 3986 only", () => {
    for (const c of "aZ09-._~:/?#[]@!$&'()*+,;=%") expect(isUriChar[c.charCodeAt(0)]).toBe(1)
    for (const c of ' "<>\\^`{|}\x7f\x00\x80') expect(isUriChar[c.charCodeAt(0)]).toBe(0)
  })
  it("target chars are VCHAR: no controls, SP, DEL or non-ASCII", () => {
    expect(members(isTargetChar)).toBe(members(isVchar))
    expect(isTargetChar[0x80]).toBe(0)
  })
  it.each([
    ["GET", true],
    ["X-Custom_1", true],
    ["", false],
    ["a b", false],
    ["a:b", false],
    ["caf\xe9", false],
    ["\u0147", false],
  ] as const)("isToken(%j) is %s", (s, expected) => {
    expect(isToken(s)).toBe(expected)
  })
})

describe("latin1", () => {
  it("round-trips every byte value", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    const s = decodeLatin1(all, 0, 256)
    expect(s.length).toBe(256)
    expect(encodeLatin1(s)).toEqual(all)
  })
  it("decodes long ranges (beyond one String.fromCharCode call)", () => {
    const long = new Uint8Array(10_000).fill(0xe9)
    expect(decodeLatin1(long, 1, 10_000)).toBe("\xe9".repeat(9_999))
  })
  it("encodes characters above 0xFF as ?", () => {
    expect(encodeLatin1("a\u20acb")).toEqual(Uint8Array.of(0x61, 0x3f, 0x62))
  })
})
