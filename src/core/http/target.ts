/**
 * target: decodes a request-target (RFC 9112 §3.2) into where a proxy must go.
 *
 * Owns: authority-form (CONNECT host:port) and absolute-form with scheme http, and the one spelling of a
 * host name (`canonicalName`) that every name rule compares, here and in the runtime. Host names come out
 * lower-cased without a trailing dot, IPv6 literals without brackets. Never: opens anything or resolves names.
 *
 * Rules:
 * - CONNECT: authority-form only, host ":" port, host = reg-name / IPv4 / "[" IPv6 "]", port 1..65535
 *   decimal and required. Anything else: 400.
 * - Other methods: "http://" authority [path-abempty] ["?" query]; scheme case-insensitive; port 80 by
 *   default; an empty path becomes "/". A fragment ("#"), userinfo ("user@") or empty host: 400.
 *   "https://": 501 (a client must use CONNECT for https). Other schemes: 501. Origin-form ("/path")
 *   and "*": 400, this is a proxy and needs an absolute URI.
 * - Bytes outside VCHAR (controls, SP, DEL, non-ASCII) anywhere in the target: 400 (checked by the
 *   request-line parser before this module sees the target).
 * - A host name loses one trailing dot (the DNS root: `a.test.` is `a.test`) and is lower-cased, so
 *   every rule that compares names sees one spelling. A name with an empty label (`a..test`, `.a.test`,
 *   `a.test..`) is 400: resolvers read such names in their own ways, and a rule on `a.test` must not be
 *   passed by spelling it `a.test..`.
 * - A host that reads as an IPv4 number (`2130706433`, `0x7f.1`, `127.1`) comes out as a dotted quad; one
 *   that ends in a number but is no valid IPv4 address, or is percent-encoded: 400 (numeric-host.ts).
 */
import { normalizeNumericHost } from "./numeric-host.ts"
import { isDigit, isHexDigit, isRegNameChar } from "./syntax.ts"
import type { Rejection, Target } from "./types.ts"

export type TargetResult = { readonly ok: true; readonly value: Target } | { readonly ok: false; readonly rejection: Rejection }

const bad = (reason: string): TargetResult => ({ ok: false, rejection: { status: 400, reason } })
const unsupported = (reason: string): TargetResult => ({ ok: false, rejection: { status: 501, reason } })

const DEFAULT_HTTP_PORT = 80

type Authority = { readonly host: string; readonly port: number | undefined } | { readonly error: string }

/** 1*DIGIT in 1..65535; undefined if not. Five digits at most, so no overflow and no "00000080" games. */
const parsePort = (s: string): number | undefined => {
  if (s.length === 0 || s.length > 5) return undefined
  let port = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (isDigit[c] !== 1) return undefined
    port = port * 10 + (c - 0x30)
  }
  return port >= 1 && port <= 65535 ? port : undefined
}

/** reg-name or IPv4address (an IPv4 literal is a valid reg-name): unreserved / sub-delims / pct-encoded. */
const isRegName = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (isRegNameChar[c] !== 1) return false
    if (c === 0x25 /* % */ && !(isHexDigit[s.charCodeAt(i + 1)] === 1 && isHexDigit[s.charCodeAt(i + 2)] === 1)) return false
  }
  return true
}

const isH16 = (s: string): boolean => {
  if (s.length < 1 || s.length > 4) return false
  for (let i = 0; i < s.length; i++) if (isHexDigit[s.charCodeAt(i)] !== 1) return false
  return true
}

const isIPv4 = (s: string): boolean => {
  const parts = s.split(".")
  return (
    parts.length === 4 &&
    parts.every(
      (p) =>
        p.length >= 1 &&
        p.length <= 3 &&
        [...p].every((ch) => isDigit[ch.charCodeAt(0)] === 1) &&
        Number(p) <= 255 &&
        (p.length === 1 || p[0] !== "0"),
    )
  )
}

/** IPv6address of RFC 3986 §3.2.2: eight h16 groups, or fewer around one "::", optionally ending in an IPv4. No zone id. */
export const isIPv6 = (s: string): boolean => {
  const halves = s.split("::")
  if (halves.length > 2) return false
  const groups = (half: string): Array<string> => (half === "" ? [] : half.split(":"))
  const head = groups(halves[0] ?? "")
  const tail = halves.length === 2 ? groups(halves[1] ?? "") : []
  const all = [...head, ...tail]
  // An embedded IPv4 can only be the very last group ("::1.2.3.4" yes, "1.2.3.4::" no).
  const ipv4Allowed = halves.length === 1 || tail.length > 0
  let units = 0
  for (let i = 0; i < all.length; i++) {
    const g = all[i] ?? ""
    if (ipv4Allowed && i === all.length - 1 && g.includes(".")) {
      if (!isIPv4(g)) return false
      units += 2
    } else {
      if (!isH16(g)) return false
      units += 1
    }
  }
  return halves.length === 2 ? units <= 7 : units === 8
}

