/**
 * decodeLatin1 has three paths (short ranges, all-ASCII ranges through TextDecoder, long ranges in slices)
 * that must give the same string: one character per byte, whatever the length, the bytes around the range,
 * and where the first byte of 0x80 or above sits. Each case is checked against a plain per-byte reference.
 */
import { describe, expect, it } from "vitest"
import { decodeLatin1, encodeLatin1 } from "../../../src/core/http/latin1.ts"

const reference = (bytes: Uint8Array, start: number, end: number): string => {
  let s = ""
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!)
  return s
}

/** `length` ASCII letters with `byte` at `at` (when given), inside `pad` non-ASCII bytes on each side. */
const buffer = (length: number, at?: number, byte = 0x80, pad = 0): { bytes: Uint8Array; start: number; end: number } => {
  const bytes = new Uint8Array(length + 2 * pad).fill(0xff)
  for (let i = 0; i < length; i++) bytes[pad + i] = 0x61 + (i % 26)
  if (at !== undefined) bytes[pad + at] = byte
  return { bytes, start: pad, end: pad + length }
}

describe("decodeLatin1", () => {
  it.each([
    // [length, position of the non-ASCII byte, the byte, padding around the range]
    [0, undefined, 0x80, 0],
    [1, 0, 0x80, 0],
    [31, 30, 0x80, 0],
    [32, undefined, 0x80, 0],
    [32, 0, 0x80, 0],
    [32, 31, 0x80, 0],
    [33, 16, 0x80, 0],
    [40, 39, 0x80, 0],
    [40, 20, 0x7f, 0],
    [40, 20, 0xff, 0],
    [40, 20, 0x81, 0],
    [40, undefined, 0x80, 3],
    [40, 0, 0x80, 3],
    [4095, 4000, 0xe9, 0],
    [4096, undefined, 0x80, 0],
    [4096, 4095, 0x80, 0],
    [4097, 4096, 0x80, 0],
    [8192, 8191, 0x80, 1],
    [8193, 0, 0x80, 2],
    [10_000, 9_999, 0x80, 5],
  ] as const)("length %i, byte at %s = %i, padding %i", (length, at, byte, pad) => {
    const { bytes, start, end } = buffer(length, at, byte, pad)
    const s = decodeLatin1(bytes, start, end)
    expect(s.length).toBe(length)
    expect(s).toBe(reference(bytes, start, end))
  })

  it("decodes an all-ASCII range inside non-ASCII bytes without reading past its end", () => {
    const bytes = new Uint8Array([0xe9, ...new Array(64).fill(0x41), 0xe9])
    expect(decodeLatin1(bytes, 1, 65)).toBe("A".repeat(64))
    expect(decodeLatin1(bytes, 0, 66)).toBe(`\xe9${"A".repeat(64)}\xe9`)
  })
})

describe("encodeLatin1", () => {
  it.each([
    ["", []],
    ["abc", [0x61, 0x62, 0x63]],
    ["\x80\xff", [0x80, 0xff]],
    ["a\u0100b", [0x61, 0x3f, 0x62]],
    ["\u20ac", [0x3f]],
  ] as const)("%j -> %j", (s, bytes) => {
    expect([...encodeLatin1(s)]).toEqual(bytes)
  })
})
