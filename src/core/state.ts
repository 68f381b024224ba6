/**
 * The Postman's state: a tagged union whose variants carry exactly what that state owns (after
 * quinn-proto's `State` and rustls' one type per state). What a state does not own cannot be reached
 * from it: an idle connection holds no exchange, `Connected` can only be handled where an origin socket
 * is being dialled, and a tunnel keeps no request head, because `Relay` has no field for one.
 *
 * Owns: the shapes of the states and of the records they carry. Never: behaviour (postman.ts), syntax
 * (./http), or anything that lives as long as the client socket (the queued client bytes, whether the
 * client half-closed, why its reading is paused: those stay on the Postman itself).
 */
import type { UpstreamHop } from "./events.ts"
import type { BodyFramer } from "./http/body.ts"
import type { HeadReader } from "./http/head-reader.ts"
import type { RequestLineScan } from "./http/request-line-scan.ts"
import type { RequestHead } from "./http/types.ts"

/** A request head partly read in AwaitingHead: since when, how many bytes, and the early judge of its line. */
export interface HeadInProgress {
  readonly startedAt: number
  /** Bytes received for this head (for the log of a head refused before it was complete). */
  seen: number
  readonly line: RequestLineScan
}

/** What the access log says of an exchange or a tunnel, counted as it goes. */
export interface Ledger {
  readonly method: string
  readonly target: string
  readonly startedAt: number
  bytesFromClient: number
  bytesFromOrigin: number
  /** Who the runtime authenticated the request as (proxy authentication on). */
  user: string | undefined
}

/** What an HTTP request (not a CONNECT) keeps until its response is complete. */
export interface HttpRequest {
  readonly head: RequestHead
  readonly body: BodyFramer
  /** No body and an idempotent method: it may be sent again on a fresh connection (one retry). */
  readonly replayable: boolean
  /** It asked to switch protocols (`Connection: upgrade` and an `Upgrade` field). */
  readonly upgrade: boolean
}

/** One request from its head to its end; `request` is undefined for a CONNECT. */
export interface Exchange extends Ledger {
  readonly host: string
  readonly port: number
  readonly request: HttpRequest | undefined
  /** The client connection closes after this exchange (client asked, HTTP/1.0, shutdown, an early response). */
  closeAfter: boolean
  /** It was sent again once already (after a reused origin connection failed). */
  retried: boolean
  /** A CONNECT's received `Via` values, joined (`receivedVia` of its Connect); undefined when none. */
  readonly receivedVia?: string | undefined
}

/** A tunnel's record (CONNECT after its 200, or an upgrade after its 101): what it logs, and no head. */
export interface Relay extends Ledger {
  readonly kind: "tunnel" | "upgrade"
  readonly status: number
}

/** The origin socket asked for by the last `Connect`: dialled, then connected, until its one `Close(origin)`. */
export interface Origin {
  /** It came from the runtime's pool of kept-alive connections (`Connected.reused`). */
  reused: boolean
  /** The origin half-closed (`Ended(origin)`). */
  ended: boolean
  /** Why reading from it is paused (bits: PEER_BLOCKED); 0 when reading. */
  pause: number
}

/** The response of a Forwarding exchange: heads until the final one, then its body. */
export type Response =
  | {
      readonly _tag: "Heads"
      readonly reader: HeadReader
      /** 1xx heads received so far (capped: MAX_INTERIM_RESPONSES). None of them begins the response. */
      interim: number
    }
  | {
      readonly _tag: "Body"
      readonly body: BodyFramer
      /** The final status, sent to the client: from here on no error response is possible. */
      readonly status: number
      /**
       * The origin connection may be kept after this body: delimited, no `Connection: close`, and not a
       * response that cannot have a body (bytes an origin sends after one are not ours to interpret).
       */
      readonly originReusable: boolean
      /** The request or the response authenticated the connection (NTLM, Negotiate): kept for this client only. */
      readonly originPinned: boolean
    }

export type State =
  | {
      readonly _tag: "AwaitingHead"
      readonly reader: HeadReader
      head: HeadInProgress | undefined
      /** When the connection became idle (accept time for the first request). */
      readonly idleSince: number
      /** No request was read yet: the idle deadline is headTimeout, not keepAliveTimeout. */
      readonly firstRequest: boolean
    }
  | { readonly _tag: "Authorizing"; readonly exchange: Exchange; readonly since: number }
  | { readonly _tag: "Connecting"; readonly exchange: Exchange; readonly origin: Origin; readonly since: number }
  | {
      readonly _tag: "Forwarding"
      readonly exchange: Exchange
      readonly request: HttpRequest
      readonly origin: Origin
      /** The socket leads to a parent proxy (Connected.upstream), not to the origin. */
      readonly upstream: UpstreamHop | undefined
      response: Response
    }
  | { readonly _tag: "Tunnel"; readonly relay: Relay; readonly origin: Origin }
  | { readonly _tag: "Closed" }

export type PostmanState = State["_tag"]
