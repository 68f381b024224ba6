/**
 * Events: everything the outside world can tell a Postman.
 *
 * The runtime turns socket callbacks, DNS/connect results and timer expiry into these records and
 * hands them to `Postman.handle(event, now)`. Events are plain immutable data so that a test, a fuzzer
 * or a port in another language can replay them from JSON (see test/vectors).
 */

/** The two sockets of one proxied connection: the client that connected to us, and the origin we dialled. */
export type Side = "client" | "origin"

/** Why dialling the origin failed; decides the status of the error response (502 or 504). */
export type ConnectFailure =
  | "unresolved" // the name did not resolve (NXDOMAIN, `.invalid`, no address)
  | "refused" // ECONNREFUSED
  | "unreachable" // EHOSTUNREACH, ENETUNREACH, EADDRNOTAVAIL...
  | "timeout" // the runtime's own connect attempt timed out (the core's deadline usually fires first)
  | "error" // anything else
  | "denied" // the destination policy forbids it (runtime/DestinationPolicy.ts); nothing was dialled; the message says why
  | "upstream" // the parent proxy could not be reached or did not open the tunnel: `message` names it and its answer
  | "unrouted" // the runtime could not decide how to reach it (an embedding program's route hook failed): `message` says why

/**
 * The origin connection of a plain HTTP request goes through a parent (upstream) proxy: the request head
 * must be written in absolute-form, with `authorization` as its Proxy-Authorization field when set.
 * `proxy` names the parent ("127.0.0.1:3128") for error responses.
 */
export interface UpstreamHop {
  readonly proxy: string
  /** The whole Proxy-Authorization value, e.g. "Basic dXNlcjpwYXNz". */
  readonly authorization?: string
}

/** Why a request was not authenticated; decides the status (407, or 503 for "unavailable"). */
export type AuthFailure =
  | "missing" // no Proxy-Authorization field
  | "invalid" // malformed, unknown user or wrong password
  | "rate-limited" // the client used up its attempts lately, or has too many checks pending: refused without checking
  | "unavailable" // the runtime could not check them (its verifier is overloaded or gone)

export type Event =
  /** Bytes arrived from a side. The core may keep a reference to `bytes`: the runtime must not reuse the buffer. */
  | { readonly _tag: "Received"; readonly side: Side; readonly bytes: Uint8Array }
  /** The peer on `side` half-closed its sending direction (TCP FIN): no more bytes will come from it. */
  | { readonly _tag: "Ended"; readonly side: Side }
  /** The socket on `side` failed (reset, EPIPE...). Nothing more can be read from or written to it. */
  | { readonly _tag: "Errored"; readonly side: Side; readonly message: string }
  /**
   * The origin socket asked for by the last `Connect` action is established. `reused`: it is a kept-alive
   * connection from the runtime's pool, which the origin may be closing just now (see retries in design.md).
   * `upstream`: for a plain HTTP request, the socket leads to a parent proxy, not to the origin (a tunnel
   * through a parent is reported without it: the runtime made the parent's CONNECT, the bytes are the origin's).
   */
  | { readonly _tag: "Connected"; readonly reused?: boolean; readonly upstream?: UpstreamHop }
  /** The origin socket asked for by the last `Connect` action could not be established. No socket exists. */
  | { readonly _tag: "ConnectFailed"; readonly reason: ConnectFailure; readonly message: string }
  /** A `Write` to `side` was refused by a full buffer (socket.write returned false). */
  | { readonly _tag: "Blocked"; readonly side: Side }
  /** The write buffer of `side` drained after a `Blocked`. */
  | { readonly _tag: "Drained"; readonly side: Side }
  /** The clock reached (or passed) the deadline the core last asked for. */
  | { readonly _tag: "Timeout" }
  /** The answer to the last `Authenticate`: the credentials are valid, for `user`. */
  | { readonly _tag: "Authenticated"; readonly user: string }
  /** The answer to the last `Authenticate`: no valid credentials (407), or they could not be checked (503). */
  | { readonly _tag: "AuthenticationFailed"; readonly reason: AuthFailure; readonly message: string }
