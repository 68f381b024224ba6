/**
 * Postman: the engine of one proxied client connection (the "Postman pair" of the C++ original:
 * a client side and an origin side, bytes flowing upstream and downstream).
 *
 * Theory of operation
 * - Pure and synchronous: `handle(event, now)` mutates this object and returns the actions the runtime
 *   must carry out, in order. No IO, no clock (time arrives as `now`, in ms), no randomness. The same
 *   events with the same `now` values always give the same actions.
 * - All per-connection state logic lives here; HTTP syntax lives in ./http, error texts in ./responses,
 *   the shapes of the states in ./state. The transition table (./transitions.ts, docs/design.md §5) is
 *   the specification this code is tested against, row by row.
 * - The state is a tagged union (./state.ts): each variant carries what that state owns, so there are no
 *   sentinels and no flags that must agree with each other; what outlives every state (the client
 *   socket's queued bytes, its half-close, its pause reasons, a shutdown) stays on the Postman.
 * - States (see docs/design.md for the transition table and diagram):
 *     AwaitingHead  reading a request head from the client (first request or kept-alive connection)
 *     Authorizing   (proxy authentication on) an `Authenticate` is out; client bytes are queued (bounded)
 *     Connecting    a `Connect` is out; client bytes are queued (bounded)
 *     Forwarding    one HTTP exchange: request body upstream, response head and body downstream
 *     Tunnel        opaque bytes both ways (after CONNECT's 200, or after 101 Switching Protocols)
 *     Closed        the client socket was released; nothing is ever emitted again
 * - One exchange at a time. Pipelined requests wait in the backlog until the current response is
 *   complete, so responses are in request order by construction.
 * - Socket ownership: the client socket exists from construction to `Close(client)`. Each `Connect`
 *   creates one origin socket, answered by `ConnectFailed` (the socket is gone, no Close owed) or
 *   `Connected`; any origin socket that exists is released by exactly one `Close(origin)`.
 * - Deadlines: every live state has one (`SetDeadline`). Activity deadlines (idle) are lazy: a chunk
 *   does not move the timer; when it fires early the core re-arms it from the last activity.
 * - Parent proxies are the runtime's business: `Connect.tunnel` tells it what the socket is for, and a
 *   `Connected { upstream }` only changes how the request head is written (absolute-form, the parent's
 *   Proxy-Authorization) and turns the parent's 407 into a 502 (docs/design.md §6.7).
 * - Backpressure: `Blocked(side)` pauses reading from the other side until `Drained(side)`; the core's
 *   own buffers (queued client bytes) are bounded by `limits.maxBufferedBytes`, beyond which the client
 *   is paused too. So memory per connection is bounded whatever the peers do.
 */
import type { AccessRecord, Action, Outcome } from "./actions.ts"
import type { AuthFailure, ConnectFailure, Event, Side, UpstreamHop } from "./events.ts"
import { type FeedResult, makeFramer } from "./http/body.ts"
import { HeadReader } from "./http/head-reader.ts"
import { parseRequestHead, requestFraming, requestLineParts } from "./http/request-head.ts"
import { RequestLineScan } from "./http/request-line-scan.ts"
import { requestAuthenticatesConnection, responseAuthenticatesConnection } from "./http/connection-auth.ts"
import { cannotHaveBody, MAX_INTERIM_RESPONSES, parseResponseHead, responseFraming } from "./http/response-head.ts"
import { fieldValues, hasToken, hostPort, receivedVia, serializeRequestHead, serializeResponseHead, wantsClose } from "./http/serialize.ts"
import type { RequestHead, ResponseHead } from "./http/types.ts"
import type { Limits } from "./limits.ts"
import { authenticationRequired, connectEstablished, errorResponse } from "./responses.ts"
import type { Exchange, Ledger, Origin, PostmanState, Relay, Response, State } from "./state.ts"

export type { PostmanState } from "./state.ts"

export interface PostmanOptions {
  readonly limits: Limits
  /** Pseudonym for the Via header ("1.1 <via>") and loop detection. */
  readonly via: string
  /** Every request and CONNECT must carry valid proxy credentials (`Authenticate` before `Connect`). */
  readonly auth?: boolean
}

/** `out` between calls: frozen, so an action emitted outside a call would throw instead of being lost. */
const noActions: Action[] = Object.freeze([]) as unknown as Action[]
/**
 * `out` inside a call until its first action: the list is made by `emit`, sized to what it holds, so a
 * call with no action allocates none and one with a single action a list of one (an empty `[]` grown
 * by a push reserves room for 17). Frozen and distinct from `noActions`, which still means "outside a call".
 */
const nothingYet: Action[] = Object.freeze([]) as unknown as Action[]

/** Why reading from a side is paused; reading resumes when no reason is left. */
const PEER_BLOCKED = 1 // the other side's write buffer is full
const BACKLOG_FULL = 2 // the core holds maxBufferedBytes of this side's bytes it cannot pass on yet

const statusForConnectFailure: Readonly<Record<ConnectFailure, number>> = {
  unresolved: 502,
  refused: 502,
  unreachable: 502,
  timeout: 504,
  error: 502,
  denied: 403,
  upstream: 502,
  unrouted: 503,
}

const describeConnectFailure = (reason: ConnectFailure, host: string, port: number, message: string): string => {
  switch (reason) {
    case "upstream":
      // The runtime's text names the parent proxy and its answer ("upstream proxy 10.0.0.1:3128 answered 407 ...").
      return message
    case "unrouted":
      // The runtime's text says what failed ("the route hook did not answer within 5000 ms").
      return message === "" ? `no route to ${hostPort(host, port)}` : message
    case "unresolved":
      return `could not resolve host ${host}`
    case "refused":
      return `connection refused by ${hostPort(host, port)}`
    case "unreachable":
      return `${hostPort(host, port)} is unreachable`
    case "timeout":
      return `timed out connecting to ${hostPort(host, port)}`
    case "error":
      return `could not connect to ${hostPort(host, port)}`
    case "denied":
      return `destination ${hostPort(host, port)} denied`
  }
}

