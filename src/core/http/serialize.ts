/**
 * serialize: writes the heads the proxy forwards, rebuilt from their parsed form, never copied raw.
 *
 * Owns: the forwarded request head (to the origin) and response head (to the client), hop-by-hop field
 * removal, Via, and the keep-alive decision of a message. Never: touches bodies; they are forwarded with
 * the framing they came with, so Transfer-Encoding and Content-Length are always kept.
 *
 * Rules (RFC 9110 §7.6):
 * - Hop-by-hop fields are removed in both directions: Connection and every field it names,
 *   Proxy-Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-Authorization, Proxy-Authenticate.
 *   Connection cannot remove Content-Length or Transfer-Encoding (that would change the framing of a
 *   body we forward verbatim: a smuggling vector). With `keepUpgrade` an Upgrade field is kept and
 *   "Connection: upgrade" re-added.
 * - The framing fields are written in one canonical form, so the next hop cannot read them otherwise
 *   than we did: Content-Length as one `Content-Length` field with digits without leading zeros, in
 *   place of the first one received (a list of equal values `3, 3`, `0003` or repeated fields never
 *   reach the next hop as received, RFC 9110 §8.6; a first one that is invalid but unused by the
 *   framing, in a HEAD, 1xx, 204 or 304 response, keeps its value); Transfer-Encoding as one
 *   `Transfer-Encoding` field listing the codings of all of them, lower-cased, joined with ", ", in
 *   place of the first one.
 * - A field whose name has an underscore and would be one of the fields above or a hop-by-hop field if
 *   the underscores were hyphens (`Transfer_Encoding`, `Content_Length`) is dropped: CGI-style servers
 *   read both spellings as the same variable (HTTP_TRANSFER_ENCODING), so forwarding it would hand the
 *   origin a framing we never judged. nginx drops every name with an underscore by default; only the
 *   names we interpret are dropped here, so that application fields (`X_Api_Key`) still pass.
 * - Request: `METHOD SP path SP HTTP/1.1` (HTTP/1.0 for an HTTP/1.0 client, so that the origin cannot
 *   answer with chunked coding the client could not decode), then `Host: host[:port]` from the target
 *   (port omitted when 80, IPv6 in brackets; the received Host is dropped), the other fields in received
 *   order, then Via. To a parent proxy (`upstream`): `METHOD SP http://host[:port]path SP HTTP/1.x`, and
 *   `Proxy-Authorization` right after Host when the parent needs credentials.
 * - Response: `HTTP/1.1 SP status SP reason`, the fields, Via, and `Connection: close` when asked.
 * - Via: the received Via values joined, then `1.x <via>` with the version the message was received in.
 * Header text is latin1 (one byte per character) so obs-text goes through unchanged.
 */
import { fieldValues, hasToken, listValues } from "./fields.ts"
import { encodeLatin1 } from "./latin1.ts"
import { contentLength } from "./message-length.ts"
import type { Field, HttpVersion, RequestHead, ResponseHead, Target } from "./types.ts"

export { fieldValues, hasToken }

/** Removed from every forwarded head (lower-case). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "te",
  "trailer",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
])

/** Fields that Connection cannot remove: the body framing must reach the next hop as it was received. */
const FRAMING: ReadonlySet<string> = new Set(["content-length", "transfer-encoding"])

/** The names whose meaning the proxy decides (lower-case): their underscore spellings are dropped. */
const INTERPRETED: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...FRAMING, "host", "via"])

/** `Transfer_Encoding`, `proxy_connection`: a name the proxy interprets, spelled with underscores. */
export const isUnderscoreSpelling = (lowerName: string): boolean =>
  lowerName.includes("_") && INTERPRETED.has(lowerName.replaceAll("_", "-"))

/** The codings of a Transfer-Encoding value, lower-cased, in order, empty elements dropped (as message-length.ts reads them). */
const codings = (value: string, into: Array<string>): void => {
  if (value === "chunked") {
    into.push(value) // the common case, already canonical
    return
  }
  for (const element of value.split(",")) {
    const trimmed = element.replace(/^[ \t]+|[ \t]+$/g, "")
    if (trimmed.length > 0) into.push(trimmed.toLowerCase())
  }
}

const DEFAULT_HTTP_PORT = 80

