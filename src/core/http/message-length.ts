/**
 * message-length: reads Transfer-Encoding and Content-Length (RFC 9112 §6.1-6.3), the two fields that
 * say where a body ends, for requests and responses alike.
 *
 * Owns: the syntax of these two fields. Never: decides which of them wins or what a status is; the
 * request/response framing functions apply RFC 9112 §6.3 with these results.
 *
 * Rules:
 * - Transfer-Encoding is a list of codings, case-insensitive, possibly spread over several fields.
 *   "chunked" must be last and appear once when it appears at all.
 * - Content-Length is 1*DIGIT: no sign, no inner spaces, at most Number.MAX_SAFE_INTEGER. Several fields
 *   or a comma list of equal values collapse to one (RFC 9110 §8.6); differing values are refused.
 */
import { listValues } from "./fields.ts"
import { isDigits } from "./syntax.ts"
import type { Field } from "./types.ts"

export type TransferCoding =
  | { readonly kind: "absent" }
  /** Exactly "chunked". */
  | { readonly kind: "chunked" }
  /** Other codings before a final "chunked" (e.g. "gzip, chunked"). */
  | { readonly kind: "coded-chunked" }
  /** Codings without a final "chunked": the body can only end with the connection. */
  | { readonly kind: "not-chunked" }
  | { readonly kind: "invalid"; readonly reason: string }

export const transferCoding = (headers: ReadonlyArray<Field>): TransferCoding => {
  const codings = listValues(headers, "transfer-encoding").map((c) => c.toLowerCase())
  if (codings.length === 0) {
    // Present but empty ("Transfer-Encoding:") is still present, and means nothing valid.
    return hasField(headers, "transfer-encoding") ? { kind: "invalid", reason: "an empty Transfer-Encoding" } : { kind: "absent" }
  }
  const chunkedCount = codings.filter((c) => c === "chunked").length
  const last = codings[codings.length - 1]
  if (chunkedCount > 1) return { kind: "invalid", reason: "chunked applied more than once in Transfer-Encoding" }
  if (chunkedCount === 1 && last !== "chunked") return { kind: "invalid", reason: "chunked is not the final Transfer-Encoding" }
  if (last !== "chunked") return { kind: "not-chunked" }
  return codings.length === 1 ? { kind: "chunked" } : { kind: "coded-chunked" }
}

export type ContentLength =
  | { readonly kind: "absent" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "invalid"; readonly reason: string }

export const contentLength = (headers: ReadonlyArray<Field>): ContentLength => {
  let length: number | undefined
  for (const [name, value] of headers) {
    if (name.length !== 14 || name.toLowerCase() !== "content-length") continue
    // Elements are split on "," and OWS around them trimmed; an empty element is not a number.
    for (const element of value.split(",")) {
      const digits = element.replace(/^[ \t]+|[ \t]+$/g, "")
      if (!isDigits(digits)) return { kind: "invalid", reason: "Content-Length is not a number" }
      const n = Number(digits)
      if (n > Number.MAX_SAFE_INTEGER) return { kind: "invalid", reason: "Content-Length is too large" }
      if (length !== undefined && length !== n) return { kind: "invalid", reason: "conflicting Content-Length values" }
      length = n
    }
  }
  // A field present with no value cannot get here (an empty element is not a number).
  if (length === undefined) return { kind: "absent" }
  return { kind: "length", length }
}

export const hasField = (headers: ReadonlyArray<Field>, lowerName: string): boolean =>
  headers.some(([n]) => n.length === lowerName.length && n.toLowerCase() === lowerName)
