/**
 * Actions: everything a Postman asks the runtime to do, in order.
 *
 * The runtime must carry out the actions of one `handle` call in the order given, synchronously,
 * before feeding the next event. Writes are never reordered or merged across sides.
 */
import type { Side } from "./events.ts"

/** How a request or tunnel ended, for the access log and metrics. */
export type Outcome =
  | "ok" // completed normally
  | "client-error" // we answered 4xx/5xx because of what the client sent
  | "origin-error" // the origin could not be reached or misbehaved (502)
  | "timeout" // a deadline fired (504, 408 or idle)
  | "aborted" // a side closed or failed mid-way
  | "shutdown" // the runtime asked the connection to stop
  | "denied" // the destination policy forbade the origin (403)
  | "unauthenticated" // proxy authentication required or failed (407)

/** One line of the access log: a finished request or tunnel. Times are the `now` values given to the core. */
export interface AccessRecord {
  readonly kind: "http" | "tunnel" | "upgrade"
  readonly method: string
  readonly target: string
  /** Status sent to the client; 0 if none was sent. */
  readonly status: number
  /** Bytes received from the client for this exchange (head included), and from the origin. */
  readonly bytesFromClient: number
  readonly bytesFromOrigin: number
  readonly startedAt: number
  readonly endedAt: number
  readonly outcome: Outcome
  /** A short human-readable reason when the outcome is not "ok". */
  readonly detail?: string
  /** The authenticated user (proxy authentication on), as the runtime's `Authenticated` named it. */
  readonly user?: string
}

export type Action =
  /**
   * Dial the origin. At most one origin socket exists at a time; it is answered by Connected or ConnectFailed.
   * `tunnel` (present only for CONNECT): the connection carries a tunnel, not an HTTP exchange: the
   * destination policy opens different ports to each, and through a parent proxy the runtime first makes
   * the parent's CONNECT (and reports Connected after its 2xx).
   * `receivedVia` (CONNECT only, present only when the request had `Via` values): those values in
   * order, joined with ", ". The parent's CONNECT carries them before this proxy's own hop, as a
   * forwarded request does, so a loop through parents comes back with this proxy's pseudonym in it.
   * `fresh` (present only on the one retry after a reused origin connection failed, rows F18/F19): dial
   * a new connection, never a pooled one; the pool's other idle connections to that origin were likely
   * closed by it at the same moment (an origin restart, an idle sweep).
   */
  | {
      readonly _tag: "Connect"
      readonly host: string
      readonly port: number
      readonly tunnel?: true
      readonly receivedVia?: string
      readonly fresh?: true
    }
  /** Write bytes to a side. */
  | { readonly _tag: "Write"; readonly side: Side; readonly bytes: Uint8Array }
  /** Half-close our sending direction to `side` (socket.end()); reading from it goes on. */
  | { readonly _tag: "HalfClose"; readonly side: Side }
  /**
   * Release the socket of `side` (destroy it; flush pending writes first if `graceful`).
   * Emitted exactly once per socket: once for the client, once per successful `Connect` for the origin.
   * `reusable` (origin only) says the origin connection is idle at a message boundary and may be pooled.
   * `pinned` (origin only, present only when true, with `reusable: false, graceful: true`): it is idle at
   * a message boundary but authenticated by NTLM or Negotiate, so it may serve this client connection's
   * later requests and no other's; a runtime that does not keep such connections closes it, as the other
   * flags say.
   */
  | { readonly _tag: "Close"; readonly side: Side; readonly graceful: boolean; readonly reusable: boolean; readonly pinned?: true }
  /** Stop / start reading from a side (backpressure, or nothing to do with its bytes yet). */
  | { readonly _tag: "PauseReading"; readonly side: Side }
  | { readonly _tag: "ResumeReading"; readonly side: Side }
  /** Deliver a `Timeout` event when the clock reaches `at` (replacing any earlier deadline); none after Close of the client. */
  | { readonly _tag: "SetDeadline"; readonly at: number }
  /** A finished request or tunnel, for the access log and metrics. */
  | { readonly _tag: "Log"; readonly record: AccessRecord }
  /**
   * Check the request's proxy credentials (only when the Postman requires authentication): `credentials`
   * is the raw `Proxy-Authorization` value, undefined when the request has none. Answered by exactly one
   * `Authenticated` or `AuthenticationFailed`, possibly at once (fed after the current action list).
   */
  | { readonly _tag: "Authenticate"; readonly credentials: string | undefined }
