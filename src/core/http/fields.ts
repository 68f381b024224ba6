/**
 * fields: the lines of a head (RFC 9112 §2.1, §5) and lookups in the parsed field list.
 *
 * Owns: splitting a head into lines, the field-line grammar shared by requests, responses (and, in
 * body.ts, the same rules byte by byte for trailers), and case-insensitive field lookups.
 * Never: decides a status code; callers map a FieldError to 400/431 (requests) or 502 (responses).
 *
 * Rules:
 * - A line ends with LF; one CR just before the LF belongs to the terminator. Any other CR is a bare CR
 *   and refused (RFC 9112 §2.2: a recipient must not treat it as a line end, and guessing is smuggling).
 * - field-line = field-name ":" OWS field-value OWS. The name is a non-empty token; whitespace between
 *   name and colon is refused (RFC 9112 §5.1); a line starting with SP/HTAB is obs-fold and refused
 *   (§5.2); value bytes must be VCHAR / obs-text / SP / HTAB. Values are kept with OWS trimmed.
 * - More than `maxHeaders` fields: too many (431 for a request).
 * - The head must end with its empty line and nothing after it.
 */
import { COLON, CR, HTAB, isFieldValueChar, isTchar, LF, SP } from "./syntax.ts"
import type { Field } from "./types.ts"

export type FieldError = { readonly tooMany: boolean; readonly reason: string }

export type FieldsResult = { readonly ok: true; readonly fields: Array<Field> } | ({ readonly ok: false } & FieldError)

/** End of the content of the line starting at `pos` (before CR LF or LF), or -1 if no LF follows. */
export const lineContentEnd = (head: Uint8Array, pos: number): number => {
  const lf = head.indexOf(LF, pos)
  if (lf === -1) return -1
  return lf > pos && head[lf - 1] === CR ? lf - 1 : lf
}

/** Position after the terminator of a line whose content ends at `contentEnd`. */
export const nextLineStart = (head: Uint8Array, contentEnd: number): number => (head[contentEnd] === CR ? contentEnd + 2 : contentEnd + 1)

const fail = (reason: string, tooMany = false): FieldsResult => ({ ok: false, tooMany, reason })

const isOws = (b: number | undefined): boolean => b === SP || b === HTAB

/** Why a byte that is not a field-value character is refused. */
export const describeBadByte = (b: number | undefined, where: string): string =>
  b === CR ? `bare CR in ${where}` : `invalid character 0x${(b ?? 0).toString(16).padStart(2, "0")} in ${where}`

/** Parse the field lines from `pos` to the empty line that ends the head; `text` is decodeLatin1 of the whole head. */
export const parseFieldLines = (head: Uint8Array, text: string, pos: number, maxHeaders: number): FieldsResult => {
  const fields: Array<Field> = []
  for (;;) {
    const end = lineContentEnd(head, pos)
    if (end === -1) return fail("the head does not end with an empty line")
    if (end === pos) {
      // The empty line: the end of the head.
      if (nextLineStart(head, end) !== head.length) return fail("bytes after the end of the head")
      return { ok: true, fields }
    }
    if (isOws(head[pos])) return fail("obsolete line folding (a field line starting with whitespace)")
    let i = pos
    while (i < end && isTchar[head[i] as number] === 1) i++
    if (i === end) return fail("a field line without a colon")
    const stop = head[i]
    if (stop !== COLON) {
      if (isOws(stop)) return fail("whitespace between a field name and its colon")
      return fail(describeBadByte(stop, "a field name"))
    }
    if (i === pos) return fail("an empty field name")
    if (fields.length === maxHeaders) return fail(`more than ${maxHeaders} header fields`, true)
    let v = i + 1
    let w = end
    while (v < w && isOws(head[v])) v++
    while (w > v && isOws(head[w - 1])) w--
    for (let k = v; k < w; k++) {
      const b = head[k] as number
      if (isFieldValueChar[b] !== 1) return fail(describeBadByte(b, "a field value"))
    }
    fields.push([text.slice(pos, i), text.slice(v, w)])
    pos = nextLineStart(head, end)
  }
}

const sameName = (a: string, lowerName: string): boolean => a.length === lowerName.length && a.toLowerCase() === lowerName

/** Values of every field named `name` (case-insensitive), in order. */
export const fieldValues = (headers: ReadonlyArray<Field>, name: string): Array<string> => {
  const lower = name.toLowerCase()
  const out: Array<string> = []
  for (const [n, v] of headers) if (sameName(n, lower)) out.push(v)
  return out
}

/** The comma-separated list elements of every field named `name`, trimmed, empty elements dropped (RFC 9110 §5.6.1). */
export const listValues = (headers: ReadonlyArray<Field>, name: string): Array<string> => {
  const out: Array<string> = []
  for (const value of fieldValues(headers, name)) {
    for (const element of value.split(",")) {
      const trimmed = element.replace(/^[ \t]+|[ \t]+$/g, "")
      if (trimmed.length > 0) out.push(trimmed)
    }
  }
  return out
}

/** True if a field named `name` lists `token` (case-insensitive), e.g. hasToken(h, "connection", "close"). */
export const hasToken = (headers: ReadonlyArray<Field>, name: string, token: string): boolean => {
  const lower = token.toLowerCase()
  return listValues(headers, name).some((t) => sameName(t, lower))
}

/**
 * Fields RFC 9110 §6.5.1 forbids in a trailer section (lower-case): those a recipient needs before the
 * content (framing, routing, request modifiers, response controls, content format), hop-by-hop fields,
 * and authentication and cookies. A trailer named so is dropped, in both directions (body.ts), so a
 * next hop that merges trailers into the header section cannot be told a new framing or destination.
 */
const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  // framing
  "content-length",
  "transfer-encoding",
  "trailer",
  "te",
  // routing and hop-by-hop
  "host",
  "via",
  "max-forwards",
  "connection",
  "proxy-connection",
  "keep-alive",
  "upgrade",
  // authentication and state
  "authorization",
  "proxy-authorization",
  "www-authenticate",
  "proxy-authenticate",
  "cookie",
  "set-cookie",
  // request modifiers and response controls
  "cache-control",
  "pragma",
  "expect",
  "range",
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "if-range",
  "age",
  "expires",
  "date",
  "location",
  "retry-after",
  "vary",
  // content format
  "content-type",
  "content-encoding",
  "content-range",
  "content-location",
])

/**
 * True if a trailer field named `name` (any case) must not be forwarded. A name with underscores is
 * read with hyphens too (`Transfer_Encoding`): CGI-style servers take both spellings as one field.
 */
export const isForbiddenTrailer = (name: string): boolean => {
  const lower = name.toLowerCase()
  return FORBIDDEN_TRAILERS.has(lower) || (lower.includes("_") && FORBIDDEN_TRAILERS.has(lower.replaceAll("_", "-")))
}
