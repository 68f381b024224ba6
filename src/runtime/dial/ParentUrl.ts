/**
 * ParentUrl: the text of a parent proxy's address, `http://[user:password@]host:port`, as `--upstream`
 * and a route hook's `{ upstream }` give it; and the rules that keep its password out of every message.
 *
 * Shared by the CLI (a bad `--upstream` is a configuration error) and the workers (a route hook names
 * parents while the proxy runs). Pure: no IO, no resolving.
 */
import { isIP } from "node:net"

/** Either the parsed value or a message saying what was wrong (the CLI's `Parsed`). */
type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string }
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = (message: string): Parsed<never> => ({ ok: false, message })

/** `--upstream` decoded: where the parent is, and the credentials of its URL if it had any. */
export interface UpstreamUrl {
  readonly host: string
  readonly port: number
  readonly user?: string
  readonly password?: string
}

/**
 * The text of a value that may hold a password, fit for a message or a log line: everything between the
 * user's colon and the LAST "@" is hidden, so a password with an unencoded "@" or "/" does not leak either.
 */
export const redactUrl = (text: string): string => {
  const at = text.lastIndexOf("@")
  if (at < 0) return text
  const scheme = text.indexOf("://")
  const colon = text.indexOf(":", scheme < 0 ? 0 : scheme + 3)
  return colon < 0 || colon > at ? text : `${text.slice(0, colon)}:***${text.slice(at)}`
}

const show = (u: unknown): string => (typeof u === "string" ? JSON.stringify(redactUrl(u)) : String(JSON.stringify(u) ?? u))

const decode = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/** `http://[user:password@]host:port` (the scheme may be left out); user and password percent-decoded. */
export const parseUpstreamUrl = (u: unknown): Parsed<UpstreamUrl> => {
  const example = 'expected http://[user:password@]host:port, e.g. "http://proxy.internal:3128"'
  if (typeof u !== "string") return bad(`${show(u)} is not a proxy URL: ${example}`)
  const text = u.trim()
  const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]*\]|[^:/?#@[\]]*)(?::([^/?#]*))?\/?$/i.exec(text)
  if (m === null) return bad(`${show(u)} is not a proxy URL: ${example}`)
  const [, scheme, user, password, rawHost = "", rawPort] = m
  if (scheme !== undefined && scheme.toLowerCase() !== "http") {
    return bad(`${show(u)}: only http:// parent proxies are supported (the parent's CONNECT carries TLS end to end)`)
  }
  const host = rawHost.startsWith("[") ? rawHost.slice(1, -1) : rawHost.toLowerCase()
  if (host === "" || (rawHost.startsWith("[") && isIP(host) !== 6) || (!rawHost.startsWith("[") && !/^[a-z0-9_.-]+$/.test(host))) {
    return bad(`${show(u)}: the host is missing or invalid: ${example}`)
  }
  if (rawPort === undefined || rawPort === "") return bad(`${show(u)}: the port is required: ${example}`)
  if (!/^\d{1,5}$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535) {
    return bad(`${show(u)}: the port must be an integer from 1 to 65535`)
  }
  const port = Number(rawPort)
  if (user === undefined) return ok({ host, port })
  const decodedUser = decode(user)
  const decodedPassword = decode(password ?? "")
  if (decodedUser === undefined || decodedPassword === undefined || decodedUser === "") {
    return bad(`${show(u)}: the user:password part is not valid (percent-encode special characters, e.g. %40 for @)`)
  }
  return ok({ host, port, user: decodedUser, password: decodedPassword })
}

/** RFC 7617 Basic credentials: base64 of the UTF-8 `user:password`. */
export const basicAuthorization = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`
