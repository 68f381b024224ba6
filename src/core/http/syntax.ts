/**
 * syntax: the character classes of the HTTP/1.1 grammar (RFC 9110 §5.6, RFC 9112, RFC 3986), as named
 * 256-entry lookup tables indexed by a byte: `isTchar[b] === 1`.
 *
 * Owns: which byte is legal where. Every parser in src/core/http asks these tables instead of writing
 * ranges inline, so the grammar lives in one place (llhttp's constants module, h11's _abnf.py).
 * Never: decides a status or parses a structure; that is the job of the modules that import it.
 */

/** Byte values the parsers name instead of writing numbers. */
export const HTAB = 0x09
export const LF = 0x0a
export const CR = 0x0d
export const SP = 0x20
export const COLON = 0x3a
export const SEMICOLON = 0x3b

const table = (accepts: (b: number) => boolean): Uint8Array => {
  const t = new Uint8Array(256)
  for (let b = 0; b < 256; b++) t[b] = accepts(b) ? 1 : 0
  return t
}

const inString =
  (chars: string) =>
  (b: number): boolean =>
    chars.includes(String.fromCharCode(b))
const isAlpha = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
const isDigitByte = (b: number): boolean => b >= 0x30 && b <= 0x39

/** DIGIT (RFC 5234). */
export const isDigit: Uint8Array = table(isDigitByte)

/** HEXDIG, both cases (chunk sizes, IPv6 groups, percent-encoding). */
export const isHexDigit: Uint8Array = table((b) => isDigitByte(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66))

/** tchar (RFC 9110 §5.6.2): the characters of a token (method, field name, transfer coding). */
export const isTchar: Uint8Array = table((b) => isAlpha(b) || isDigitByte(b) || inString("!#$%&'*+-.^_`|~")(b))

/** VCHAR: visible US-ASCII, 0x21..0x7E. */
export const isVchar: Uint8Array = table((b) => b >= 0x21 && b <= 0x7e)

/** field-value characters (RFC 9110 §5.5): VCHAR / obs-text / SP / HTAB. No CR, LF, NUL or other controls. */
export const isFieldValueChar: Uint8Array = table((b) => (b >= 0x21 && b <= 0x7e) || b >= 0x80 || b === SP || b === HTAB)

/** qdtext (RFC 9110 §5.6.4): the bytes of a quoted-string other than DQUOTE and the "\\" of a quoted-pair. */
export const isQdtext: Uint8Array = table(
  (b) => b === HTAB || b === SP || b === 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e) || b >= 0x80,
)

/**
 * URI characters of RFC 3986 (unreserved / reserved / "%"). Strict: no controls, SP, DEL, non-ASCII, and
 * none of `"<>\^`{|}`. The reference class of RFC 3986; request-targets are checked with the wider
 * isTargetChar below and hosts with isRegNameChar.
 */
export const isUriChar: Uint8Array = table((b) => isAlpha(b) || isDigitByte(b) || inString("-._~:/?#[]@!$&'()*+,;=%")(b))

/**
 * Characters accepted in a request-target: VCHAR (no controls, SP, DEL, non-ASCII). Wider than isUriChar
 * on purpose: browsers send `{ | } ^ \` unescaped in queries (WHATWG URL leaves them raw), and a proxy
 * that refuses them breaks real pages. What is excluded is what could split the request line or hide
 * bytes from a parser downstream.
 */
export const isTargetChar: Uint8Array = isVchar

/** reg-name characters (RFC 3986 §3.2.2): unreserved / sub-delims / "%" (pct-encoded checked separately). */
export const isRegNameChar: Uint8Array = table((b) => isAlpha(b) || isDigitByte(b) || inString("-._~!$&'()*+,;=%")(b))

/** True if `s` is a non-empty token (RFC 9110 §5.6.2). */
export const isToken = (s: string): boolean => {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    if (isTchar[s.charCodeAt(i)] !== 1) return false // code units > 0xFF index past the table: undefined
  }
  return true
}

/** True if `s` is 1*DIGIT. */
export const isDigits = (s: string): boolean => {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}
