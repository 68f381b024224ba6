/**
 * request-head: parses a complete request head (as cut by HeadReader) and decides how its body is
 * framed. Every refusal carries the status to answer and a short reason.
 *
 * Owns: the request line, the request-side rules on fields (Host, TRACE) and request framing.
 * Never: reads past the head, or forwards anything; the head is re-serialized by serialize.ts.
 *
 * Rules (RFC 9112 §3, §6.3; RFC 9110 §7.2, §9.3.8):
 * - request-line = method SP request-target SP HTTP-version, single SPs, method a token. Controls, DEL
 *   or bytes above 0x7E in the line: 400. A line longer than maxRequestLine: 414 when its target is longer
 *   than maxRequestLine - 20 (the target made it long), else 400.
 * - "HTTP/1.1" and "HTTP/1.0" only; any other "HTTP/d.d": 505; anything else: 400.
 * - Field lines as in fields.ts (bare CR, obs-fold, space before colon: 400; too many fields: 431).
 * - The target as in target.ts (CONNECT: authority-form; others: http absolute-form).
 * - HTTP/1.1 needs exactly one Host field, HTTP/1.0 at most one: else 400.
 * - TRACE: 405, a proxy must not reflect headers that may carry credentials. No other method is refused.
 * requestFraming:
 * - Transfer-Encoding with Content-Length: 400 (the classic smuggling ambiguity). Transfer-Encoding in
 *   HTTP/1.0: 400. Transfer-Encoding exactly "chunked": chunked; other codings before a final chunked: 501; chunked
 *   missing, not last or repeated: 400 (RFC 9112 §6.3: the length cannot be determined).
 * - Content-Length as in message-length.ts (errors: 400); 0: none. Neither field: none.
 * - CONNECT has no body: Content-Length > 0 is 400; any other framing is ignored (none).
 */
import { describeBadByte, lineContentEnd, nextLineStart, parseFieldLines } from "./fields.ts"
import { decodeLatin1 } from "./latin1.ts"
import { contentLength, transferCoding } from "./message-length.ts"
import { isDigit, isTargetChar, isTchar, SP } from "./syntax.ts"
import { parseAbsoluteForm, parseAuthorityForm } from "./target.ts"
import type { Framing, HttpVersion, Rejection, RequestHead } from "./types.ts"

export type RequestHeadResult = { readonly ok: true; readonly value: RequestHead } | { readonly ok: false; readonly rejection: Rejection }
export type RequestFramingResult = { readonly ok: true; readonly value: Framing } | { readonly ok: false; readonly rejection: Rejection }

/** Room left in a request line for the method, the two SPs and the version when deciding 414 vs 400. */
export const REQUEST_LINE_OVERHEAD = 20

const reject = (status: Rejection["status"], reason: string): { ok: false; rejection: Rejection } => ({
  ok: false,
  rejection: { status, reason },
})

const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f] // "HTTP/"

/** HTTP-version at head[from, to): "1.0" / "1.1", "other" for a well-formed HTTP/d.d, undefined if malformed. */
export const parseVersion = (head: Uint8Array, from: number, to: number): HttpVersion | "other" | undefined => {
  if (to - from !== 8) return undefined
  for (let k = 0; k < 5; k++) if (head[from + k] !== HTTP_SLASH[k]) return undefined
  const major = head[from + 5] as number
  const minor = head[from + 7] as number
  if (isDigit[major] !== 1 || head[from + 6] !== 0x2e || isDigit[minor] !== 1) return undefined
  if (major === 0x31 && minor === 0x31) return "1.1"
  if (major === 0x31 && minor === 0x30) return "1.0"
  return "other"
}

const rejectParsed = (
  text: string,
  sp1: number,
  sp2: number,
  status: Rejection["status"],
  reason: string,
): { ok: false; rejection: Rejection } => ({
  ok: false,
  rejection: { status, reason, method: text.slice(0, sp1), target: text.slice(sp1 + 1, sp2) },
})