/** RFC 9110 §9.2.2: a request with one of these methods may be sent again without changing its effect. */
const idempotentMethods: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])

const chunkLimits = (limits: Limits) => ({ maxChunkLine: 4096, maxTrailerBytes: limits.maxHeadBytes })

type AwaitingHead = Extract<State, { _tag: "AwaitingHead" }>
type Authorizing = Extract<State, { _tag: "Authorizing" }>
type Connecting = Extract<State, { _tag: "Connecting" }>
type Forwarding = Extract<State, { _tag: "Forwarding" }>
type Tunnel = Extract<State, { _tag: "Tunnel" }>
type Body = Extract<Response, { _tag: "Body" }>
type RequestLine = { readonly method: string; readonly target: string }

/** What `Postman.exchange` tells of the exchange in flight. */
export interface ExchangeInfo {
  readonly method: string
  /** The request target as the client wrote it. */
  readonly target: string
  /** Who the runtime's `Authenticated` named (proxy authentication on); undefined before it or without it. */
  readonly user: string | undefined
}

const closedState: State = Object.freeze({ _tag: "Closed" })
const empty = new Uint8Array(0)

/** The origin socket of a state that has one (dialling or connected). */
const originOf = (state: State): Origin | undefined =>
  state._tag === "Connecting" || state._tag === "Forwarding" || state._tag === "Tunnel" ? state.origin : undefined

export class Postman {
  private readonly limits: Limits
  private readonly via: string
  private readonly auth: boolean
  private current: State
  /** Actions of the `handle` call in progress; handed over (not kept) when it returns. */
  private out: Action[] = noActions

  // What lives as long as the client socket, whatever the state.
  /** The deadline asked for with the last SetDeadline, or -1 when none is armed. */
  private deadlineAt = -1
  /** `now` of the last `Received` from either side, or of `Connected` (activity deadlines count from it). */
  private lastActivity = 0
  /** Client bytes that arrived before they can be used: while connecting or authorizing, and pipelined requests. */
  private backlog: Uint8Array[] = []
  private backlogBytes = 0
  private clientEnded = false
  /** Why reading from the client is paused (PEER_BLOCKED, BACKLOG_FULL bits); 0 when reading. */
  private clientPause = 0
  /** `shutdown()` was called: the exchange in flight is the last one. */
  private draining = false

  constructor(options: PostmanOptions) {
    this.limits = options.limits
    this.via = options.via
    this.auth = options.auth === true
    this.current = this.awaiting(0, true)
  }

  get state(): PostmanState {
    return this.current._tag
  }

  get closed(): boolean {
    return this.current._tag === "Closed"
  }

  /**
   * The exchange whose head was accepted and whose origin is being asked for or used (Authorizing,
   * Connecting, Forwarding): its method, target and authenticated user, for a runtime that decides per
   * request how to reach the origin (a route hook). Undefined in the other states. A read, never a change.
   */
  get exchange(): ExchangeInfo | undefined {
    const state = this.current
    return state._tag === "Authorizing" || state._tag === "Connecting" || state._tag === "Forwarding" ? state.exchange : undefined
  }

  /** The deadline currently asked for, or -1 when none (only after Closed). */
  get deadline(): number {
    return this.deadlineAt
  }

  /** Bytes held by the core for this connection (bounded: see invariants in docs/design.md). */
  get bufferedBytes(): number {
    const state = this.current
    switch (state._tag) {
      case "AwaitingHead":
        return this.backlogBytes + state.reader.buffered
      case "Authorizing":
      case "Connecting":
        return this.backlogBytes + (state.exchange.request?.body.held ?? 0)
      case "Forwarding": {
        const response = state.response
        return this.backlogBytes + state.request.body.held + (response._tag === "Heads" ? response.reader.buffered : response.body.held)
      }
      case "Tunnel":
      case "Closed":
        return this.backlogBytes
    }
  }

  /** Call once right after accept; returns the first deadline (head timeout). */
  start(now: number): ReadonlyArray<Action> {
    this.out = nothingYet
    this.current = this.awaiting(now, true)
    this.lastActivity = now
    this.ensureDeadline()
    return this.handOver()
  }

