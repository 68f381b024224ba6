/**
 * The Postman's transition table, as data.
 *
 * This is the specification of postman.ts in a form that can be printed (docs/design.md is generated
 * from it: `npm run docs`) and tested row by row (test/core/transitions.test.ts drives a Postman into
 * `from`, delivers `event` under `when`, and checks it lands in `to` with exactly these action tags).
 * When behaviour changes, this table changes with it, or the tests fail.
 *
 * `SetDeadline` is listed only in the rows that are about deadlines (A1, F16): elsewhere whether a new
 * deadline is emitted depends on whether the one already armed is earlier (deadlines are lazy).
 */
import type { PostmanState } from "./postman.ts"

export interface Transition {
  readonly id: string
  readonly from: PostmanState
  readonly event: string
  readonly when: string
  readonly to: PostmanState
  /** Action tags in emission order; `Write(client 4xx)` style notes are kept short. */
  readonly actions: ReadonlyArray<string>
}

const row = (
  id: string,
  from: PostmanState,
  event: string,
  when: string,
  to: PostmanState,
  actions: ReadonlyArray<string>,
): Transition => ({ id, from, event, when, to, actions })

export const transitions: ReadonlyArray<Transition> = [
  row("A1", "AwaitingHead", "Received(client)", "first bytes of a head on a kept-alive connection", "AwaitingHead", ["SetDeadline(head)"]),
  row("A2", "AwaitingHead", "Received(client)", "request line longer than maxRequestLine (414 if the target made it long, else 400)", "Closed", ["Write(client 414)", "Log", "Close(client)"]),
  row("A3", "AwaitingHead", "Received(client)", "head larger than maxHeadBytes", "Closed", ["Write(client 431)", "Log", "Close(client)"]),
  row("A4", "AwaitingHead", "Received(client)", "head complete but invalid (400/405/414/431/501/505/508)", "Closed", ["Write(client 4xx/5xx)", "Log", "Close(client)"]),
  row("A5", "AwaitingHead", "Received(client)", "CONNECT head complete", "Connecting", ["Connect", "SetDeadline(connect)"]),
  row("A6", "AwaitingHead", "Received(client)", "absolute-form head complete", "Connecting", ["Connect", "SetDeadline(connect)"]),
  row("A7", "AwaitingHead", "Ended(client)", "no partial head", "Closed", ["Close(client)"]),
  row("A8", "AwaitingHead", "Ended(client)", "partial head", "Closed", ["Close(client)"]),
  row("A9", "AwaitingHead", "Errored(client)", "", "Closed", ["Close(client)"]),
  row("A10", "AwaitingHead", "Timeout", "partial head, head deadline passed", "Closed", ["Write(client 408)", "Log", "Close(client)"]),
  row("A11", "AwaitingHead", "Timeout", "no partial head, idle deadline passed", "Closed", ["Close(client)"]),
  row("A12", "AwaitingHead", "Received(client)", "a request-line byte no request line can contain (a TLS ClientHello, a control byte, a version that cannot become HTTP/x.y): at that byte", "Closed", ["Write(client 400)", "Log", "Close(client)"]),

  row("C1", "Connecting", "Received(client)", "queued bytes below maxBufferedBytes", "Connecting", []),
  row("C2", "Connecting", "Received(client)", "queued bytes reach maxBufferedBytes", "Connecting", ["PauseReading(client)"]),
  row("C3", "Connecting", "Connected", "CONNECT, client bytes queued", "Tunnel", ["Write(client 200)", "Write(origin queued)"]),
  row("C4", "Connecting", "Connected", "HTTP request, body bytes queued", "Forwarding", ["Write(origin head)", "Write(origin body)"]),
  row("C5", "Connecting", "ConnectFailed", "unresolved, refused, unreachable or error", "Closed", ["Write(client 502)", "Log", "Close(client)"]),
  row("C6", "Connecting", "ConnectFailed", "timeout", "Closed", ["Write(client 504)", "Log", "Close(client)"]),
  row("C7", "Connecting", "Timeout", "connect deadline passed", "Closed", ["Write(client 504)", "Log", "Close(origin)", "Close(client)"]),
  row("C8", "Connecting", "Ended(client)", "request complete", "Connecting", []),
  row("C9", "Connecting", "Ended(client)", "request body incomplete", "Closed", ["Log", "Close(origin)", "Close(client)"]),
  row("C10", "Connecting", "Errored(client)", "", "Closed", ["Log", "Close(origin)", "Close(client)"]),
  row("C11", "Connecting", "ConnectFailed", "denied (the destination policy; nothing was dialled)", "Closed", ["Write(client 403)", "Log", "Close(client)"]),

  row("F1", "Forwarding", "Received(client)", "request body bytes", "Forwarding", ["Write(origin)"]),
  row("F2", "Forwarding", "Received(client)", "request complete: next pipelined request, below the buffer limit", "Forwarding", []),
  row("F3", "Forwarding", "Received(client)", "malformed chunked body (size, extension grammar, framing, trailer), no response yet: no byte of the bad line reached the origin", "Closed", ["Write(client 400)", "Log", "Close(origin)", "Close(client)"]),
  row("F4", "Forwarding", "Received(origin)", "1xx interim head (HTTP/1.1 client)", "Forwarding", ["Write(client 1xx)"]),
  row("F5", "Forwarding", "Received(origin)", "101 and the request asked to upgrade", "Tunnel", ["Write(client 101)"]),
  row("F6", "Forwarding", "Received(origin)", "final head, body follows", "Forwarding", ["Write(client head)"]),
  row("F7", "Forwarding", "Received(origin)", "malformed head", "Closed", ["Write(client 502)", "Log", "Close(origin)", "Close(client)"]),
  row("F8", "Forwarding", "Received(origin)", "body bytes, body not complete", "Forwarding", ["Write(client)"]),
  row("F9", "Forwarding", "Received(origin)", "body complete, connection kept alive", "AwaitingHead", ["Write(client)", "Log", "Close(origin reusable)"]),
  row("F10", "Forwarding", "Received(origin)", "body complete, client connection to close", "Closed", ["Write(client)", "Log", "Close(origin reusable)", "Close(client)"]),
  row("F11", "Forwarding", "Ended(origin)", "close-delimited body", "Closed", ["Log", "Close(origin)", "Close(client)"]),
  row("F12", "Forwarding", "Ended(origin)", "no response head yet", "Closed", ["Write(client 502)", "Log", "Close(origin)", "Close(client)"]),
  row("F13", "Forwarding", "Ended(origin)", "delimited body incomplete", "Closed", ["Log", "Close(origin)", "Close(client)"]),
  row("F14", "Forwarding", "Errored(origin)", "no response head yet", "Closed", ["Write(client 502)", "Log", "Close(client)"]),
  row("F15", "Forwarding", "Timeout", "idle deadline passed, no response yet", "Closed", ["Write(client 504)", "Log", "Close(origin)", "Close(client)"]),
  row("F16", "Forwarding", "Timeout", "deadline passed but there was activity since", "Forwarding", ["SetDeadline(idle)"]),
  row("F17", "Forwarding", "Ended(client)", "request complete", "Forwarding", []),
  row("F18", "Forwarding", "Ended(origin)", "reused origin connection, nothing received, idempotent request without body, first try", "Connecting", ["Close(origin)", "Connect"]),
  row("F20", "Forwarding", "Received(origin)", "an 11th 1xx interim head for one request (more than MAX_INTERIM_RESPONSES)", "Closed", ["Write(client 502)", "Log", "Close(origin)", "Close(client)"]),
  row("F21", "Forwarding", "Received(origin)", "a chunked final head to an HTTP/1.0 request", "Closed", ["Write(client 502)", "Log", "Close(origin)", "Close(client)"]),
  row("F19", "Forwarding", "Errored(origin)", "reused origin connection, nothing received, idempotent request without body, first try", "Connecting", ["Connect"]),

  row("T1", "Tunnel", "Received(client)", "", "Tunnel", ["Write(origin)"]),
  row("T2", "Tunnel", "Received(origin)", "", "Tunnel", ["Write(client)"]),
  row("T3", "Tunnel", "Ended(client)", "origin still sending", "Tunnel", ["HalfClose(origin)"]),
  row("T4", "Tunnel", "Ended(origin)", "client still sending", "Tunnel", ["HalfClose(client)"]),
  row("T5", "Tunnel", "Ended(origin)", "client already ended", "Closed", ["HalfClose(client)", "Log", "Close(origin)", "Close(client)"]),
  row("T6", "Tunnel", "Errored(origin)", "", "Closed", ["Log", "Close(client)"]),
  row("T7", "Tunnel", "Errored(client)", "", "Closed", ["Log", "Close(origin)", "Close(client)"]),
  row("T8", "Tunnel", "Timeout", "idle deadline passed", "Closed", ["Log", "Close(origin)", "Close(client)"]),
  row("T9", "Tunnel", "Blocked(client)", "", "Tunnel", ["PauseReading(origin)"]),
  row("T10", "Tunnel", "Drained(client)", "after Blocked(client)", "Tunnel", ["ResumeReading(origin)"]),
  row("T11", "Tunnel", "Blocked(origin)", "", "Tunnel", ["PauseReading(client)"]),
  row("T12", "Tunnel", "Drained(origin)", "after Blocked(origin)", "Tunnel", ["ResumeReading(client)"]),

  row("S1", "AwaitingHead", "shutdown()", "no partial head", "Closed", ["Close(client)"]),
  row("S2", "Forwarding", "shutdown()", "exchange in flight", "Forwarding", []),
  row("S3", "Tunnel", "abort()", "grace period over", "Closed", ["Log", "Close(origin)", "Close(client)"]),
  row("X1", "Closed", "any event", "", "Closed", []),

  row("UP1", "Connecting", "Connected", "HTTP request, connection to a parent proxy (Connected.upstream)", "Forwarding", ["Write(origin head in absolute-form, with Proxy-Authorization)"]),
  row("UP2", "Connecting", "ConnectFailed", "upstream: the parent proxy is unreachable or did not open the tunnel", "Closed", ["Write(client 502 naming the parent)", "Log", "Close(client)"]),
  row("UP3", "Forwarding", "Received(origin)", "407 from the parent proxy of a plain HTTP request", "Closed", ["Write(client 502 naming the parent)", "Log", "Close(origin)", "Close(client)"]),
  // Proxy authentication (PostmanOptions.auth): a valid head is checked before anything is dialled.
  row("U1", "AwaitingHead", "Received(client)", "CONNECT or absolute-form head complete, authentication required", "Authorizing", ["Authenticate", "SetDeadline(auth)"]),
  row("U2", "Authorizing", "Authenticated", "", "Connecting", ["Connect"]),
  row("U3", "Authorizing", "AuthenticationFailed", "missing, invalid or rate-limited; nothing of the request left unread, connection kept", "AwaitingHead", ["Write(client 407)", "Log"]),
  row("U4", "Authorizing", "AuthenticationFailed", "missing, invalid or rate-limited; a request body or early tunnel bytes, or the connection closes after this request", "Closed", ["Write(client 407)", "Log", "Close(client)"]),
  row("U5", "Authorizing", "AuthenticationFailed", "unavailable", "Closed", ["Write(client 503)", "Log", "Close(client)"]),
  row("U6", "Authorizing", "Timeout", "verdict deadline (connectTimeout) passed", "Closed", ["Write(client 503)", "Log", "Close(client)"]),
  row("U7", "Authorizing", "Received(client)", "queued bytes below maxBufferedBytes", "Authorizing", []),
  row("U8", "Authorizing", "Received(client)", "queued bytes reach maxBufferedBytes", "Authorizing", ["PauseReading(client)"]),
  row("U9", "Authorizing", "Ended(client)", "request complete", "Authorizing", []),
  row("U10", "Authorizing", "Ended(client)", "request body incomplete", "Closed", ["Log", "Close(client)"]),
  row("U11", "Authorizing", "Errored(client)", "", "Closed", ["Log", "Close(client)"]),
  row("U12", "Authorizing", "abort()", "grace period over", "Closed", ["Log", "Close(client)"]),
  row("U13", "AwaitingHead", "Authenticated", "no Authenticate pending (stale verdict)", "AwaitingHead", []),
]
