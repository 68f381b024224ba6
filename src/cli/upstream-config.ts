/**
 * The parent-proxy settings of the CLI: `--upstream URL`, `--no-upstream LIST`, and where the parent's
 * credentials come from (the URL, `--upstream-credentials-file`, or HCTUNNEL_UPSTREAM_CREDENTIALS).
 *
 * Owns parsing them into what the workers get (`WorkerInit.upstream`: host, port and the ready-made
 * Proxy-Authorization value) and keeping the password out of every message: a value that may hold one
 * is shown redacted (`http://user:***@host:port`), and a credentials text is never echoed. Like
 * the configuration loader it does no IO of its own: the caller passes the environment and a file reader.
 */
import { isIP } from "node:net"
import type { UpstreamProxy } from "../runtime/dial/Upstream.ts"
import { parseNoUpstreamEntry } from "../runtime/dial/Upstream.ts"
import { bad, ok, type Parsed } from "./parsers.ts"

/** The env var that may hold the parent's `user:password` (never a flag: argv is visible to every user). */
export const UPSTREAM_CREDENTIALS_ENV = "HCTUNNEL_UPSTREAM_CREDENTIALS"

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

/** `user:password` (from the credentials file or env var). The message never repeats the text. */
export const parseCredentials = (text: string, where: string): Parsed<{ readonly user: string; readonly password: string }> => {
  const line = text.replace(/\r?\n$/, "")
  const colon = line.indexOf(":")
  if (line.includes("\n") || colon <= 0) return bad(`${where} must hold one line user:password (the text is not shown)`)
  return ok({ user: line.slice(0, colon), password: line.slice(colon + 1) })
}

/** One `--no-upstream` entry, as the list parser of parsers.ts wants it. */
export const parseNoUpstream = (u: unknown): Parsed<string> => {
  if (typeof u !== "string") return bad(`${show(u)} is not a no-upstream entry: expected a string such as ".example.com" or "10.0.0.0/8"`)
  const r = parseNoUpstreamEntry(u)
  return r.ok ? ok(u.trim()) : bad(r.message)
}

/** RFC 7617 Basic credentials: base64 of the UTF-8 `user:password`. */
export const basicAuthorization = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`

/**
 * The parent the workers get, from the decoded settings: the URL, then its credentials from exactly one
 * place (the URL, the file, or the env var). `readFile` reads the credentials file (the caller's IO).
 */
export const upstreamFor = (
  url: UpstreamUrl | undefined,
  credentialsFile: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => Parsed<string>,
): Parsed<UpstreamProxy | undefined> => {
  const fromEnv = env[UPSTREAM_CREDENTIALS_ENV] === "" ? undefined : env[UPSTREAM_CREDENTIALS_ENV]
  const places = [
    url?.user !== undefined ? "the --upstream URL" : undefined,
    credentialsFile !== undefined ? "--upstream-credentials-file" : undefined,
    fromEnv !== undefined ? UPSTREAM_CREDENTIALS_ENV : undefined,
  ].filter((p): p is string => p !== undefined)
  if (url === undefined) {
    return places.length === 0 ? ok(undefined) : bad(`${places.join(" and ")} set, but no --upstream: credentials for which parent proxy?`)
  }
  if (places.length > 1) return bad(`the parent's credentials are given twice (${places.join(" and ")}): give them one way`)
  const base = { host: url.host, port: url.port }
  if (url.user !== undefined) return ok({ ...base, authorization: basicAuthorization(url.user, url.password ?? "") })
  let text: string | undefined = fromEnv
  let where = UPSTREAM_CREDENTIALS_ENV
  if (credentialsFile !== undefined) {
    const read = readFile(credentialsFile)
    if (!read.ok) return read
    text = read.value
    where = `--upstream-credentials-file ${credentialsFile}`
  }
  if (text === undefined) return ok(base)
  const credentials = parseCredentials(text, where)
  if (!credentials.ok) return credentials
  return ok({ ...base, authorization: basicAuthorization(credentials.value.user, credentials.value.password) })
}