  /** Feed one event; returns the actions to carry out, in order. Events after `closed` are ignored. */
  handle(event: Event, now: number): ReadonlyArray<Action> {
    this.out = nothingYet
    const state = this.current
    const tag = state._tag
    if (tag === "Closed") return this.handOver()
    // The hot path (rows T1, T2, T13, T14): a chunk through a tunnel, with the state read once.
    if (tag === "Tunnel" && event._tag === "Received") {
      this.relay(state, event.side, event.bytes, now)
      return this.handOver()
    }
    switch (event._tag) {
      case "Received":
        // Nothing can arrive after a FIN: bytes "after" Ended are a runtime bug, and relaying them
        // would write to a side we already half-closed.
        if (event.side === "client") {
          if (this.clientEnded) break
          this.lastActivity = now
          this.fromClient(event.bytes, now)
        } else if (state._tag === "Forwarding") {
          // (A tunnel's bytes went to relay() above.)
          if (state.origin.ended) break
          this.lastActivity = now
          this.fromOrigin(state, event.bytes, now)
        } else {
          this.lastActivity = now // a stale event: no origin is connected
        }
        break
      case "Ended":
        if (event.side === "client") this.clientEnd(now)
        else if (state._tag === "Forwarding" || state._tag === "Tunnel") this.originEnd(state, now)
        break
      case "Errored":
        if (event.side === "client") this.finish("aborted", `client: ${event.message}`, now, false)
        else if (originOf(state) !== undefined) this.originFailed(event.message, now)
        break
      case "Connected":
        if (state._tag === "Connecting") {
          // The exchange's idle time counts from when its origin became usable, not from the request's
          // last byte: a slow connect must not leave the exchange due to time out the moment it connects.
          this.lastActivity = now
          this.connected(state, event.reused === true, event.upstream, now)
        }
        break
      case "ConnectFailed":
        if (state._tag === "Connecting") this.connectFailed(state, event.reason, event.message, now)
        break
      case "Blocked":
        if (this.isOpen(event.side)) this.pause(other(event.side), PEER_BLOCKED)
        break
      case "Drained":
        if (this.isOpen(event.side)) this.resume(other(event.side), PEER_BLOCKED)
        break
      case "Timeout":
        this.deadlineAt = -1 // the runtime's timer fired and is spent
        this.timeout(now)
        break
      case "Authenticated":
        if (state._tag === "Authorizing") this.authenticated(state, event.user, now)
        break
      case "AuthenticationFailed":
        if (state._tag === "Authorizing") this.authenticationFailed(state, event.reason, event.message, now)
        break
    }
    this.ensureDeadline()
    return this.handOver()
  }

  /** Graceful stop: an idle connection closes at once; an exchange in flight finishes, then closes. */
  shutdown(now: number): ReadonlyArray<Action> {
    this.out = nothingYet
    const state = this.current
    if (state._tag === "Closed") return this.handOver()
    this.draining = true
    if (state._tag === "Authorizing" || state._tag === "Connecting" || state._tag === "Forwarding") state.exchange.closeAfter = true
    if (state._tag === "AwaitingHead" && state.head === undefined && this.backlogBytes === 0) this.closeAll(true)
    this.ensureDeadline()
    void now
    return this.handOver()
  }

  /** Stop now (grace period over): release every socket, log what was in flight. */
  abort(now: number, detail: string): ReadonlyArray<Action> {
    this.out = nothingYet
    if (this.current._tag === "Closed") return this.handOver()
    this.finish("shutdown", detail, now, false)
    return this.handOver()
  }

