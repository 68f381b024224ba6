/**
 * The Postman's transition table, as data.
 *
 * This is the specification of postman.ts in a form that can be printed (docs/design.md §5 and its state
 * diagram are generated from it: `npm run docs`) and checked row by row: test/core/transitions.test.ts
 * drives a Postman into `from`, delivers `event` under `when`, and checks that it lands in `to` with
 * exactly these action tags, these `Close` flags and this log outcome. The table is total: every pair
 * of a state and a trigger (an event of events.ts, or the `shutdown()`/`abort()` calls) has a row, an
 * "ignored" row (no action) included; a test fails when a pair has none. Every row is also exercised by
 * a conformance vector that names it (test/vectors).
 *
 * Row IDs are stable names (docs and vectors refer to them): new rows get new numbers, never reused ones.
 *
 * `SetDeadline` is listed only in the rows that are about deadlines (A1, A15, F16, ...): elsewhere whether
 * a new deadline is emitted depends on whether the one already armed is earlier (deadlines are lazy).
 * Consecutive `Write`s to one side are one entry: a row's `Write(origin body)` may be several writes (one
 * per queued chunk, or per piece of a rewritten chunked body); the vectors fix the exact writes.
 * One event may run through several rows: a chunk holding a whole response is F6 then F9, and after a
 * row that returns to AwaitingHead the queued (pipelined) client bytes are read at once, as rows on
 * `Received(client)` (F9 then A6).
 */
import type { Outcome } from "./actions.ts"
import type { PostmanState } from "./postman.ts"

/** The states, in the order the docs print them. */
export const states: ReadonlyArray<PostmanState> = ["AwaitingHead", "Authorizing", "Connecting", "Forwarding", "Tunnel", "Closed"]

/** Everything that can happen to a Postman in a state: each event (per side where it has one) and each call. */
export const triggers: ReadonlyArray<string> = [
  "Received(client)",
  "Received(origin)",
  "Ended(client)",
  "Ended(origin)",
  "Errored(client)",
  "Errored(origin)",
  "Connected",
  "ConnectFailed",
  "Blocked(client)",
  "Blocked(origin)",
  "Drained(client)",
  "Drained(origin)",
  "Timeout",
  "Authenticated",
  "AuthenticationFailed",
  "shutdown()",
  "abort()",
]

/**
 * How a `Close` releases its socket: flushed (`graceful: true`), destroyed, handed to the pool
 * (`reusable: true`), or kept for this client connection only (`pinned: true`).
 */
export type CloseKind = "graceful" | "abrupt" | "reusable" | "pinned"

export interface Transition {
  readonly id: string
  readonly from: PostmanState
  readonly event: string
  readonly when: string
  readonly to: PostmanState
  /** Action tags in emission order; `Write(client 4xx)` style notes are kept short. */
  readonly actions: ReadonlyArray<string>
  /** The flags of the row's `Close(client)` and `Close(origin)`, when it has them. */
  readonly closeClient?: CloseKind
  readonly closeOrigin?: CloseKind
  /** The outcome of the row's `Log` record, when it has one. */
  readonly log?: Outcome
}

/** The row's event, or each of its events when it names several (`A | B`): rows that behave the same are one row. */
export const triggersOf = (t: Transition): ReadonlyArray<string> => (t.event === "any event or call" ? triggers : t.event.split(" | "))

/** No action but perhaps a new deadline: nothing of the event is kept. */
export const isIgnored = (t: Transition): boolean => t.from === t.to && t.actions.length === 0

interface Columns {
  readonly client?: CloseKind
  readonly origin?: CloseKind
  readonly log?: Outcome
}
const row = (
  id: string,
  from: PostmanState,
  event: string,
  when: string,
  to: PostmanState,
  actions: ReadonlyArray<string>,
  columns: Columns = {},
): Transition => ({
  id,
  from,
  event,
  when,
  to,
  actions,
  ...(columns.client === undefined ? {} : { closeClient: columns.client }),
  ...(columns.origin === undefined ? {} : { closeOrigin: columns.origin }),
  ...(columns.log === undefined ? {} : { log: columns.log }),
})
const ignored = (id: string, from: PostmanState, event: string, when: string): Transition => row(id, from, event, when, from, [])

