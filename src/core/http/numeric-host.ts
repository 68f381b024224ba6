/**
 * numeric-host: one spelling for hosts that URL parsers and resolvers read as an IPv4 address.
 *
 * `2130706433`, `0x7f.1`, `127.1` and `0177.0.0.1` are all 127.0.0.1 to `inet_aton`, to getaddrinfo and
 * to browsers (the WHATWG URL "IPv4 parser"). A destination policy that compares names and addresses
 * must see that address, not a name, so a reg-name whose last label is a number is parsed here the way
 * the WHATWG URL standard does it (decimal, octal with a leading 0, hex with 0x; one to four parts, the
 * last filling the remaining bytes) and rewritten as a dotted quad, or refused when it is not a valid
 * IPv4 number (`1.2.3.256`, `0x1.0x2.0x3.0x4.5`, `foo.123`). Percent-encoded hosts are refused too: a
 * resolver would decode them into yet another spelling.
 *
 * Owns only this rewriting; it never resolves a name or decides a status (target.ts turns a refusal into 400).
 */

export type NumericHost = { readonly ok: true; readonly host: string } | { readonly ok: false; readonly reason: string }

/** The value of one IPv4 part (WHATWG "IPv4 number parser"), or undefined. */
const ipv4Number = (part: string): number | undefined => {
  if (part === "") return undefined
  let digits = part
  let radix = 10
  if (digits.length >= 2 && (digits.startsWith("0x") || digits.startsWith("0X"))) {
    digits = digits.slice(2)
    radix = 16
  } else if (digits.length >= 2 && digits.startsWith("0")) {
    digits = digits.slice(1)
    radix = 8
  }
  if (digits === "") return 0
  const valid = radix === 16 ? /^[0-9a-fA-F]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/
  if (!valid.test(digits)) return undefined
  // Very long inputs are far above 2^32 anyway; parseInt's rounding cannot bring them back into range.
  return parseInt(digits, radix)
}

/** WHATWG "ends in a number": the last label (ignoring one trailing dot) is digits, or a valid IPv4 number. */
const endsInNumber = (host: string): boolean => {
  const parts = host.split(".")
  if (parts[parts.length - 1] === "") {
    if (parts.length === 1) return false
    parts.pop()
  }
  const last = parts[parts.length - 1] ?? ""
  return /^[0-9]+$/.test(last) || ipv4Number(last) !== undefined
}

/** WHATWG "IPv4 parser": the 32-bit address, or undefined. */
const parseIPv4 = (host: string): number | undefined => {
  const parts = host.split(".")
  if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop()
  if (parts.length > 4) return undefined
  const numbers: Array<number> = []
  for (const part of parts) {
    const n = ipv4Number(part)
    if (n === undefined) return undefined
    numbers.push(n)
  }
  const last = numbers.pop() as number
  if (numbers.some((n) => n > 255)) return undefined
  if (last >= 256 ** (4 - numbers.length)) return undefined
  let address = last
  numbers.forEach((n, i) => {
    address += n * 256 ** (3 - i)
  })
  return address
}

/**
 * Already one spelling: four decimal parts 0..255 without leading zeros (`127.0.0.1`), the usual IPv4
 * literal. Checked without splitting, so that the common case allocates nothing (new tunnels per
 * second, docs/performance.md "Round two").
 */
export const isCanonicalQuad = (host: string): boolean => {
  let parts = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= host.length; i++) {
    const c = i === host.length ? 0x2e : host.charCodeAt(i)
    if (c === 0x2e /* . */) {
      if (digits === 0 || ++parts > 4) return false
      value = 0
      digits = 0
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false // a leading zero is octal to inet_aton
      value = value * 10 + (c - 0x30)
      if (++digits > 3 || value > 255) return false
    } else return false
  }
  return parts === 4
}

/**
 * The last character of the last label (one trailing dot ignored) cannot end an IPv4 number: not a
 * digit, a-f or x (`example.com`). Lets most names skip endsInNumber's split.
 */
export const cannotEndInNumber = (host: string): boolean => {
  const end = host.charCodeAt(host.length - 1) === 0x2e ? host.length - 2 : host.length - 1
  const c = host.charCodeAt(end)
  return !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || c === 0x78)
}

/** `host` (a reg-name, lower-case) with numeric IPv4 forms rewritten as a dotted quad; other names unchanged. */
export const normalizeNumericHost = (host: string): NumericHost => {
  if (host.includes("%")) return { ok: false, reason: "percent-encoded host names are not supported in the request-target" }
  if (isCanonicalQuad(host) || cannotEndInNumber(host) || !endsInNumber(host)) return { ok: true, host }
  const address = parseIPv4(host)
  if (address === undefined) return { ok: false, reason: "the host in the request-target ends in a number but is not a valid IPv4 address" }
  return { ok: true, host: `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}` }
}
