/**
 * response-head: parses a complete response head from the origin (as cut by HeadReader) and decides
 * how its body is framed. Failures carry a reason only: the Postman answers 502 for all of them.
 *
 * Owns: the status line and response framing. Never: reads past the head or forwards raw head bytes.
 *
 * Rules (RFC 9112 §4, §6.3):
 * - status-line = HTTP-version SP 3DIGIT SP [reason-phrase]; "HTTP/1.1 200" without SP and reason is
 *   tolerated; the version is HTTP/1.0 or HTTP/1.1; the status is 100..599; reason-phrase bytes are
 *   HTAB / SP / VCHAR / obs-text.
 * - Field lines as in fields.ts (bare CR, obs-fold, space before colon, too many fields: error).
 * responseFraming, in RFC 9112 §6.3 order:
 * - a response to HEAD, 1xx, 204, 304: none; a 2xx to CONNECT: none (the tunnel starts).
 * - Transfer-Encoding with Content-Length: error. Transfer-Encoding ending in chunked: chunked; not
 *   ending in chunked: until-close; chunked repeated or not last: error. Transfer-Encoding in an HTTP/1.0
 *   response: error (§6.1: the framing must be treated as faulty, as for requests).
 * - Content-Length as in message-length.ts (errors: error; 0: none). Neither: until-close.
 */
import { describeBadByte, lineContentEnd, nextLineStart, parseFieldLines } from "./fields.ts"
import { decodeLatin1 } from "./latin1.ts"
import { contentLength, transferCoding } from "./message-length.ts"
import { parseVersion } from "./request-head.ts"
import { isDigit, isFieldValueChar, SP } from "./syntax.ts"
import type { Framing, ResponseHead } from "./types.ts"

export type ResponseHeadResult = { readonly ok: true; readonly value: ResponseHead } | { readonly ok: false; readonly reason: string }
export type ResponseFramingResult = { readonly ok: true; readonly value: Framing } | { readonly ok: false; readonly reason: string }

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason })

/**
 * Interim (1xx) responses accepted for one request; one more is a 502. Real origins send one or two
 * (100 Continue, 103 Early Hints); an endless stream of them would hold a request open for ever.
 */
export const MAX_INTERIM_RESPONSES = 10

/** "HTTP/1.1" is 8 bytes, then SP and 3 digits. */
const VERSION_LENGTH = 8
const STATUS_END = VERSION_LENGTH + 4

export const parseResponseHead = (head: Uint8Array, limits: { readonly maxHeaders: number }): ResponseHeadResult => {
  const end = lineContentEnd(head, 0)
  if (end === -1) return fail("the response head does not end with an empty line")
  if (end < STATUS_END || head[VERSION_LENGTH] !== SP) return fail("malformed status line")
  const version = parseVersion(head, 0, VERSION_LENGTH)
  if (version === undefined) return fail("malformed HTTP version in the status line")
  if (version === "other") return fail(`unsupported HTTP version ${decodeLatin1(head, 0, VERSION_LENGTH)} in the status line`)
  let status = 0
  for (let i = VERSION_LENGTH + 1; i < STATUS_END; i++) {
    const b = head[i] as number
    if (isDigit[b] !== 1) return fail("malformed status code")
    status = status * 10 + (b - 0x30)
  }
  if (status < 100 || status > 599) return fail(`status code ${status} out of range`)
  let reason = ""
  if (end > STATUS_END) {
    if (head[STATUS_END] !== SP) return fail("malformed status line")
    for (let i = STATUS_END + 1; i < end; i++) {
      const b = head[i] as number
      if (isFieldValueChar[b] !== 1) return fail(describeBadByte(b, "the reason phrase"))
    }
  }
  const text = decodeLatin1(head, 0, head.length)
  if (end > STATUS_END) reason = text.slice(STATUS_END + 1, end)
  const fields = parseFieldLines(head, text, nextLineStart(head, end), limits.maxHeaders)
  if (!fields.ok) return fail(fields.reason)
  return { ok: true, value: { version, status, reason, headers: fields.fields } }
}

const none: Framing = { kind: "none" }
const chunked: Framing = { kind: "chunked" }
const untilClose: Framing = { kind: "until-close" }

/**
 * RFC 9112 §6.3: a response to HEAD, a 1xx, a 204 or a 304 ends with its head, whatever its fields say.
 * Such a head may still announce a length (that of the body a GET would get), and an origin that
 * gets this wrong sends that body anyway: the one case where the origin and we may disagree on where a
 * response ends without either reading a malformed byte.
 */
export const cannotHaveBody = (status: number, requestMethod: string): boolean =>
  requestMethod === "HEAD" || status < 200 || status === 204 || status === 304

export const responseFraming = (head: ResponseHead, requestMethod: string): ResponseFramingResult => {
  const { status } = head
  if (cannotHaveBody(status, requestMethod)) return { ok: true, value: none }
  if (requestMethod === "CONNECT" && status < 300) return { ok: true, value: none }
  const te = transferCoding(head.headers)
  const cl = contentLength(head.headers)
  if (te.kind !== "absent" && cl.kind !== "absent") return fail("both Transfer-Encoding and Content-Length in the response")
  if (te.kind !== "absent" && head.version === "1.0") return fail("Transfer-Encoding in an HTTP/1.0 response")
  switch (te.kind) {
    case "invalid":
      return fail(te.reason)
    case "chunked":
    case "coded-chunked":
      return { ok: true, value: chunked }
    case "not-chunked":
      return { ok: true, value: untilClose }
    case "absent":
      break
  }
  switch (cl.kind) {
    case "invalid":
      return fail(cl.reason)
    case "length":
      return { ok: true, value: cl.length === 0 ? none : { kind: "length", length: cl.length } }
    case "absent":
      return { ok: true, value: untilClose }
  }
}