export const transitions: ReadonlyArray<Transition> = [
  row("A1", "AwaitingHead", "Received(client)", "first bytes of a head on a kept-alive connection", "AwaitingHead", ["SetDeadline(head)"]),
  row(
    "A2",
    "AwaitingHead",
    "Received(client)",
    "request line longer than maxRequestLine (414 if the target made it long, else 400)",
    "Closed",
    ["Write(client 414)", "Log", "Close(client)"],
    { client: "graceful", log: "client-error" },
  ),
  row(
    "A3",
    "AwaitingHead",
    "Received(client)",
    "head larger than maxHeadBytes (logged as maxHeadBytes + 1 bytes, however split)",
    "Closed",
    ["Write(client 431)", "Log", "Close(client)"],
    { client: "graceful", log: "client-error" },
  ),
  row(
    "A4",
    "AwaitingHead",
    "Received(client)",
    "head complete but invalid (400/405/414/431/501/505/508)",
    "Closed",
    ["Write(client 4xx/5xx)", "Log", "Close(client)"],
    { client: "graceful", log: "client-error" },
  ),
  row("A5", "AwaitingHead", "Received(client)", "CONNECT head complete", "Connecting", ["Connect"]),
  row("A6", "AwaitingHead", "Received(client)", "absolute-form head complete", "Connecting", ["Connect"]),
  row("A7", "AwaitingHead", "Ended(client)", "no partial head", "Closed", ["Close(client)"], { client: "graceful" }),
  row("A8", "AwaitingHead", "Ended(client)", "partial head", "Closed", ["Close(client)"], { client: "graceful" }),
  row("A9", "AwaitingHead", "Errored(client)", "", "Closed", ["Close(client)"], { client: "abrupt" }),
  row("A10", "AwaitingHead", "Timeout", "partial head, head deadline passed", "Closed", ["Write(client 408)", "Log", "Close(client)"], {
    client: "graceful",
    log: "timeout",
  }),
  row("A11", "AwaitingHead", "Timeout", "no partial head, idle deadline passed", "Closed", ["Close(client)"], { client: "graceful" }),
  row(
    "A12",
    "AwaitingHead",
    "Received(client)",
    "a request-line byte no request line can contain (a TLS ClientHello, a control byte, a version that cannot become HTTP/x.y): at that byte",
    "Closed",
    ["Write(client 400)", "Log", "Close(client)"],
    { client: "graceful", log: "client-error" },
  ),
  ignored(
    "A13",
    "AwaitingHead",
    "Received(origin) | Ended(origin) | Errored(origin) | Connected | ConnectFailed | Blocked(origin) | Drained(origin)",
    "no origin socket: a stale event",
  ),
  ignored("A14", "AwaitingHead", "Blocked(client) | Drained(client)", "no origin socket to pause or resume"),
  row("A15", "AwaitingHead", "Timeout", "its deadline not reached yet (an earlier one fired)", "AwaitingHead", ["SetDeadline"]),
  row(
    "A16",
    "AwaitingHead",
    "Received(client)",
    "part of a head, its deadline already armed (the first request, or more bytes of a head)",
    "AwaitingHead",
    [],
  ),

  row("C1", "Connecting", "Received(client)", "queued bytes below maxBufferedBytes", "Connecting", []),
  row("C2", "Connecting", "Received(client)", "queued bytes reach maxBufferedBytes", "Connecting", ["PauseReading(client)"]),
  row("C3", "Connecting", "Connected", "CONNECT, client bytes queued", "Tunnel", ["Write(client 200)", "Write(origin queued)"]),
  row("C4", "Connecting", "Connected", "HTTP request, body bytes queued", "Forwarding", ["Write(origin head)", "Write(origin body)"]),
  row(
    "C5",
    "Connecting",
    "ConnectFailed",
    "unresolved, refused, unreachable or error",
    "Closed",
    ["Write(client 502)", "Log", "Close(client)"],
    { client: "graceful", log: "origin-error" },
  ),
  row("C6", "Connecting", "ConnectFailed", "timeout", "Closed", ["Write(client 504)", "Log", "Close(client)"], {
    client: "graceful",
    log: "timeout",
  }),
  row("C7", "Connecting", "Timeout", "connect deadline passed", "Closed", ["Write(client 504)", "Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "graceful",
    log: "timeout",
  }),
  row("C8", "Connecting", "Ended(client)", "request complete", "Connecting", []),
  row("C9", "Connecting", "Ended(client)", "request body incomplete", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "aborted",
  }),
  row("C10", "Connecting", "Errored(client)", "", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "aborted",
  }),
  row(
    "C11",
    "Connecting",
    "ConnectFailed",
    "denied (the destination policy; nothing was dialled)",
    "Closed",
    ["Write(client 403)", "Log", "Close(client)"],
    { client: "graceful", log: "denied" },
  ),
  ignored(
    "C12",
    "Connecting",
    "Received(origin) | Ended(origin) | Authenticated | AuthenticationFailed",
    "not connected yet, no verdict pending: a stale event",
  ),
  row(
    "C13",
    "Connecting",
    "Errored(origin)",
    "the socket failed before Connected (the runtime normally reports ConnectFailed)",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row("C14", "Connecting", "Blocked(client)", "(a write of the previous response)", "Connecting", ["PauseReading(origin)"]),
  row("C15", "Connecting", "Drained(client)", "after Blocked(client)", "Connecting", ["ResumeReading(origin)"]),
  row("C16", "Connecting", "Blocked(origin)", "", "Connecting", ["PauseReading(client)"]),
  row("C17", "Connecting", "Drained(origin)", "after Blocked(origin)", "Connecting", ["ResumeReading(client)"]),
  row("C18", "Connecting", "Timeout", "connect deadline not reached yet (an earlier one fired)", "Connecting", ["SetDeadline"]),
  ignored("C19", "Connecting", "Received(client)", "after Ended(client): bytes after a FIN"),
  row("C20", "Connecting", "Connected", "HTTP request, no body bytes queued", "Forwarding", ["Write(origin head)"]),
  row("C21", "Connecting", "Connected", "CONNECT, no client bytes queued", "Tunnel", ["Write(client 200)"]),

  row("F1", "Forwarding", "Received(client)", "request body bytes", "Forwarding", ["Write(origin)"]),
  row("F2", "Forwarding", "Received(client)", "request complete: next pipelined request, below the buffer limit", "Forwarding", []),
  row(
    "F3",
    "Forwarding",
    "Received(client)",
    "malformed chunked body (size, extension grammar, framing, trailer), no response yet: no byte of the bad line reached the origin",
    "Closed",
    ["Write(client 400)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "client-error" },
  ),
  row("F4", "Forwarding", "Received(origin)", "1xx interim head (HTTP/1.1 client)", "Forwarding", ["Write(client 1xx)"]),
  row("F5", "Forwarding", "Received(origin)", "101 and the request asked to upgrade", "Tunnel", ["Write(client 101)"]),
  row("F6", "Forwarding", "Received(origin)", "final head, body follows", "Forwarding", ["Write(client head)"]),
  row(
    "F7",
    "Forwarding",
    "Received(origin)",
    "malformed head (after any 1xx heads)",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row("F8", "Forwarding", "Received(origin)", "body bytes, body not complete", "Forwarding", ["Write(client)"]),
  row(
    "F9",
    "Forwarding",
    "Received(origin)",
    "body complete, connection kept alive",
    "AwaitingHead",
    ["Write(client)", "Log", "Close(origin reusable)"],
    { origin: "reusable", log: "ok" },
  ),
  row(
    "F10",
    "Forwarding",
    "Received(origin)",
    "body complete, client connection to close",
    "Closed",
    ["Write(client)", "Log", "Close(origin reusable)", "Close(client)"],
    { origin: "reusable", client: "graceful", log: "ok" },
  ),
  row("F11", "Forwarding", "Ended(origin)", "close-delimited body", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "graceful",
    client: "graceful",
    log: "ok",
  }),
  row(
    "F12",
    "Forwarding",
    "Ended(origin)",
    "no final response head yet (1xx heads may have gone to the client)",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row("F13", "Forwarding", "Ended(origin)", "delimited body incomplete", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "origin-error",
  }),
  row(
    "F14",
    "Forwarding",
    "Errored(origin)",
    "no final response head yet (1xx heads may have gone to the client)",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row(
    "F15",
    "Forwarding",
    "Timeout",
    "idle deadline passed, no final response head yet (1xx heads may have gone to the client)",
    "Closed",
    ["Write(client 504)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "timeout" },
  ),
  row("F16", "Forwarding", "Timeout", "deadline passed but there was activity since", "Forwarding", ["SetDeadline(idle)"]),
  row("F17", "Forwarding", "Ended(client)", "request complete", "Forwarding", []),
  row(
    "F18",
    "Forwarding",
    "Ended(origin)",
    "reused origin connection, nothing received, idempotent request without body, first try",
    "Connecting",
    ["Close(origin)", "Connect(fresh)"],
    { origin: "abrupt" },
  ),
  row(
    "F19",
    "Forwarding",
    "Errored(origin)",
    "reused origin connection, nothing received, idempotent request without body, first try",
    "Connecting",
    ["Close(origin)", "Connect(fresh)"],
    { origin: "abrupt" },
  ),
  row(
    "F20",
    "Forwarding",
    "Received(origin)",
    "an 11th 1xx interim head for one request (more than MAX_INTERIM_RESPONSES)",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row(
    "F21",
    "Forwarding",
    "Received(origin)",
    "a chunked final head to an HTTP/1.0 request",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row("F22", "Forwarding", "Ended(client)", "request body incomplete", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "aborted",
  }),
  row("F23", "Forwarding", "Errored(client)", "", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "aborted",
  }),
  row("F24", "Forwarding", "Errored(origin)", "final response head sent", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "origin-error",
  }),
  ignored(
    "F25",
    "Forwarding",
    "Connected | ConnectFailed | Authenticated | AuthenticationFailed",
    "no Connect or Authenticate pending: a stale event",
  ),
  row("F26", "Forwarding", "Blocked(client)", "", "Forwarding", ["PauseReading(origin)"]),
  row("F27", "Forwarding", "Drained(client)", "after Blocked(client)", "Forwarding", ["ResumeReading(origin)"]),
  row("F28", "Forwarding", "Blocked(origin)", "", "Forwarding", ["PauseReading(client)"]),
  row("F29", "Forwarding", "Drained(origin)", "after Blocked(origin)", "Forwarding", ["ResumeReading(client)"]),
  row(
    "F30",
    "Forwarding",
    "Received(origin)",
    "body complete, connection kept alive, the client paused by Blocked(origin): resumed right after the origin's release",
    "AwaitingHead",
    ["Write(client)", "Log", "Close(origin reusable)", "ResumeReading(client)"],
    { origin: "reusable", log: "ok" },
  ),
  row("F31", "Forwarding", "Received(client)", "request complete: pipelined bytes reach maxBufferedBytes", "Forwarding", [
    "PauseReading(client)",
  ]),
  row(
    "F32",
    "Forwarding",
    "Received(origin)",
    "body complete, connection kept alive, the client paused by a full backlog: resumed when the backlog is taken, then the backlog is read",
    "AwaitingHead",
    ["Write(client)", "Log", "Close(origin reusable)", "ResumeReading(client)"],
    { origin: "reusable", log: "ok" },
  ),
  row(
    "F33",
    "Forwarding",
    "Timeout",
    "idle deadline passed, final response head sent",
    "Closed",
    ["Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "abrupt", log: "timeout" },
  ),
  ignored("F34", "Forwarding", "Received(client)", "after Ended(client): bytes after a FIN"),
  row(
    "F35",
    "Forwarding",
    "Received(client)",
    "request body bytes held back: a chunk-size line not complete yet (sent once its line ends)",
    "Forwarding",
    [],
  ),
  row(
    "F36",
    "Forwarding",
    "Received(origin)",
    "a response head larger than maxHeadBytes (after any 1xx heads)",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row(
    "F37",
    "Forwarding",
    "Received(origin)",
    "101 to a request that did not ask to upgrade",
    "Closed",
    ["Write(client 502)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row(
    "F38",
    "Forwarding",
    "Received(origin)",
    "malformed chunked response body: the bytes before the bad line are forwarded, then the connection is cut",
    "Closed",
    ["Write(client)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "abrupt", log: "origin-error" },
  ),
  row(
    "F39",
    "Forwarding",
    "Received(client)",
    "malformed chunked request body after the final response head went out: the bytes before the bad line are forwarded, then the connection is cut",
    "Closed",
    ["Write(origin)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "abrupt", log: "client-error" },
  ),
  row(
    "F40",
    "Forwarding",
    "Received(origin)",
    "body complete, connection kept alive, origin not reusable (its `Connection: close`, an HTTP/1.0 origin without keep-alive, a response that cannot have a body (to HEAD, 204, 304), bytes after the response, or a request body not complete)",
    "AwaitingHead",
    ["Write(client)", "Log", "Close(origin)"],
    { origin: "graceful", log: "ok" },
  ),
  row(
    "F41",
    "Forwarding",
    "Received(origin)",
    "body complete, client connection to close, origin not reusable (or pinned, F42: nobody is left to keep it for)",
    "Closed",
    ["Write(client)", "Log", "Close(origin)", "Close(client)"],
    { origin: "graceful", client: "graceful", log: "ok" },
  ),
  row(
    "F42",
    "Forwarding",
    "Received(origin)",
    "body complete, connection kept alive, origin reusable but authenticated: the request's `Authorization` or the response's `WWW-Authenticate` names NTLM or Negotiate",
    "AwaitingHead",
    ["Write(client)", "Log", "Close(origin pinned)"],
    { origin: "pinned", log: "ok" },
  ),

  row("T1", "Tunnel", "Received(client)", "", "Tunnel", ["Write(origin)"]),
  row("T2", "Tunnel", "Received(origin)", "", "Tunnel", ["Write(client)"]),
  row("T3", "Tunnel", "Ended(client)", "origin still sending", "Tunnel", ["HalfClose(origin)"]),
  row("T4", "Tunnel", "Ended(origin)", "client still sending", "Tunnel", ["HalfClose(client)"]),
  row("T5", "Tunnel", "Ended(origin)", "client already ended", "Closed", ["HalfClose(client)", "Log", "Close(origin)", "Close(client)"], {
    origin: "graceful",
    client: "graceful",
    log: "ok",
  }),
  row("T6", "Tunnel", "Errored(origin)", "", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "aborted",
  }),
  row("T7", "Tunnel", "Errored(client)", "", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "aborted",
  }),
  row("T8", "Tunnel", "Timeout", "idle deadline passed", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "timeout",
  }),
  row("T9", "Tunnel", "Blocked(client)", "", "Tunnel", ["PauseReading(origin)"]),
  row("T10", "Tunnel", "Drained(client)", "after Blocked(client)", "Tunnel", ["ResumeReading(origin)"]),
  row("T11", "Tunnel", "Blocked(origin)", "", "Tunnel", ["PauseReading(client)"]),
  row("T12", "Tunnel", "Drained(origin)", "after Blocked(origin)", "Tunnel", ["ResumeReading(client)"]),
  ignored("T13", "Tunnel", "Received(client)", "after Ended(client): bytes after a FIN"),
  ignored("T14", "Tunnel", "Received(origin)", "after Ended(origin): bytes after a FIN"),
  row(
    "T15",
    "Tunnel",
    "Ended(client)",
    "origin already ended (the mirror of T5)",
    "Closed",
    ["HalfClose(origin)", "Log", "Close(origin)", "Close(client)"],
    { origin: "graceful", client: "graceful", log: "ok" },
  ),
  row("T16", "Tunnel", "Timeout", "deadline passed but there was activity since", "Tunnel", ["SetDeadline(idle)"]),
  ignored(
    "T17",
    "Tunnel",
    "Connected | ConnectFailed | Authenticated | AuthenticationFailed",
    "no Connect or Authenticate pending: a stale event",
  ),

  row("S1", "AwaitingHead", "shutdown()", "no partial head", "Closed", ["Close(client)"], { client: "graceful" }),
  row("S2", "Forwarding", "shutdown()", "exchange in flight: the client connection closes after it", "Forwarding", []),
  row("S3", "Tunnel", "abort()", "grace period over", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "shutdown",
  }),
  row("S4", "AwaitingHead", "shutdown()", "partial head: the client connection closes after its response", "AwaitingHead", []),
  row("S5", "AwaitingHead", "abort()", "grace period over, no exchange (nothing to log)", "Closed", ["Close(client)"], {
    client: "abrupt",
  }),
  row("S6", "Connecting", "shutdown()", "the client connection closes after this exchange", "Connecting", []),
  row("S7", "Connecting", "abort()", "grace period over", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "shutdown",
  }),
  row("S8", "Forwarding", "abort()", "grace period over", "Closed", ["Log", "Close(origin)", "Close(client)"], {
    origin: "abrupt",
    client: "abrupt",
    log: "shutdown",
  }),
  row("S9", "Tunnel", "shutdown()", "the tunnel runs until it ends or abort()", "Tunnel", []),
  ignored("X1", "Closed", "any event or call", "nothing is ever emitted again"),

  row("UP1", "Connecting", "Connected", "HTTP request, connection to a parent proxy (Connected.upstream)", "Forwarding", [
    "Write(origin head in absolute-form, with Proxy-Authorization)",
  ]),
  row(
    "UP2",
    "Connecting",
    "ConnectFailed",
    "upstream: the parent proxy is unreachable or did not open the tunnel",
    "Closed",
    ["Write(client 502 naming the parent)", "Log", "Close(client)"],
    { client: "graceful", log: "origin-error" },
  ),
  row(
    "UP3",
    "Forwarding",
    "Received(origin)",
    "407 from the parent proxy of a plain HTTP request",
    "Closed",
    ["Write(client 502 naming the parent)", "Log", "Close(origin)", "Close(client)"],
    { origin: "abrupt", client: "graceful", log: "origin-error" },
  ),
  row(
    "UP4",
    "Connecting",
    "ConnectFailed",
    "unrouted: the runtime could not decide how to reach the destination (a route hook failed or timed out)",
    "Closed",
    ["Write(client 503)", "Log", "Close(client)"],
    { client: "graceful", log: "origin-error" },
  ),
  // Proxy authentication (PostmanOptions.auth): a valid head is checked before anything is dialled.
  row("U1", "AwaitingHead", "Received(client)", "CONNECT or absolute-form head complete, authentication required", "Authorizing", [
    "Authenticate",
  ]),
  row("U2", "Authorizing", "Authenticated", "", "Connecting", ["Connect"]),
  row(
    "U3",
    "Authorizing",
    "AuthenticationFailed",
    "missing, invalid or rate-limited; nothing of the request left unread, connection kept",
    "AwaitingHead",
    ["Write(client 407)", "Log"],
    { log: "unauthenticated" },
  ),
  row(
    "U4",
    "Authorizing",
    "AuthenticationFailed",
    "missing, invalid or rate-limited; a request body or early tunnel bytes, or the connection closes after this request",
    "Closed",
    ["Write(client 407)", "Log", "Close(client)"],
    { client: "graceful", log: "unauthenticated" },
  ),
  row("U5", "Authorizing", "AuthenticationFailed", "unavailable", "Closed", ["Write(client 503)", "Log", "Close(client)"], {
    client: "graceful",
    log: "unauthenticated",
  }),
  row("U6", "Authorizing", "Timeout", "verdict deadline (connectTimeout) passed", "Closed", ["Write(client 503)", "Log", "Close(client)"], {
    client: "graceful",
    log: "timeout",
  }),
  row("U7", "Authorizing", "Received(client)", "queued bytes below maxBufferedBytes", "Authorizing", []),
  row("U8", "Authorizing", "Received(client)", "queued bytes reach maxBufferedBytes", "Authorizing", ["PauseReading(client)"]),
  row("U9", "Authorizing", "Ended(client)", "request complete", "Authorizing", []),
  row("U10", "Authorizing", "Ended(client)", "request body incomplete", "Closed", ["Log", "Close(client)"], {
    client: "abrupt",
    log: "aborted",
  }),
  row("U11", "Authorizing", "Errored(client)", "", "Closed", ["Log", "Close(client)"], { client: "abrupt", log: "aborted" }),
  row("U12", "Authorizing", "abort()", "grace period over", "Closed", ["Log", "Close(client)"], { client: "abrupt", log: "shutdown" }),
  ignored("U13", "AwaitingHead", "Authenticated", "no Authenticate pending (stale verdict)"),
  ignored("U14", "AwaitingHead", "AuthenticationFailed", "no Authenticate pending (stale verdict)"),
  ignored(
    "U15",
    "Authorizing",
    "Received(origin) | Ended(origin) | Errored(origin) | Connected | ConnectFailed | Blocked(client) | Blocked(origin) | Drained(client) | Drained(origin)",
    "no origin socket: a stale event, nothing to pause",
  ),
  row("U16", "Authorizing", "Timeout", "verdict deadline not reached yet (an earlier one fired)", "Authorizing", ["SetDeadline"]),
  row("U17", "Authorizing", "shutdown()", "the client connection closes after this request", "Authorizing", []),
]