export const parseRequestHead = (
  head: Uint8Array,
  limits: { readonly maxRequestLine: number; readonly maxHeaders: number },
): RequestHeadResult => {
  const end = lineContentEnd(head, 0)
  if (end === -1) return reject(400, "the request head does not end with an empty line")
  const sp1 = head.indexOf(SP, 0)
  const sp2 = sp1 === -1 || sp1 >= end ? -1 : head.indexOf(SP, sp1 + 1)
  if (end > limits.maxRequestLine) {
    const targetLength = sp2 !== -1 && sp2 < end ? sp2 - sp1 - 1 : end - sp1 - 1
    if (sp1 !== -1 && sp1 < end && targetLength > limits.maxRequestLine - REQUEST_LINE_OVERHEAD) {
      return reject(414, `the request-target is longer than ${limits.maxRequestLine - REQUEST_LINE_OVERHEAD} bytes`)
    }
    return reject(400, `the request line is longer than ${limits.maxRequestLine} bytes`)
  }
  if (sp1 === -1 || sp1 >= end || sp2 === -1 || sp2 >= end) return reject(400, "malformed request line")
  // method
  if (sp1 === 0) return reject(400, "malformed request line (empty method)")
  for (let i = 0; i < sp1; i++) {
    if (isTchar[head[i] as number] !== 1) return reject(400, `${describeBadByte(head[i], "the method")}`)
  }
  // request-target: exactly one SP before it, VCHARs only
  if (sp2 === sp1 + 1) return reject(400, "malformed request line (empty request-target or double space)")
  for (let i = sp1 + 1; i < sp2; i++) {
    if (isTargetChar[head[i] as number] !== 1) return reject(400, `${describeBadByte(head[i], "the request-target")}`)
  }
  // HTTP-version: the rest of the line. A control byte is named; an extra SP is a malformed version.
  for (let i = sp2 + 1; i < end; i++) {
    const b = head[i] as number
    if (b !== SP && isTargetChar[b] !== 1) return reject(400, `${describeBadByte(b, "the request line")}`)
  }
  const version = parseVersion(head, sp2 + 1, end)
  if (version === undefined) return reject(400, "malformed HTTP version in the request line")
  const text = decodeLatin1(head, 0, head.length)
  // From here on the request line is parsed: every refusal names its method and target (for the log).
  if (version === "other")
    return rejectParsed(
      text,
      sp1,
      sp2,
      505,
      `HTTP version ${decodeLatin1(head, sp2 + 1, end)} is not supported (only HTTP/1.0 and HTTP/1.1)`,
    )

  let method = text.slice(0, sp1)
  // A tunnel keeps its method and target (for its log line) as long as it is open: they must not be
  // slices of the head's text, which would keep all of it alive. The literal "CONNECT" is one shared string.
  const connect = method === "CONNECT"
  if (connect) method = "CONNECT"
  const rawTarget = connect ? decodeLatin1(head, sp1 + 1, sp2) : text.slice(sp1 + 1, sp2)
  const fields = parseFieldLines(head, text, nextLineStart(head, end), limits.maxHeaders)
  if (!fields.ok) return rejectParsed(text, sp1, sp2, fields.tooMany ? 431 : 400, fields.reason)
  const target = connect ? parseAuthorityForm(rawTarget) : parseAbsoluteForm(rawTarget)
  if (!target.ok) return rejectParsed(text, sp1, sp2, target.rejection.status, target.rejection.reason)

  let hosts = 0
  for (const [name] of fields.fields) if (name.length === 4 && name.toLowerCase() === "host") hosts++
  if (hosts > 1) return rejectParsed(text, sp1, sp2, 400, "more than one Host field")
  if (hosts === 0 && version === "1.1") return rejectParsed(text, sp1, sp2, 400, "an HTTP/1.1 request needs a Host field")
  if (method === "TRACE")
    return rejectParsed(text, sp1, sp2, 405, "TRACE is refused: a proxy must not reflect request headers that may carry credentials")

  return { ok: true, value: { method, rawTarget, target: target.value, version, headers: fields.fields } }
}

/**
 * The method and request-target of a request line that RequestLineScan let through (`line` without its
 * line end), for the log of a head refused before it was complete (431, 408); undefined if it has no two SPs.
 */
export const requestLineParts = (line: Uint8Array): { readonly method: string; readonly target: string } | undefined => {
  const sp1 = line.indexOf(SP)
  const sp2 = sp1 === -1 ? -1 : line.indexOf(SP, sp1 + 1)
  if (sp2 === -1) return undefined
  return { method: decodeLatin1(line, 0, sp1), target: decodeLatin1(line, sp1 + 1, sp2) }
}

const none: Framing = { kind: "none" }
const chunked: Framing = { kind: "chunked" }

export const requestFraming = (head: RequestHead): RequestFramingResult => {
  const te = transferCoding(head.headers)
  const cl = contentLength(head.headers)
  if (te.kind !== "absent" && cl.kind !== "absent") return reject(400, "both Transfer-Encoding and Content-Length")
  if (te.kind !== "absent" && head.version === "1.0") return reject(400, "Transfer-Encoding in an HTTP/1.0 request")
  if (cl.kind === "invalid") return reject(400, cl.reason)
  if (head.method === "CONNECT") {
    // RFC 9110 §9.3.6: a CONNECT request has no content; what follows the head is the tunnel.
    if (cl.kind === "length" && cl.length > 0) return reject(400, "a CONNECT request cannot have a body")
    return { ok: true, value: none }
  }
  switch (te.kind) {
    case "chunked":
      return { ok: true, value: chunked }
    case "invalid":
      return reject(400, te.reason)
    case "not-chunked":
      // RFC 9112 §6.3: without a final chunked the request's length cannot be known: 400, not 501.
      return reject(400, "the final Transfer-Encoding of a request must be chunked")
    case "coded-chunked":
      return reject(501, "only the chunked transfer coding is supported in requests")
    case "absent":
      break
  }
  if (cl.kind === "length" && cl.length > 0) return { ok: true, value: { kind: "length", length: cl.length } }
  return { ok: true, value: none }
}
