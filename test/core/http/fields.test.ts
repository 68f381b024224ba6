/**
 * The line and list helpers of fields.ts, table-driven: where a line's content ends, how list elements are
 * trimmed, and case-insensitive lookups. (Field-line grammar is tested through the head parsers.)
 */
import { describe, expect, it } from "vitest"
import { fieldValues, hasToken, isForbiddenTrailer, lineContentEnd, listValues, nextLineStart } from "../../../src/core/http/fields.ts"
import type { Field } from "../../../src/core/http/types.ts"
import { bytes } from "./helpers.ts"

describe("lineContentEnd", () => {
  it.each([
    ["a\n", 0, 1],
    ["a\r\n", 0, 1],
    ["\n", 0, 0],
    ["\r\n", 0, 0],
    ["ab", 0, -1],
    ["", 0, -1],
    ["x\r\nyz\n", 3, 5],
    ["x\r\nyz\r\n", 3, 5],
    ["x\r\n\r\n", 3, 3],
    ["x\n\n", 2, 2],
    ["a\rb\n", 0, 3],
  ])("%j from %i ends at %i", (head, pos, end) => {
    expect(lineContentEnd(bytes(head), pos)).toBe(end)
  })
})

describe("nextLineStart", () => {
  it.each([
    ["a\r\nb", 1, 3],
    ["a\nb", 1, 2],
    ["\r\n", 0, 2],
  ])("%j after content end %i starts at %i", (head, end, next) => {
    expect(nextLineStart(bytes(head), end)).toBe(next)
  })
})

describe("listValues", () => {
  it.each<[ReadonlyArray<Field>, string, string[]]>([
    [[["Connection", "close"]], "connection", ["close"]],
    [[["Connection", "a b, c"]], "connection", ["a b", "c"]],
    [[["Connection", "  close  ,\tx\t\t"]], "connection", ["close", "x"]],
    [[["Connection", " \t a \t "]], "connection", ["a"]],
    [[["Connection", ", ,a,,"]], "connection", ["a"]],
    [
      [
        ["Connection", "a"],
        ["Other", "b"],
        ["CONNECTION", "c"],
      ],
      "connection",
      ["a", "c"],
    ],
    [[["Connections", "a"]], "connection", []],
    [[["Connectio", "a"]], "connection", []],
  ])("%j: %s -> %j", (fields, name, values) => {
    expect(listValues(fields, name)).toEqual(values)
  })
})

describe("fieldValues and hasToken", () => {
  const fields: ReadonlyArray<Field> = [
    ["Connection", "Keep-Alive,  Upgrade "],
    ["upgrade", "websocket"],
    ["X-Connection", "close"],
  ]
  it.each([
    ["connection", "keep-alive", true],
    ["Connection", "UPGRADE", true],
    ["connection", "close", false],
    ["connection", "upgrad", false],
    ["connection", "upgrades", false],
    ["x-connection", "close", true],
    ["upgrade", "websocket", true],
  ] as const)("hasToken(%s, %s) is %s", (name, token, expected) => {
    expect(hasToken(fields, name, token)).toBe(expected)
  })
  it("finds every value of a name in order, whatever its case", () => {
    expect(fieldValues(fields, "UPGRADE")).toEqual(["websocket"])
    expect(
      fieldValues(
        [
          ["A", "1"],
          ["a", "2"],
          ["ab", "3"],
        ],
        "a",
      ),
    ).toEqual(["1", "2"])
  })
  it.each([
    ["Content-Length", true],
    ["set-COOKIE", true],
    ["X-Checksum", false],
  ] as const)("isForbiddenTrailer(%s) is %s", (name, expected) => {
    expect(isForbiddenTrailer(name)).toBe(expected)
  })
})
