/**
 * connection-auth: the authentication schemes that authenticate a connection, not a request.
 *
 * NTLM and Negotiate (RFC 4559: SPNEGO, Kerberos or NTLM inside) run a handshake over several requests
 * on one TCP connection, and an origin that completes it treats the connection as the user's from then
 * on: later requests on it are served as that user, credentials or not. Such a connection must carry no
 * other client's request (Squid calls keeping it to its client "pinning"; docs/design.md §6.4).
 *
 * Owns: recognising these schemes in `Authorization` (a request's credentials) and `WWW-Authenticate`
 * (a response's challenges). Never: reads the tokens. It errs on the side of pinning: challenges are
 * split on commas without regard to quoted strings, so a parameter that reads `, NTLM` pins too; a wrong
 * pin costs a reused connection, a missed one would leak a user's connection.
 */
import { fieldValues, listValues } from "./fields.ts"
import type { Field } from "./types.ts"

const connectionSchemes: ReadonlySet<string> = new Set(["ntlm", "negotiate"])

/** The auth-scheme of a credentials or challenge text: its first word, lower-cased. */
const schemeOf = (text: string): string => {
  const trimmed = text.replace(/^[ \t]+/, "")
  const end = trimmed.search(/[ \t]/)
  return (end < 0 ? trimmed : trimmed.slice(0, end)).toLowerCase()
}

/** The request's `Authorization` uses NTLM or Negotiate. */
export const requestAuthenticatesConnection = (headers: ReadonlyArray<Field>): boolean =>
  fieldValues(headers, "authorization").some((credentials) => connectionSchemes.has(schemeOf(credentials)))

/** The response's `WWW-Authenticate` offers NTLM or Negotiate (a challenge list may hold several schemes). */
export const responseAuthenticatesConnection = (headers: ReadonlyArray<Field>): boolean =>
  listValues(headers, "www-authenticate").some((element) => connectionSchemes.has(schemeOf(element)))