/** The fields to forward (hop-by-hop and Via removed), and the Via value to send, and the Connection value. */
const forwardFields = (
  headers: ReadonlyArray<Field>,
  version: HttpVersion,
  via: string,
  keepUpgrade: boolean,
  alsoDrop: string | undefined,
): { fields: Array<Field>; via: string; upgrade: boolean } => {
  const named = new Set(listValues(headers, "connection").map((t) => t.toLowerCase()))
  const fields: Array<Field> = []
  const vias: Array<string> = []
  let upgrade = false
  let lengthSent = false
  /** Where the one Transfer-Encoding field goes (the place of the first), and the codings of all of them. */
  let codingsAt = -1
  const allCodings: Array<string> = []
  for (const field of headers) {
    const lower = field[0].toLowerCase()
    if (lower === "content-length") {
      // One canonical field for `3, 3`, `0003` or repeated fields (RFC 9110 §8.6), in place of the first.
      if (lengthSent) continue
      lengthSent = true
      if (isCanonicalLength(field[1])) {
        // The common case: one plain number, no second pass over the fields.
        fields.push(field[0] === "Content-Length" ? field : ["Content-Length", field[1]])
        continue
      }
      const length = contentLength(headers)
      // Invalid but unused (a HEAD, 1xx, 204 or 304 response, whose framing ignores it): its value as received.
      fields.push(["Content-Length", length.kind === "length" ? String(length.length) : field[1]])
    } else if (lower === "transfer-encoding") {
      if (codingsAt === -1) {
        codingsAt = fields.length
        fields.push(field) // replaced below when it is not already the one canonical field
      }
      codings(field[1], allCodings)
    } else if (lower === "via") {
      if (field[1].length > 0) vias.push(field[1])
    } else if (lower === "upgrade" && keepUpgrade) {
      fields.push(field)
      upgrade = true
    } else if (lower === alsoDrop || HOP_BY_HOP.has(lower) || (named.has(lower) && !FRAMING.has(lower)) || isUnderscoreSpelling(lower)) {
      // dropped
    } else {
      fields.push(field)
    }
  }
  if (codingsAt !== -1) {
    const value = allCodings.join(", ")
    const first = fields[codingsAt] as Field
    if (first[0] !== "Transfer-Encoding" || first[1] !== value) fields[codingsAt] = ["Transfer-Encoding", value]
  }
  vias.push(`${version} ${via}`)
  return { fields, via: vias.join(", "), upgrade }
}

/**
 * The values of the `Via` fields of a message in order (empty ones skipped), joined with ", ": the hops
 * before this one, as a forwarded head writes them before its own. Undefined when there are none.
 */
export const receivedVia = (headers: ReadonlyArray<Field>): string | undefined => {
  const values = fieldValues(headers, "via").filter((v) => v.length > 0)
  return values.length === 0 ? undefined : values.join(", ")
}

/** 1*DIGIT without a leading zero (or "0"): a Content-Length value already in canonical form. */
export const isCanonicalLength = (value: string): boolean => {
  const n = value.length
  if (n === 0 || n > 16 || (n > 1 && value.charCodeAt(0) === 0x30)) return false
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** A host as it stands in an authority: an IPv6 literal in brackets. */
export const hostPart = (host: string): string => (host.includes(":") ? `[${host}]` : host)

/** host:port as a client writes it (`[::1]:443`, not `::1:443`). */
export const hostPort = (host: string, port: number): string => `${hostPart(host)}:${port}`

const authority = (target: Target): string =>
  target.port === DEFAULT_HTTP_PORT && target.form === "absolute" ? hostPart(target.host) : `${hostPart(target.host)}:${target.port}`

const writeFields = (fields: ReadonlyArray<Field>): string => {
  let s = ""
  for (const [name, value] of fields) s += `${name}: ${value}\r\n`
  return s
}

/**
 * Request head to send to the origin: origin-form, hop-by-hop fields removed, Host from the target, Via added.
 * The version is HTTP/1.1, except for an HTTP/1.0 client's request, which goes out as HTTP/1.0: the origin
 * then cannot answer with chunked coding, which that client could not decode (RFC 9112 §7.1) and which
 * the proxy forwards verbatim.
 */
export const serializeRequestHead = (
  head: RequestHead,
  opts: { readonly via: string; readonly keepUpgrade: boolean; readonly upstream?: { readonly authorization?: string } | undefined },
): Uint8Array => {
  const { target } = head
  // CONNECT never reaches this in the Postman (it becomes a tunnel); if it did, authority-form is its form.
  // To a parent proxy the target stays in absolute-form (RFC 9112 §3.2.2), rebuilt from its parts.
  const requestTarget =
    target.form !== "absolute" ? authority(target) : opts.upstream !== undefined ? `http://${authority(target)}${target.path}` : target.path
  const out = forwardFields(head.headers, head.version, opts.via, opts.keepUpgrade, "host")
  let s = `${head.method} ${requestTarget} HTTP/${head.version}\r\nHost: ${authority(target)}\r\n`
  // The client's own Proxy-Authorization was for us and is dropped with the hop-by-hop fields; this one is ours.
  if (opts.upstream?.authorization !== undefined) s += `Proxy-Authorization: ${opts.upstream.authorization}\r\n`
  s += writeFields(out.fields)
  s += `Via: ${out.via}\r\n`
  if (out.upgrade) s += "Connection: upgrade\r\n"
  return encodeLatin1(s + "\r\n")
}

/** Response head to send to the client: hop-by-hop fields removed, Via added, Connection: close if `close`. */
export const serializeResponseHead = (
  head: ResponseHead,
  opts: { readonly via: string; readonly close: boolean; readonly keepUpgrade: boolean },
): Uint8Array => {
  const out = forwardFields(head.headers, head.version, opts.via, opts.keepUpgrade, undefined)
  let s = `HTTP/1.1 ${head.status} ${head.reason}\r\n`
  s += writeFields(out.fields)
  s += `Via: ${out.via}\r\n`
  const connection = [...(out.upgrade ? ["upgrade"] : []), ...(opts.close ? ["close"] : [])]
  if (connection.length > 0) s += `Connection: ${connection.join(", ")}\r\n`
  return encodeLatin1(s + "\r\n")
}

/** True if the message asks to close after it: Connection: close, or HTTP/1.0 without Connection: keep-alive. */
export const wantsClose = (version: HttpVersion, headers: ReadonlyArray<Field>): boolean =>
  hasToken(headers, "connection", "close") || (version === "1.0" && !hasToken(headers, "connection", "keep-alive"))
