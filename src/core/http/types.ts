/**
 * The parsed forms of HTTP/1.1 messages (RFC 9112) that the Postman works with.
 * Produced by request-head.ts / response-head.ts, serialized again by serialize.ts.
 * Only this shape crosses module boundaries; raw bytes of a head are never forwarded as they came.
 */

/** A header field as received: name in its original case, value with surrounding whitespace removed. */
export type Field = readonly [name: string, value: string]

export type HttpVersion = "1.0" | "1.1"

/** Where a request goes, decoded from its request-target (RFC 9112 §3.2). */
export type Target =
  /** `CONNECT host:port` (authority-form). `host` is bare: IPv6 without brackets. */
  | { readonly form: "authority"; readonly host: string; readonly port: number }
  /** `GET http://host[:port]/path?q` (absolute-form, scheme http). `path` is origin-form ("/" when empty). */
  | { readonly form: "absolute"; readonly host: string; readonly port: number; readonly path: string }

export interface RequestHead {
  readonly method: string
  /** The request-target exactly as received (for logs). */
  readonly rawTarget: string
  readonly target: Target
  readonly version: HttpVersion
  readonly headers: ReadonlyArray<Field>
}

export interface ResponseHead {
  readonly version: HttpVersion
  readonly status: number
  readonly reason: string
  readonly headers: ReadonlyArray<Field>
}

/** How the body that follows a head is delimited (RFC 9112 §6.3). */
export type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "until-close" }

/** Why a request head was refused: the status to answer and a short reason for the body and the log. */
export interface Rejection {
  readonly status: 400 | 405 | 414 | 431 | 501 | 505
  readonly reason: string
  /** The method and request-target, when the request line was parsed before the refusal (for the log). */
  readonly method?: string
  readonly target?: string
}
