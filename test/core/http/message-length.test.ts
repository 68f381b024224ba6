/**
 * Transfer-Encoding and Content-Length as parsed fields (RFC 9112 §6), table-driven: which coding a message
 * has, and its length or why that length is refused.
 */
import { describe, expect, it } from "vitest"
import { contentLength, hasField, transferCoding } from "../../../src/core/http/message-length.ts"
import type { Field } from "../../../src/core/http/types.ts"

describe("contentLength", () => {
  it.each<[ReadonlyArray<Field>, ReturnType<typeof contentLength>]>([
    [[], { kind: "absent" }],
    [[["Content-Type", "text/plain"]], { kind: "absent" }],
    // Names of the same length are not Content-Length.
    [[["X-Fourteen-Chr", "abc"]], { kind: "absent" }],
    [[["Content-Lengths", "5"]], { kind: "absent" }],
    [[["Content-Length", "0"]], { kind: "length", length: 0 }],
    [[["content-LENGTH", "42"]], { kind: "length", length: 42 }],
    [[["Content-Length", "5, 5"]], { kind: "length", length: 5 }],
    [[["Content-Length", "5  ,  5"]], { kind: "length", length: 5 }],
    [[["Content-Length", "\t5\t\t,5"]], { kind: "length", length: 5 }],
    [
      [
        ["Content-Length", "5"],
        ["Content-Length", "5"],
      ],
      { kind: "length", length: 5 },
    ],
    [[["Content-Length", "9007199254740991"]], { kind: "length", length: 9007199254740991 }],
    [[["Content-Length", "9007199254740992"]], { kind: "invalid", reason: "Content-Length is too large" }],
    [[["Content-Length", "5, 6"]], { kind: "invalid", reason: "conflicting Content-Length values" }],
    [
      [
        ["Content-Length", "5"],
        ["Content-Length", "6"],
      ],
      { kind: "invalid", reason: "conflicting Content-Length values" },
    ],
    [[["Content-Length", ""]], { kind: "invalid", reason: "Content-Length is not a number" }],
    [[["Content-Length", "5,"]], { kind: "invalid", reason: "Content-Length is not a number" }],
    [[["Content-Length", "5 5"]], { kind: "invalid", reason: "Content-Length is not a number" }],
    [[["Content-Length", "+5"]], { kind: "invalid", reason: "Content-Length is not a number" }],
    [[["Content-Length", "0x5"]], { kind: "invalid", reason: "Content-Length is not a number" }],
  ])("%j -> %j", (fields, expected) => {
    expect(contentLength(fields)).toEqual(expected)
  })
})

describe("transferCoding", () => {
  it.each<[ReadonlyArray<Field>, ReturnType<typeof transferCoding>]>([
    [[], { kind: "absent" }],
    [[["Transfer-Encoding", ""]], { kind: "invalid", reason: "an empty Transfer-Encoding" }],
    [[["Transfer-Encoding", " , "]], { kind: "invalid", reason: "an empty Transfer-Encoding" }],
    [[["Transfer-Encoding", "chunked"]], { kind: "chunked" }],
    [[["transfer-encoding", "CHUNKED"]], { kind: "chunked" }],
    [[["Transfer-Encoding", "gzip, chunked"]], { kind: "coded-chunked" }],
    [
      [
        ["Transfer-Encoding", "gzip"],
        ["Transfer-Encoding", "chunked"],
      ],
      { kind: "coded-chunked" },
    ],
    [[["Transfer-Encoding", "gzip"]], { kind: "not-chunked" }],
    [[["Transfer-Encoding", "chunked, chunked"]], { kind: "invalid", reason: "chunked applied more than once in Transfer-Encoding" }],
    [[["Transfer-Encoding", "chunked, gzip"]], { kind: "invalid", reason: "chunked is not the final Transfer-Encoding" }],
  ])("%j -> %j", (fields, expected) => {
    expect(transferCoding(fields)).toEqual(expected)
  })
})

describe("hasField", () => {
  it.each([
    ["host", true],
    ["hos", false],
    ["hosts", false],
    ["via", false],
  ] as const)("%s: %s", (name, expected) => {
    expect(hasField([["HOST", "a"]], name)).toBe(expected)
  })
})