  /** Bytes through a tunnel: relayed as they are, counted, and the idle deadline kept (lazily) as ensureDeadline does. */
  private relay(state: Tunnel, from: Side, bytes: Uint8Array, now: number): void {
    if (from === "client") {
      if (this.clientEnded) return
      state.relay.bytesFromClient += bytes.length
      this.emit({ _tag: "Write", side: "origin", bytes })
    } else {
      if (state.origin.ended) return
      state.relay.bytesFromOrigin += bytes.length
      this.emit({ _tag: "Write", side: "client", bytes })
    }
    this.lastActivity = now
    const wanted = now + this.limits.idleTimeout
    if (this.deadlineAt < 0 || wanted < this.deadlineAt) {
      this.deadlineAt = wanted
      this.emit({ _tag: "SetDeadline", at: wanted })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Client bytes

  private fromClient(bytes: Uint8Array, now: number): void {
    const state = this.current
    switch (state._tag) {
      case "AwaitingHead":
        this.readRequestHead(state, bytes, now)
        return
      case "Connecting":
      case "Authorizing":
        // Counted when used: as request body, tunnel bytes, or the head of a pipelined request.
        this.queue(bytes)
        return
      case "Forwarding":
        this.forwardRequestBody(state, bytes, now)
        return
      case "Tunnel": // never here: handle() gives a tunnel's bytes to relay()
      case "Closed": // never here: handle() reads nothing after Closed
        return
    }
  }

  private awaiting(now: number, firstRequest: boolean): AwaitingHead {
    return { _tag: "AwaitingHead", reader: new HeadReader(this.limits.maxHeadBytes), head: undefined, idleSince: now, firstRequest }
  }

  private readRequestHead(state: AwaitingHead, bytes: Uint8Array, now: number): void {
    const head =
      state.head ??
      (state.head = {
        startedAt: now,
        seen: 0,
        line: new RequestLineScan(this.limits.maxRequestLine, this.limits.maxHeadBytes),
      })
    head.seen += bytes.length
    // Refuse an endless request line early, without waiting for the whole head limit; the scan decides
    // on the line's bytes alone, so one chunk or many give the same answer.
    // (and a line that cannot become a request line at its first impossible byte: a TLS ClientHello...)
    const early = head.line.push(bytes)
    if (early !== undefined)
      return this.reject(early.status, early.reason, now, head.startedAt, head.line.seen, this.partialRequestLine(state))
    const result = state.reader.push(bytes)
    switch (result._tag) {
      case "NeedMore":
        return
      case "TooLarge":
        // Logged as the head bytes read up to the first one over the limit: however the bytes were split
        // (and whatever arrived after that byte in the same chunk), the count is the same (§7.2).
        return this.reject(
          431,
          `the request head is larger than ${this.limits.maxHeadBytes} bytes`,
          now,
          head.startedAt,
          this.limits.maxHeadBytes + 1,
          this.partialRequestLine(state),
        )
      case "Head": {
        this.startExchange(result.head, head.startedAt, now)
        if (result.rest.length > 0 && this.current._tag !== "Closed") this.fromClient(result.rest, now)
        return
      }
    }
  }

  /** A complete request head arrived: validate it and start a tunnel or an HTTP exchange. */
  private startExchange(headBytes: Uint8Array, startedAt: number, now: number): void {
    const parsed = parseRequestHead(headBytes, this.limits)
    if (!parsed.ok) {
      const { status, reason, method, target } = parsed.rejection
      return this.reject(
        status,
        reason,
        now,
        startedAt,
        headBytes.length,
        method === undefined ? undefined : { method, target: target ?? "-" },
      )
    }
    const head = parsed.value
    const line = { method: head.method, target: head.rawTarget }
    const framing = requestFraming(head)
    if (!framing.ok) return this.reject(framing.rejection.status, framing.rejection.reason, now, startedAt, headBytes.length, line)
    if (this.isLoop(head)) {
      return this.reject(508, "the request already passed through this proxy (Via)", now, startedAt, headBytes.length, line)
    }
    const target = head.target
    const tunnel = target.form === "authority"
    const exchange: Exchange = {
      method: head.method,
      target: head.rawTarget,
      host: target.host,
      port: target.port,
      startedAt,
      request: tunnel
        ? undefined
        : {
            head,
            body: makeFramer(framing.value, chunkLimits(this.limits)),
            replayable: framing.value.kind === "none" && idempotentMethods.has(head.method),
            upgrade: hasToken(head.headers, "connection", "upgrade") && fieldValues(head.headers, "upgrade").length > 0,
          },
      closeAfter: this.draining || wantsClose(head.version, head.headers),
      retried: false,
      receivedVia: tunnel ? receivedVia(head.headers) : undefined,
      bytesFromClient: headBytes.length,
      bytesFromOrigin: 0,
      user: undefined,
    }
    if (this.auth) return this.authorize(exchange, head, now)
    // Each exchange dials its own origin connection: the runtime may hand out a pooled one (reusable Close).
    this.dial(exchange, now)
  }

  /** Ask for a new origin connection for `exchange` and wait for it in Connecting. */
  private dial(exchange: Exchange, now: number): void {
    this.current = { _tag: "Connecting", exchange, origin: { reused: false, ended: false, pause: 0 }, since: now }
    this.emit(
      exchange.request !== undefined
        ? exchange.retried
          ? { _tag: "Connect", host: exchange.host, port: exchange.port, fresh: true }
          : { _tag: "Connect", host: exchange.host, port: exchange.port }
        : exchange.receivedVia === undefined
          ? { _tag: "Connect", host: exchange.host, port: exchange.port, tunnel: true }
          : { _tag: "Connect", host: exchange.host, port: exchange.port, tunnel: true, receivedVia: exchange.receivedVia },
    )
  }

  /** `Via` already names us: forwarding again would loop forever (e.g. a request to our own address). */
  private isLoop(head: RequestHead): boolean {
    for (const value of fieldValues(head.headers, "via")) {
      for (const hop of value.split(",")) {
        const words = hop.trim().split(/[ \t]+/)
        if (words[1] === this.via) return true
      }
    }
    return false
  }

  // ---------------------------------------------------------------------------------------------
  // Proxy authentication (RFC 9110 §11.7): the runtime checks the credentials, the core only asks.

  /** Ask the runtime to check the request's `Proxy-Authorization` and wait for its verdict. */
  private authorize(exchange: Exchange, head: RequestHead, now: number): void {
    this.current = { _tag: "Authorizing", exchange, since: now }
    const values = fieldValues(head.headers, "proxy-authorization")
    this.emit({ _tag: "Authenticate", credentials: values.length === 0 ? undefined : values.join(", ") })
  }

  private authenticated(state: Authorizing, user: string, now: number): void {
    state.exchange.user = user
    this.dial(state.exchange, now)
  }

  /**
   * 407 with the Basic challenge, or 503 when the credentials could not be checked. After a 407 the
   * connection stays open for the client's retry when nothing of this request is left to read: no
   * request body, and no bytes a CONNECT client sent ahead for its tunnel (they would be read as a head).
   */
  private authenticationFailed(state: Authorizing, reason: AuthFailure, message: string, now: number): void {
    const exchange = state.exchange
    if (reason === "unavailable") return this.failExchange(503, message, "unauthenticated", now)
    const nothingLeft = exchange.request === undefined ? this.backlogBytes === 0 : exchange.request.body.done
    const keep = nothingLeft && !exchange.closeAfter && !this.clientEnded
    this.emit({ _tag: "Write", side: "client", bytes: authenticationRequired(message, this.via, !keep) })
    this.log(exchangeKind(exchange), exchange, 407, "unauthenticated", message, now)
    if (!keep) return this.closeClient(true)
    this.nextRequest(now)
  }

  private queue(bytes: Uint8Array): void {
    this.backlog.push(bytes)
    this.backlogBytes += bytes.length
    if (this.backlogBytes >= this.limits.maxBufferedBytes) this.pause("client", BACKLOG_FULL)
  }

  private takeBacklog(): Uint8Array[] {
    const queued = this.backlog
    this.backlog = []
    this.backlogBytes = 0
    this.resume("client", BACKLOG_FULL)
    return queued
  }

  private forwardRequestBody(state: Forwarding, bytes: Uint8Array, now: number): void {
    const body = state.request.body
    if (body.done) {
      // The request is complete: these bytes belong to the next (pipelined) request.
      this.queue(bytes)
      return
    }
    const fed = body.feed(bytes)
    state.exchange.bytesFromClient += fed.consumed
    this.forwardBody("origin", bytes, fed)
    if (fed.error !== undefined) {
      return this.failExchange(400, `malformed request body: ${fed.error}`, "client-error", now)
    }
    if (fed.consumed < bytes.length) this.queue(bytes.subarray(fed.consumed))
  }

  // ---------------------------------------------------------------------------------------------
  // Origin connection

  private connected(state: Connecting, reused: boolean, upstream: UpstreamHop | undefined, now: number): void {
    const { exchange, origin } = state
    origin.reused = reused
    const queued = this.takeBacklog()
    const request = exchange.request
    if (request === undefined) {
      // The tunnel keeps what it logs, and nothing of the CONNECT head.
      const relay: Relay = {
        kind: "tunnel",
        method: exchange.method,
        target: exchange.target,
        startedAt: exchange.startedAt,
        status: 200,
        bytesFromClient: exchange.bytesFromClient,
        bytesFromOrigin: exchange.bytesFromOrigin,
        user: exchange.user,
      }
      this.current = { _tag: "Tunnel", relay, origin }
      this.emit({ _tag: "Write", side: "client", bytes: connectEstablished })
      for (const bytes of queued) {
        relay.bytesFromClient += bytes.length
        this.emit({ _tag: "Write", side: "origin", bytes })
      }
      // A client that half-closed right after its CONNECT still gets its bytes delivered, then the FIN.
      if (this.clientEnded) this.emit({ _tag: "HalfClose", side: "origin" })
      return
    }
    const forwarding: Forwarding = {
      _tag: "Forwarding",
      exchange,
      request,
      origin,
      upstream,
      response: { _tag: "Heads", reader: new HeadReader(this.limits.maxHeadBytes), interim: 0 },
    }
    this.current = forwarding
    this.emit({
      _tag: "Write",
      side: "origin",
      bytes: serializeRequestHead(request.head, { via: this.via, keepUpgrade: request.upgrade, upstream }),
    })
    for (const bytes of queued) {
      if (this.current !== forwarding) break
      this.forwardRequestBody(forwarding, bytes, now)
    }
  }

  private connectFailed(state: Connecting, reason: ConnectFailure, message: string, now: number): void {
    const exchange = state.exchange
    this.failExchange(
      statusForConnectFailure[reason],
      // A denial's message is the policy's own sentence (the rule, and the flag that would allow it).
      reason === "denied" && message !== "" ? message : describeConnectFailure(reason, exchange.host, exchange.port, message),
      reason === "timeout" ? "timeout" : reason === "denied" ? "denied" : "origin-error",
      now,
      true, // no socket exists: no Close(origin) is owed
    )
  }

  // ---------------------------------------------------------------------------------------------
  // Origin bytes

  private fromOrigin(state: Forwarding, bytes: Uint8Array, now: number): void {
    // In Forwarding the bytes are counted as they are used (a head, a body): bytes after the point where
    // the exchange ended or failed are not, so the log is the same however the bytes were split (§7.2).
    const response = state.response
    if (response._tag === "Heads") this.readResponseHead(state, response.reader, bytes, now)
    else this.forwardResponseBody(state, response, bytes, now)
  }

  private readResponseHead(state: Forwarding, reader: HeadReader, bytes: Uint8Array, now: number): void {
    const retained = reader.buffered
    const result = reader.push(bytes)
    switch (result._tag) {
      case "NeedMore":
        state.exchange.bytesFromOrigin += bytes.length
        return
      case "TooLarge":
        // Counted up to the first byte over the limit, like a request head's 431 (A3).
        state.exchange.bytesFromOrigin += this.limits.maxHeadBytes + 1 - retained
        return this.failExchange(502, "the origin's response head is too large", "origin-error", now)
      case "Head":
        state.exchange.bytesFromOrigin += bytes.length - result.rest.length
        return this.responseHead(state, result.head, result.rest, now)
    }
  }

  private responseHead(state: Forwarding, headBytes: Uint8Array, rest: Uint8Array, now: number): void {
    const { exchange, request } = state
    const parsed = parseResponseHead(headBytes, this.limits)
    if (!parsed.ok) return this.failExchange(502, `malformed response from the origin: ${parsed.reason}`, "origin-error", now)
    const head = parsed.value
    if (head.status < 200) return this.interimResponse(state, head, rest, now)
    // A parent proxy that wants credentials we do not have (or refuses ours): the client cannot answer
    // that challenge (its Proxy-Authorization is for us and never reaches the parent), so it is our 502.
    if (head.status === 407 && state.upstream !== undefined) {
      const detail = `upstream proxy ${state.upstream.proxy} answered 407 ${head.reason}`.trimEnd()
      return this.failExchange(502, detail, "origin-error", now)
    }

    const framing = responseFraming(head, exchange.method)
    if (!framing.ok) return this.failExchange(502, `malformed response from the origin: ${framing.reason}`, "origin-error", now)
    if (framing.value.kind === "chunked" && request.head.version === "1.0") {
      // RFC 9112 §6.1: a server must not send Transfer-Encoding to an HTTP/1.0 request; its client cannot decode it.
      return this.failExchange(502, "the origin answered an HTTP/1.0 request with a chunked body", "origin-error", now)
    }
    const untilClose = framing.value.kind === "until-close"
    // Close the client after this response when its framing ends with the connection, or when the
    // request body is still coming (an early response): the rest of that body must not be read as a request.
    if (untilClose || !request.body.done || this.clientEnded) exchange.closeAfter = true
    const body = makeFramer(framing.value, chunkLimits(this.limits))
    const response: Body = {
      _tag: "Body",
      body,
      status: head.status,
      // After a response that cannot have a body, an origin that thinks otherwise sends one, maybe a
      // moment later: on a reused connection those bytes would be the next request's response (§6.4).
      originReusable: !untilClose && !wantsClose(head.version, head.headers) && !cannotHaveBody(head.status, exchange.method),
      originPinned: requestAuthenticatesConnection(request.head.headers) || responseAuthenticatesConnection(head.headers),
    }
    state.response = response
    this.emit({
      _tag: "Write",
      side: "client",
      bytes: serializeResponseHead(head, { via: this.via, close: exchange.closeAfter, keepUpgrade: false }),
    })
    if (body.done) return this.exchangeDone(state, response, rest, now)
    if (rest.length > 0) this.forwardResponseBody(state, response, rest, now)
  }

  /** 1xx: forward it (not to HTTP/1.0 clients, RFC 9110 §15.2), then wait for the next head; 101 switches to a tunnel. */
  private interimResponse(state: Forwarding, head: ResponseHead, rest: Uint8Array, now: number): void {
    const { exchange, request, response } = state
    if (response._tag !== "Heads") return
    if (++response.interim > MAX_INTERIM_RESPONSES) {
      // Only interim heads went to the client: a final response (this 502) may still follow them.
      return this.failExchange(502, `the origin sent more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`, "origin-error", now)
    }
    if (head.status === 101) {
      if (!request.upgrade) {
        return this.failExchange(502, "the origin switched protocols without being asked to", "origin-error", now)
      }
      this.emit({
        _tag: "Write",
        side: "client",
        bytes: serializeResponseHead(head, { via: this.via, close: false, keepUpgrade: true }),
      })
      const relay: Relay = {
        kind: "upgrade",
        method: exchange.method,
        target: exchange.target,
        startedAt: exchange.startedAt,
        status: 101,
        bytesFromClient: exchange.bytesFromClient,
        bytesFromOrigin: exchange.bytesFromOrigin,
        user: exchange.user,
      }
      this.current = { _tag: "Tunnel", relay, origin: state.origin }
      // Bytes the client sent after its request belong to the new protocol: pass them on now.
      for (const bytes of this.takeBacklog()) {
        relay.bytesFromClient += bytes.length
        this.emit({ _tag: "Write", side: "origin", bytes })
      }
      if (rest.length > 0) {
        relay.bytesFromOrigin += rest.length
        this.emit({ _tag: "Write", side: "client", bytes: rest })
      }
      if (this.clientEnded) this.emit({ _tag: "HalfClose", side: "origin" })
      return
    }
    if (request.head.version === "1.1") {
      // An interim head does not begin the response: a final one may still follow it, so a later origin
      // failure is still answered with its 502/504 (docs/design.md §5, rows F12, F14, F15).
      this.emit({
        _tag: "Write",
        side: "client",
        bytes: serializeResponseHead(head, { via: this.via, close: false, keepUpgrade: false }),
      })
    }
    if (rest.length > 0) this.readResponseHead(state, response.reader, rest, now)
  }

  private forwardResponseBody(state: Forwarding, response: Body, bytes: Uint8Array, now: number): void {
    const fed = response.body.feed(bytes)
    state.exchange.bytesFromOrigin += fed.consumed
    this.forwardBody("client", bytes, fed)
    if (fed.error !== undefined) {
      return this.finish("origin-error", `malformed response body from the origin: ${fed.error}`, now, false)
    }
    if (fed.done) {
      this.exchangeDone(state, response, bytes.subarray(fed.consumed), now)
    }
  }

  /** Write what a body framer says to forward of `bytes`: a prefix as received, or its rewritten pieces. */
  private forwardBody(side: Side, bytes: Uint8Array, fed: FeedResult): void {
    if (fed.pieces !== undefined) {
      for (const piece of fed.pieces) this.emit({ _tag: "Write", side, bytes: piece })
    } else if (fed.forward > 0) {
      this.emit({ _tag: "Write", side, bytes: fed.forward === bytes.length ? bytes : bytes.subarray(0, fed.forward) })
    }
  }

  /** The final response is complete. Keep the client connection for the next request, or close it. */
  private exchangeDone(state: Forwarding, response: Body, extra: Uint8Array, now: number): void {
    const exchange = state.exchange
    // Bytes after a complete response are not ours to interpret: that origin connection is spoiled.
    const clean = response.originReusable && extra.length === 0 && state.request.body.done && !state.origin.ended
    this.log("http", exchange, response.status, "ok", undefined, now)
    if (exchange.closeAfter) this.clientPause = 0 // released right below: no ResumeReading(client) first
    if (!clean) this.closeOrigin(false)
    // A connection authenticated by NTLM or Negotiate is this client's: kept for its next request, never
    // pooled for another; pointless when the client connection closes now.
    else if (response.originPinned) this.closeOrigin(false, true, !exchange.closeAfter)
    else this.closeOrigin(true)
    if (exchange.closeAfter) {
      this.closeClient(true)
      return
    }
    this.nextRequest(now)
  }

  /** Back to AwaitingHead for the next request on this connection: the queued (pipelined) bytes first. */
  private nextRequest(now: number): void {
    const awaiting = this.awaiting(now, false)
    this.current = awaiting
    for (const bytes of this.takeBacklog()) {
      if (this.current !== awaiting) {
        this.fromClient(bytes, now)
        continue
      }
      this.readRequestHead(awaiting, bytes, now)
    }
    if (this.current === awaiting && this.clientEnded && awaiting.head === undefined) this.closeClient(true)
  }

  // ---------------------------------------------------------------------------------------------
  // Ends, errors, timeouts

  private clientEnd(now: number): void {
    if (this.clientEnded) return
    this.clientEnded = true
    const state = this.current
    switch (state._tag) {
      case "AwaitingHead":
        // Between requests that is a clean close; in the middle of a head the client gave up.
        if (state.head !== undefined) this.finish("aborted", "the client closed in the middle of a request head", now, true)
        else this.closeClient(true)
        return
      case "Connecting":
      case "Authorizing":
      case "Forwarding": {
        const exchange = state.exchange
        const requestDone = exchange.request === undefined || exchange.request.body.done
        if (!requestDone) this.finish("aborted", "the client closed before its request body was complete", now, false)
        // Otherwise the client only half-closed: it still gets its response, then the connection closes.
        else exchange.closeAfter = true
        return
      }
      case "Tunnel":
        this.emit({ _tag: "HalfClose", side: "origin" })
        if (state.origin.ended) this.finish("ok", undefined, now, true)
        return
      case "Closed":
        return
    }
  }

  private originEnd(state: Forwarding | Tunnel, now: number): void {
    if (state.origin.ended) return
    state.origin.ended = true
    if (state._tag === "Tunnel") {
      this.emit({ _tag: "HalfClose", side: "client" })
      if (this.clientEnded) this.finish("ok", undefined, now, true)
      return
    }
    const response = state.response
    if (response._tag === "Heads") {
      if (this.retryOnFreshConnection(state, now)) return
      return this.failExchange(502, "the origin closed the connection without a response", "origin-error", now)
    }
    if (response.body.endOfStream()) {
      // A close-delimited body ends here, and so does the client connection (closeAfter is set).
      this.exchangeDone(state, response, empty, now)
      return
    }
    this.finish("origin-error", "the origin closed the connection in the middle of the response body", now, false)
  }

  /** The origin socket failed: nothing more is read from or written to it; its Close(origin) comes below (§7.3). */
  private originFailed(message: string, now: number): void {
    const state = this.current
    if (state._tag === "Forwarding" && this.retryOnFreshConnection(state, now)) return
    if (state._tag === "Forwarding" || state._tag === "Connecting") {
      return this.failExchange(502, `the origin connection failed: ${message}`, "origin-error", now)
    }
    this.finish("aborted", `origin: ${message}`, now, false)
  }

  /**
   * A kept-alive origin connection from the pool can be closed by the origin at the very moment we send
   * a request on it. If nothing came back yet and the request can safely be sent again (idempotent, no
   * body), dial again once instead of answering 502 (RFC 9112 §9.3.1). The retry's `Connect` is `fresh`:
   * another pooled connection to the same origin is likely just as dead, and there is no third try.
   */
  private retryOnFreshConnection(state: Forwarding, now: number): boolean {
    const exchange = state.exchange
    if (
      !state.origin.reused ||
      exchange.retried ||
      !state.request.replayable ||
      exchange.bytesFromOrigin > 0 ||
      state.response._tag !== "Heads"
    ) {
      return false
    }
    exchange.retried = true
    this.closeOrigin(false, false)
    this.dial(exchange, now)
    return true
  }

  private timeout(now: number): void {
    const state = this.current
    switch (state._tag) {
      case "AwaitingHead": {
        const head = state.head
        if (head !== undefined) {
          if (now >= head.startedAt + this.limits.headTimeout) {
            this.reject(408, "the request head did not arrive in time", now, head.startedAt, head.seen, this.partialRequestLine(state))
          }
        } else if (now >= this.idleDeadline(state)) {
          // An idle connection between requests: close it quietly, there is nobody to answer.
          this.closeClient(true)
        }
        return
      }
      case "Connecting":
        if (now >= state.since + this.limits.connectTimeout) {
          this.failExchange(504, `timed out connecting to ${state.exchange.host}:${state.exchange.port}`, "timeout", now)
        }
        return
      case "Forwarding":
        if (now >= this.lastActivity + this.limits.idleTimeout) {
          this.failExchange(504, "the origin did not respond in time", "timeout", now)
        }
        return
      case "Authorizing":
        if (now >= state.since + this.limits.connectTimeout) {
          this.failExchange(503, "the proxy credentials could not be checked in time", "timeout", now)
        }
        return
      case "Tunnel":
        if (now >= this.lastActivity + this.limits.idleTimeout) {
          this.finish("timeout", "the tunnel was idle for too long", now, false)
        }
        return
      case "Closed":
        return
    }
  }

  private idleDeadline(state: AwaitingHead): number {
    return state.idleSince + (state.firstRequest ? this.limits.headTimeout : this.limits.keepAliveTimeout)
  }

  /** The deadline this state needs; -1 when closed. */
  private wantedDeadline(): number {
    const state = this.current
    switch (state._tag) {
      case "AwaitingHead":
        return state.head !== undefined ? state.head.startedAt + this.limits.headTimeout : this.idleDeadline(state)
      case "Connecting":
      case "Authorizing":
        return state.since + this.limits.connectTimeout
      case "Forwarding":
      case "Tunnel":
        return this.lastActivity + this.limits.idleTimeout
      case "Closed":
        return -1
    }
  }

  /**
   * Arm the deadline the state needs. An armed deadline that is earlier than needed is kept (it fires,
   * and `timeout` re-arms it from the last activity), so a busy tunnel does not touch the timer per chunk.
   */
  private ensureDeadline(): void {
    if (this.current._tag === "Closed") return
    const wanted = this.wantedDeadline()
    if (this.deadlineAt < 0 || wanted < this.deadlineAt) {
      this.deadlineAt = wanted
      this.emit({ _tag: "SetDeadline", at: wanted })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Endings

  /** A request head was refused: answer with its status, close, and log what its line asked for, if known. */
  private reject(status: number, reason: string, now: number, startedAt: number, headBytes: number, line: RequestLine | undefined): void {
    this.emit({ _tag: "Write", side: "client", bytes: errorResponse(status, reason, this.via) })
    this.emit({
      _tag: "Log",
      record: {
        kind: "http",
        method: line?.method ?? "-",
        target: line?.target ?? "-",
        status,
        bytesFromClient: headBytes,
        bytesFromOrigin: 0,
        startedAt,
        endedAt: now,
        outcome: status === 408 ? "timeout" : "client-error",
        detail: reason,
      },
    })
    this.closeAll(true)
  }

  /** Method and target of the head being read, when its request line is complete and valid. */
  private partialRequestLine(state: AwaitingHead): RequestLine | undefined {
    if (state.head?.line.lineComplete !== true) return undefined
    const line = state.reader.firstLine()
    return line === undefined ? undefined : requestLineParts(line)
  }

  /** The exchange failed: answer with an error status if the response has not begun, else just cut it. */
  private failExchange(status: number, detail: string, outcome: Outcome, now: number, originGone = false): void {
    const state = this.current
    const begun = state._tag === "Tunnel" || (state._tag === "Forwarding" && state.response._tag === "Body")
    if (!begun && state._tag !== "AwaitingHead" && state._tag !== "Closed") {
      this.emit({ _tag: "Write", side: "client", bytes: errorResponse(status, detail, this.via) })
      // The client gets its error response flushed; the origin is abandoned mid-exchange: destroyed, so
      // that an origin that never reads or never closes cannot hold the socket (or a shutdown) up.
      this.finish(outcome, detail, now, true, false, originGone, status)
      return
    }
    this.finish(outcome, detail, now, false, false, originGone)
  }

  /** End the connection: log the exchange in flight (with `status` when an error response was sent), release both sockets. */
  private finish(
    outcome: Outcome,
    detail: string | undefined,
    now: number,
    graceful: boolean,
    originGraceful = graceful,
    originGone = false,
    status?: number,
  ): void {
    const state = this.current
    switch (state._tag) {
      case "Authorizing":
      case "Connecting":
        this.log(exchangeKind(state.exchange), state.exchange, status ?? 0, outcome, detail, now)
        break
      case "Forwarding":
        this.log("http", state.exchange, status ?? (state.response._tag === "Body" ? state.response.status : 0), outcome, detail, now)
        break
      case "Tunnel":
        this.log(state.relay.kind, state.relay, state.relay.status, outcome, detail, now)
        break
      case "AwaitingHead":
      case "Closed":
        break
    }
    this.closeAll(graceful, originGraceful, originGone)
  }

  private log(
    kind: "http" | "tunnel" | "upgrade",
    ledger: Ledger,
    status: number,
    outcome: Outcome,
    detail: string | undefined,
    now: number,
  ): void {
    // The optional fields are added only when present (a record has no `detail: undefined`), by
    // assignment rather than by spreading `{}` or `{ detail }`: one object per record, not three.
    const record: Mutable<AccessRecord> = {
      kind,
      method: ledger.method,
      target: ledger.target,
      status,
      bytesFromClient: ledger.bytesFromClient,
      bytesFromOrigin: ledger.bytesFromOrigin,
      startedAt: ledger.startedAt,
      endedAt: now,
      outcome,
    }
    if (detail !== undefined) record.detail = detail
    if (ledger.user !== undefined) record.user = ledger.user
    this.emit({ _tag: "Log", record })
  }

  private closeAll(graceful: boolean, originGraceful = graceful, originGone = false): void {
    // The client is released right after the origin: resuming it (closeOrigin lifts PEER_BLOCKED) would
    // be a ResumeReading(client) just before its Close, an action the transition table does not have.
    this.clientPause = 0
    if (!originGone) this.closeOrigin(false, originGraceful)
    this.closeClient(graceful)
  }

  /**
   * Release the origin of the current state: to the pool when `reusable`, else flushed and closed
   * (`graceful`) or destroyed; `pinned`: kept for this client connection only (graceful for a runtime
   * that does not keep it). Every caller leaves that state right after (next request, a new dial, or
   * Closed), so each origin socket gets exactly one Close(origin).
   */
  private closeOrigin(reusable: boolean, graceful = !reusable, pinned = false): void {
    if (originOf(this.current) === undefined) return
    this.emit(
      pinned
        ? { _tag: "Close", side: "origin", graceful: true, reusable: false, pinned: true }
        : { _tag: "Close", side: "origin", graceful: !reusable && graceful, reusable },
    )
    // Nothing can be blocked on a socket that is gone.
    this.resume("client", PEER_BLOCKED)
  }

  private closeClient(graceful: boolean): void {
    if (this.current._tag === "Closed") return
    this.current = closedState
    this.backlog = []
    this.backlogBytes = 0
    this.deadlineAt = -1
    this.emit({ _tag: "Close", side: "client", graceful, reusable: false })
  }

  // ---------------------------------------------------------------------------------------------
  // Backpressure

  private isOpen(side: Side): boolean {
    return side === "client" ? this.current._tag !== "Closed" : originOf(this.current) !== undefined
  }

  private pause(side: Side, reason: number): void {
    if (side === "client") {
      if (this.current._tag === "Closed") return
      if (this.clientPause === 0) this.emit({ _tag: "PauseReading", side })
      this.clientPause |= reason
    } else {
      const origin = originOf(this.current)
      if (origin === undefined) return
      if (origin.pause === 0) this.emit({ _tag: "PauseReading", side })
      origin.pause |= reason
    }
  }

  private resume(side: Side, reason: number): void {
    if (side === "client") {
      if ((this.clientPause & reason) === 0) return
      this.clientPause &= ~reason
      if (this.clientPause === 0 && this.current._tag !== "Closed") this.emit({ _tag: "ResumeReading", side })
    } else {
      const origin = originOf(this.current)
      if (origin === undefined || (origin.pause & reason) === 0) return
      origin.pause &= ~reason
      if (origin.pause === 0) this.emit({ _tag: "ResumeReading", side })
    }
  }

  private emit(action: Action): void {
    const out = this.out
    if (out === nothingYet) this.out = [action]
    else out.push(action) // throws between calls (noActions is frozen)
  }

  /** The actions of the call that is returning: not kept, so an idle connection holds none of its last bytes. */
  private handOver(): ReadonlyArray<Action> {
    const out = this.out
    this.out = noActions
    return out
  }
}

/** A record being built (`log`): its optional fields are set after the object literal. */
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const other = (side: Side): Side => (side === "client" ? "origin" : "client")
const exchangeKind = (exchange: Exchange): "http" | "tunnel" => (exchange.request === undefined ? "tunnel" : "http")
