/**
 * The parent-proxy settings of the CLI: `--upstream URL`, `--no-upstream LIST`, and where the parent's
 * credentials come from (the URL, `--upstream-credentials-file`, or HCTUNNEL_UPSTREAM_CREDENTIALS).
 *
 * Owns parsing them into what the workers get (`WorkerInit.upstream`: host, port and the ready-made
 * Proxy-Authorization value) and keeping the password out of every message: a value that may hold one
 * is shown redacted (`http://user:***@host:port`), and a credentials text is never echoed. Like
 * the configuration loader it does no IO of its own: the caller passes the environment and a file reader.
 */
import type { UpstreamProxy } from "../runtime/dial/Upstream.ts"
import { parseNoUpstreamEntry } from "../runtime/dial/Upstream.ts"
import { basicAuthorization, redactUrl, type UpstreamUrl } from "../runtime/dial/ParentUrl.ts"
import { bad, ok, type Parsed } from "./parsers.ts"

export { basicAuthorization, parseUpstreamUrl, redactUrl, type UpstreamUrl } from "../runtime/dial/ParentUrl.ts"

const show = (u: unknown): string => (typeof u === "string" ? JSON.stringify(redactUrl(u)) : String(JSON.stringify(u) ?? u))

/** The env var that may hold the parent's `user:password` (never a flag: argv is visible to every user). */
export const UPSTREAM_CREDENTIALS_ENV = "HCTUNNEL_UPSTREAM_CREDENTIALS"

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