const DOT = 0x2e

/**
 * A host name as every name rule compares it (destination rules, parent routing, static names): one
 * trailing dot (the DNS root) removed, lower-cased. Undefined when a label is empty: `a..test`,
 * `.a.test`, `a.test..`, `.` or the empty string. For names only, not IPv6 literals.
 */
export const canonicalName = (host: string): string | undefined => {
  const end = host.charCodeAt(host.length - 1) === DOT ? host.length - 1 : host.length
  let label = 0 // the length of the label read so far
  for (let i = 0; i < end; i++) {
    if (host.charCodeAt(i) !== DOT) label++
    else if (label === 0) return undefined
    else label = 0
  }
  if (label === 0) return undefined
  return (end === host.length ? host : host.slice(0, end)).toLowerCase()
}

/** authority = host [ ":" port ]; userinfo is refused. */
const parseAuthority = (s: string): Authority => {
  if (s.includes("@")) return { error: "userinfo (user@) in the request-target is not allowed" }
  let host: string
  let rest: string
  if (s.startsWith("[")) {
    const close = s.indexOf("]")
    if (close === -1) return { error: "unterminated IPv6 literal in the request-target" }
    host = s.slice(1, close)
    if (!isIPv6(host)) return { error: "invalid IPv6 literal in the request-target" }
    rest = s.slice(close + 1)
  } else {
    const colon = s.indexOf(":")
    host = colon === -1 ? s : s.slice(0, colon)
    rest = colon === -1 ? "" : s.slice(colon)
    if (host.length === 0) return { error: "empty host in the request-target" }
    if (!isRegName(host)) return { error: "invalid host in the request-target" }
    const name = canonicalName(host)
    if (name === undefined) return { error: "an empty label in the host name of the request-target (a..b, .a or a..)" }
    // 2130706433, 0x7f.1, 127.1: one dotted spelling (or 400) before anyone compares or resolves it.
    const numeric = normalizeNumericHost(name)
    if (!numeric.ok) return { error: numeric.reason }
    host = numeric.host
  }
  if (rest.length === 0) return { host: host.toLowerCase(), port: undefined }
  if (!rest.startsWith(":")) return { error: "invalid authority in the request-target" }
  const port = parsePort(rest.slice(1))
  if (port === undefined) return { error: "invalid port in the request-target (must be 1..65535)" }
  return { host: host.toLowerCase(), port }
}

/** CONNECT host:port. */
export const parseAuthorityForm = (raw: string): TargetResult => {
  const authority = parseAuthority(raw)
  if ("error" in authority) return bad(authority.error)
  if (authority.port === undefined) return bad("CONNECT needs a port (host:port)")
  return { ok: true, value: { form: "authority", host: authority.host, port: authority.port } }
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/

/** http://host[:port][/path][?query] for every method but CONNECT. */
export const parseAbsoluteForm = (raw: string): TargetResult => {
  const scheme = SCHEME.exec(raw)?.[0]
  if (scheme === undefined) {
    return bad("this is a proxy: the request-target must be an absolute URI (http://host/path)")
  }
  const name = scheme.slice(0, -1).toLowerCase()
  if (name === "https") return unsupported("https URIs are not proxied this way: use CONNECT for https")
  if (name !== "http") return unsupported(`the URI scheme "${name}" is not supported`)
  if (raw.includes("#")) return bad("a fragment (#) in the request-target is not allowed")
  if (!raw.startsWith("//", scheme.length)) return bad("an http URI needs an authority (http://host/...)")
  const from = scheme.length + 2
  let to = from
  while (to < raw.length && raw[to] !== "/" && raw[to] !== "?") to++
  const authority = parseAuthority(raw.slice(from, to))
  if ("error" in authority) return bad(authority.error)
  const rest = raw.slice(to)
  const path = rest.length === 0 ? "/" : rest.startsWith("?") ? "/" + rest : rest
  return { ok: true, value: { form: "absolute", host: authority.host, port: authority.port ?? DEFAULT_HTTP_PORT, path } }
}
