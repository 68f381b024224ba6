/**
 * The Dialer on its own: what a failed connect means to the core.
 */
import { describe, expect, it } from "vitest"
import { connectFailure } from "../../../src/runtime/dial/Dialer.ts"

describe("connectFailure", () => {
  it.each([
    ["ENOTFOUND", "unresolved"],
    ["EAI_AGAIN", "unresolved"],
    ["ECONNREFUSED", "refused"],
    ["EHOSTUNREACH", "unreachable"],
    ["ENETUNREACH", "unreachable"],
    ["EADDRNOTAVAIL", "unreachable"],
    ["ETIMEDOUT", "timeout"],
    ["ECONNRESET", "error"],
    [undefined, "error"],
  ] as const)("%s -> %s", (code, reason) => {
    expect(connectFailure(code)).toBe(reason)
  })
})
