/**
 * Responses the proxy writes itself: error responses (4xx/5xx) and the CONNECT success line.
 *
 * Every error response is short plain text, carries `Connection: close` and is followed by closing the
 * client connection: after an error the framing of whatever the client sends next is unknown, and a
 * proxy that guesses is a proxy that can be used for request smuggling.
 */

const encoder = new TextEncoder()

export const reasonPhrases: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  508: "Loop Detected",
}

/** Methods we forward; sent in `Allow` with a 405 (RFC 9110 §15.5.6 requires the field). */
const allowedMethods = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT"

/** `HTTP/1.1 <status> <reason>` with a one-line text body `hctunnel: <detail>`. */
export const errorResponse = (status: number, detail: string, via: string): Uint8Array => {
  const reason = reasonPhrases[status] ?? "Error"
  // The detail may quote client input (a host name): keep it printable so it cannot break the head or body.
  const body = `${status} ${reason}: ${detail.replace(/[^\x20-\x7e]/g, "?")}\n`
  const extra = status === 405 ? `Allow: ${allowedMethods}\r\n` : ""
  return encoder.encode(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${body.length}\r\n` +
      extra +
      `Via: 1.1 ${via}\r\n` +
      `Connection: close\r\n` +
      `\r\n` +
      body,
  )
}

/** The reply to a CONNECT once the origin is connected (RFC 9110 §9.3.6: any 2xx; no body, no framing). */
export const connectEstablished: Uint8Array = encoder.encode("HTTP/1.1 200 Connection established\r\n\r\n")

/** The protection space of the proxy's Basic authentication (RFC 9110 §11.5, RFC 7617). */
export const AUTH_REALM = "hctunnel"

/**
 * `407 Proxy Authentication Required` with the Basic challenge (RFC 9110 §11.7.1). Unlike the other error
 * responses it may keep the connection open (`close` false): the client retries on it with credentials,
 * which is what curl, undici and requests do.
 */
export const authenticationRequired = (detail: string, via: string, close: boolean): Uint8Array => {
  const body = `407 Proxy Authentication Required: ${detail.replace(/[^\x20-\x7e]/g, "?")}\n`
  return encoder.encode(
    `HTTP/1.1 407 Proxy Authentication Required\r\n` +
      `Proxy-Authenticate: Basic realm="${AUTH_REALM}", charset="UTF-8"\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${body.length}\r\n` +
      `Via: 1.1 ${via}\r\n` +
      (close ? `Connection: close\r\n` : "") +
      `\r\n` +
      body,
  )
}
