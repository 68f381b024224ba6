/**
 * Postman: the engine of one proxied client connection (the "Postman pair" of the C++ original:
 * a client side and an origin side, bytes flowing upstream and downstream).
 *
 * Theory of operation
 * - Pure and synchronous: `handle(event, now)` mutates this object and returns the actions the runtime
 *   must carry out, in order. No IO, no clock (time arrives as `now`, in ms), no randomness. The same
 *   events with the same `now` values always give the same actions.
 * - All per-connection state logic lives here; HTTP syntax lives in ./http, error texts in ./responses.
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
import { type BodyFramer, type FeedResult, makeFramer } from "./http/body.ts"
import { HeadReader } from "./http/head-reader.ts"
import { parseRequestHead, requestFraming, requestLineParts } from "./http/request-head.ts"
import { RequestLineScan } from "./http/request-line-scan.ts"
import { MAX_INTERIM_RESPONSES, parseResponseHead, responseFraming } from "./http/response-head.ts"
import { fieldValues, hasToken, serializeRequestHead, serializeResponseHead, wantsClose } from "./http/serialize.ts"
import type { RequestHead, ResponseHead } from "./http/types.ts"
import type { Limits } from "./limits.ts"
import { authenticationRequired, connectEstablished, errorResponse } from "./responses.ts"

export interface PostmanOptions {
  readonly limits: Limits
  /** Pseudonym for the Via header ("1.1 <via>") and loop detection. */
  readonly via: string
  /** Every request and CONNECT must carry valid proxy credentials (`Authenticate` before `Connect`). */
  readonly auth?: boolean
}

export type PostmanState = "AwaitingHead" | "Connecting" | "Forwarding" | "Tunnel" | "Closed" | "Authorizing"

/** `out` between calls: frozen, so an action emitted outside a call would throw instead of being lost. */
const noActions: Action[] = Object.freeze([]) as unknown as Action[]

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
}

const describeConnectFailure = (reason: ConnectFailure, host: string, port: number, message: string): string => {
  switch (reason) {
    case "upstream":
      // The runtime's text names the parent proxy and its answer ("upstream proxy 10.0.0.1:3128 answered 407 ...").
      return message
    case "unresolved":
      return `could not resolve host ${host}`
    case "refused":
      return `connection refused by ${host}:${port}`
    case "unreachable":
      return `${host}:${port} is unreachable`
    case "timeout":
      return `timed out connecting to ${host}:${port}`
    case "error":
      return `could not connect to ${host}:${port}`
    case "denied":
      return `destination ${host}:${port} denied`
  }
}

/** RFC 9110 §9.2.2: a request with one of these methods may be sent again without changing its effect. */
const idempotentMethods: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])

const chunkLimits = (limits: Limits) => ({ maxChunkLine: 4096, maxTrailerBytes: limits.maxHeadBytes })

/** One request and its response (or one tunnel), from its head to its end. */
interface Exchange {
  readonly kind: "http" | "tunnel"
  readonly method: string
  readonly target: string
  readonly host: string
  readonly port: number
  readonly startedAt: number
  /** Dropped once a tunnel is up: an idle tunnel keeps no head in memory. */
  request: RequestHead | undefined
  /** The client connection closes after this exchange (client asked, HTTP/1.0, shutdown, or an early response). */
  closeAfter: boolean
  /** Request body framer; undefined for tunnels. */
  requestBody: BodyFramer | undefined
  /** Reads response heads (1xx, then the final one) until the final head arrived. */
  responseHeads: HeadReader | undefined
  responseBody: BodyFramer | undefined
  /** The origin may be reused after this exchange (delimited response, no `Connection: close`). */
  originReusable: boolean
  /** The request has no body and an idempotent method: it may be sent again on a fresh connection. */
  readonly replayable: boolean
  /** It was sent again once already (after a reused origin connection failed). */
  retried: boolean
  /** The current origin connection leads to a parent proxy (plain HTTP only; see Connected.upstream). */
  upstream: UpstreamHop | undefined
  /** The final response head (or a 101, or our own error) has gone to the client: no error response is possible any more. Interim 1xx heads do not count. */
  responseStarted: boolean
  status: number
  upgrade: boolean
  bytesFromClient: number
  bytesFromOrigin: number
  /** 1xx heads received for this request (capped: MAX_INTERIM_RESPONSES). */
  interimHeads: number
  /** Who the runtime authenticated this request as (proxy authentication on). */
  user: string | undefined
}

export class Postman {
  private readonly limits: Limits
  private readonly via: string
  private stateName: PostmanState = "AwaitingHead"
  /** Actions of the `handle` call in progress; handed over (not kept) when it returns. */
  private out: Action[] = noActions

  // Time
  private deadlineAt = -1
  private lastActivity = 0
  /** When the connection became idle between requests (accept time for the first request). */
  private idleSince = 0
  private firstRequest = true
  private connectStartedAt = 0

  // Client side
  private headReader: HeadReader | undefined
  /** `now` of the first byte of the head being read, or -1. */
  private headStartedAt = -1
  /** Watches the request line of the head being read, for an early 414. */
  private requestLine: RequestLineScan | undefined
  /** Bytes received for the head being read (for the log of a rejected head). */
  private headBytesSeen = 0
  /** `now` of the first byte of the request being handled (for logs and durations). */
  private requestStartedAt = 0
  /** Client bytes that arrived before they can be used: while connecting, and pipelined requests. */
  private backlog: Uint8Array[] = []
  private backlogBytes = 0
  private clientEnded = false
  private clientPause = 0

  // Origin side
  private originOpen = false
  private originConnected = false
  private originEnded = false
  /** The current origin connection came from the runtime's pool of kept-alive connections. */
  private originReused = false
  private originPause = 0

  private exchange: Exchange | undefined
  private draining = false

  // Proxy authentication
  private readonly auth: boolean
  /** `now` of the last `Authenticate`. */
  private authStartedAt = 0

  constructor(options: PostmanOptions) {
    this.limits = options.limits
    this.via = options.via
    this.auth = options.auth === true
  }

  get state(): PostmanState {
    return this.stateName
  }

  get closed(): boolean {
    return this.stateName === "Closed"
  }

  /** The deadline currently asked for, or -1 when none (only after Closed). */
  get deadline(): number {
    return this.deadlineAt
  }

  /** Bytes held by the core for this connection (bounded: see invariants in docs/design.md). */
  get bufferedBytes(): number {
    const exchange = this.exchange
    if (exchange === undefined) return this.backlogBytes + (this.headReader?.buffered ?? 0)
    return (
      this.backlogBytes + (this.headReader?.buffered ?? 0) + (exchange.responseHeads?.buffered ?? 0) +
      (exchange.requestBody?.held ?? 0) + (exchange.responseBody?.held ?? 0)
    )
  }

  /** Call once right after accept; returns the first deadline (head timeout). */
  start(now: number): ReadonlyArray<Action> {
    this.out = []
    this.idleSince = now
    this.lastActivity = now
    this.headReader = new HeadReader(this.limits.maxHeadBytes)
    this.ensureDeadline()
    return this.handOver()
  }

  /** Feed one event; returns the actions to carry out, in order. Events after `closed` are ignored. */
  handle(event: Event, now: number): ReadonlyArray<Action> {
    this.out = []
    if (this.stateName === "Closed") return this.handOver()
    switch (event._tag) {
      case "Received":
        // Nothing can arrive after a FIN: bytes "after" Ended are a runtime bug, and relaying them
        // would write to a side we already half-closed.
        if (event.side === "client" ? this.clientEnded : this.originEnded) break
        this.lastActivity = now
        if (event.side === "client") this.fromClient(event.bytes, now)
        else if (this.originConnected) this.fromOrigin(event.bytes, now)
        break
      case "Ended":
        if (event.side === "client") this.clientEnd(now)
        else if (this.originConnected) this.originEnd(now)
        break
      case "Errored":
        if (event.side === "client" || this.originOpen) this.sideFailed(event.side, event.message, now)
        break
      case "Connected":
        if (this.stateName === "Connecting" && this.originOpen && !this.originConnected) {
          this.originReused = event.reused === true
          this.connected(event.upstream, now)
        }
        break
      case "ConnectFailed":
        if (this.stateName === "Connecting" && this.originOpen && !this.originConnected) {
          this.originOpen = false
          this.connectFailed(event.reason, event.message, now)
        }
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
        if (this.stateName === "Authorizing") this.authenticated(event.user, now)
        break
      case "AuthenticationFailed":
        if (this.stateName === "Authorizing") this.authenticationFailed(event.reason, event.message, now)
        break
    }
    this.ensureDeadline()
    return this.handOver()
  }

  /** Graceful stop: an idle connection closes at once; an exchange in flight finishes, then closes. */
  shutdown(now: number): ReadonlyArray<Action> {
    this.out = []
    if (this.stateName === "Closed") return this.handOver()
    this.draining = true
    if (this.exchange !== undefined) this.exchange.closeAfter = true
    if (this.stateName === "AwaitingHead" && this.headStartedAt < 0 && this.backlogBytes === 0) {
      this.closeAll(true)
    }
    this.ensureDeadline()
    void now
    return this.handOver()
  }

  /** Stop now (grace period over): release every socket, log what was in flight. */
  abort(now: number, detail: string): ReadonlyArray<Action> {
    this.out = []
    if (this.stateName === "Closed") return this.handOver()
    this.finish("shutdown", detail, now, false)
    return this.handOver()
  }

  // ---------------------------------------------------------------------------------------------
  // Client bytes

  private fromClient(bytes: Uint8Array, now: number): void {
    switch (this.stateName) {
      case "AwaitingHead":
        this.readRequestHead(bytes, now)
        return
      case "Connecting":
      case "Authorizing":
        // Counted when used: as request body, tunnel bytes, or the head of a pipelined request.
        this.queue(bytes)
        return
      case "Forwarding":
        this.forwardRequestBody(bytes, now)
        return
      case "Tunnel":
        this.countFromClient(bytes.length)
        this.emit({ _tag: "Write", side: "origin", bytes })
        return
      case "Closed":
        return
    }
  }

  private countFromClient(n: number): void {
    if (this.exchange !== undefined) this.exchange.bytesFromClient += n
  }

  private readRequestHead(bytes: Uint8Array, now: number): void {
    const reader = this.headReader ?? (this.headReader = new HeadReader(this.limits.maxHeadBytes))
    if (this.headStartedAt < 0) {
      this.headStartedAt = now
      this.requestStartedAt = now
      this.requestLine = new RequestLineScan(this.limits.maxRequestLine, this.limits.maxHeadBytes)
      this.headBytesSeen = 0
    }
    this.headBytesSeen += bytes.length
    // Refuse an endless request line early, without waiting for the whole head limit; the scan decides
    // on the line's bytes alone, so one chunk or many give the same answer.
    // (and a line that cannot become a request line at its first impossible byte: a TLS ClientHello...)
    const line = this.requestLine
    const early = line?.push(bytes)
    if (line !== undefined && early !== undefined) return this.reject(early.status, early.reason, now, line.seen)
    const result = reader.push(bytes)
    switch (result._tag) {
      case "NeedMore":
        return
      case "TooLarge":
        // Logged as the head bytes read up to the first one over the limit: however the bytes were split
        // (and whatever arrived after that byte in the same chunk), the count is the same (§7.2).
        return this.reject(431, `the request head is larger than ${this.limits.maxHeadBytes} bytes`, now, this.limits.maxHeadBytes + 1)
      case "Head": {
        this.headStartedAt = -1
        this.headReader = undefined
        this.requestLine = undefined
        this.startExchange(result.head, now)
        if (result.rest.length > 0 && this.stateName !== "Closed") this.fromClient(result.rest, now)
        return
      }
    }
  }

  /** A complete request head arrived: validate it and start a tunnel or an HTTP exchange. */
  private startExchange(headBytes: Uint8Array, now: number): void {
    this.firstRequest = false
    const parsed = parseRequestHead(headBytes, this.limits)
    if (!parsed.ok) {
      const { status, reason, method, target } = parsed.rejection
      return this.reject(status, reason, now, headBytes.length, method, target)
    }
    const head = parsed.value
    const framing = requestFraming(head)
    if (!framing.ok) return this.reject(framing.rejection.status, framing.rejection.reason, now, headBytes.length, head.method, head.rawTarget)
    if (this.isLoop(head)) {
      return this.reject(508, "the request already passed through this proxy (Via)", now, headBytes.length, head.method, head.rawTarget)
    }
    const target = head.target
    const tunnel = target.form === "authority"
    const exchange: Exchange = {
      kind: tunnel ? "tunnel" : "http",
      method: head.method,
      target: head.rawTarget,
      host: target.host,
      port: target.port,
      startedAt: this.requestStartedAt,
      request: head,
      closeAfter: this.draining || wantsClose(head.version, head.headers),
      requestBody: tunnel ? undefined : makeFramer(framing.value, chunkLimits(this.limits)),
      responseHeads: undefined,
      responseBody: undefined,
      originReusable: false,
      replayable: !tunnel && framing.value.kind === "none" && idempotentMethods.has(head.method),
      retried: false,
      upstream: undefined,
      responseStarted: false,
      status: 0,
      upgrade: !tunnel && hasToken(head.headers, "connection", "upgrade") && fieldValues(head.headers, "upgrade").length > 0,
      bytesFromClient: headBytes.length,
      bytesFromOrigin: 0,
      interimHeads: 0,
      user: undefined,
    }
    this.exchange = exchange
    if (this.auth) return this.authorize(head, now)
    // Each exchange dials its own origin connection: the runtime may hand out a pooled one (reusable Close).
    this.dial(exchange, now)
  }

  /** Ask for a new origin connection for `exchange` and wait for it in Connecting. */
  private dial(exchange: Exchange, now: number): void {
    this.stateName = "Connecting"
    this.connectStartedAt = now
    this.originOpen = true
    this.originConnected = false
    this.originEnded = false
    this.originReused = false
    this.originPause = 0
    exchange.upstream = undefined
    this.emit(
      exchange.kind === "tunnel"
        ? { _tag: "Connect", host: exchange.host, port: exchange.port, tunnel: true }
        : { _tag: "Connect", host: exchange.host, port: exchange.port },
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
  private authorize(head: RequestHead, now: number): void {
    this.stateName = "Authorizing"
    this.authStartedAt = now
    const values = fieldValues(head.headers, "proxy-authorization")
    this.emit({ _tag: "Authenticate", credentials: values.length === 0 ? undefined : values.join(", ") })
  }

  private authenticated(user: string, now: number): void {
    const exchange = this.exchange
    if (exchange === undefined) return
    exchange.user = user
    this.dial(exchange, now)
  }

  /**
   * 407 with the Basic challenge, or 503 when the credentials could not be checked. After a 407 the
   * connection stays open for the client's retry when nothing of this request is left to read: no
   * request body, and no bytes a CONNECT client sent ahead for its tunnel (they would be read as a head).
   */
  private authenticationFailed(reason: AuthFailure, message: string, now: number): void {
    const exchange = this.exchange
    if (exchange === undefined) return
    if (reason === "unavailable") return this.failExchange(503, message, "unauthenticated", now)
    const nothingLeft = exchange.kind === "tunnel" ? this.backlogBytes === 0 : (exchange.requestBody?.done ?? true)
    const keep = nothingLeft && !exchange.closeAfter && !this.clientEnded
    exchange.status = 407
    exchange.responseStarted = true
    this.emit({ _tag: "Write", side: "client", bytes: authenticationRequired(message, this.via, !keep) })
    this.log(exchange, "unauthenticated", message, now)
    this.exchange = undefined
    if (!keep) return this.closeClient(true)
    // As after a complete response (exchangeDone): read the next head, pipelined bytes first.
    this.stateName = "AwaitingHead"
    this.idleSince = now
    this.headStartedAt = -1
    this.headReader = new HeadReader(this.limits.maxHeadBytes)
    for (const bytes of this.takeBacklog()) {
      if (this.stateName !== "AwaitingHead") {
        this.fromClient(bytes, now)
        continue
      }
      this.readRequestHead(bytes, now)
    }
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

  private forwardRequestBody(bytes: Uint8Array, now: number): void {
    const exchange = this.exchange
    const body = exchange?.requestBody
    if (exchange === undefined || body === undefined || body.done) {
      // The request is complete: these bytes belong to the next (pipelined) request.
      this.queue(bytes)
      return
    }
    const fed = body.feed(bytes)
    exchange.bytesFromClient += fed.consumed
    this.forwardBody("origin", bytes, fed)
    if (fed.error !== undefined) {
      return this.failExchange(400, `malformed request body: ${fed.error}`, "client-error", now)
    }
    if (fed.consumed < bytes.length) this.queue(bytes.subarray(fed.consumed))
  }

  // ---------------------------------------------------------------------------------------------
  // Origin connection

  private connected(upstream: UpstreamHop | undefined, now: number): void {
    const exchange = this.exchange
    if (exchange === undefined) return
    this.originConnected = true
    const queued = this.takeBacklog()
    if (exchange.kind === "tunnel") {
      this.stateName = "Tunnel"
      exchange.request = undefined
      exchange.status = 200
      exchange.responseStarted = true
      this.emit({ _tag: "Write", side: "client", bytes: connectEstablished })
      for (const bytes of queued) {
        exchange.bytesFromClient += bytes.length
        this.emit({ _tag: "Write", side: "origin", bytes })
      }
      // A client that half-closed right after its CONNECT still gets its bytes delivered, then the FIN.
      if (this.clientEnded) this.emit({ _tag: "HalfClose", side: "origin" })
      return
    }
    const request = exchange.request
    if (request === undefined) return
    this.stateName = "Forwarding"
    exchange.responseHeads = new HeadReader(this.limits.maxHeadBytes)
    exchange.upstream = upstream
    this.emit({
      _tag: "Write",
      side: "origin",
      bytes: serializeRequestHead(request, { via: this.via, keepUpgrade: exchange.upgrade, upstream }),
    })
    for (const bytes of queued) {
      if (this.stateName !== "Forwarding") break
      this.forwardRequestBody(bytes, now)
    }
  }

  private connectFailed(reason: ConnectFailure, message: string, now: number): void {
    const exchange = this.exchange
    if (exchange === undefined) return
    this.failExchange(
      statusForConnectFailure[reason],
      // A denial's message is the policy's own sentence (the rule, and the flag that would allow it).
      reason === "denied" && message !== "" ? message : describeConnectFailure(reason, exchange.host, exchange.port, message),
      reason === "timeout" ? "timeout" : reason === "denied" ? "denied" : "origin-error",
      now,
    )
  }

  // ---------------------------------------------------------------------------------------------
  // Origin bytes

  private fromOrigin(bytes: Uint8Array, now: number): void {
    const exchange = this.exchange
    if (exchange === undefined) return
    if (this.stateName === "Tunnel") {
      exchange.bytesFromOrigin += bytes.length
      this.emit({ _tag: "Write", side: "client", bytes })
      return
    }
    // In Forwarding the bytes are counted as they are used (a head, a body): bytes after the point where
    // the exchange ended or failed are not, so the log is the same however the bytes were split (§7.2).
    if (this.stateName !== "Forwarding") return
    if (exchange.responseBody === undefined) {
      this.readResponseHead(exchange, bytes, now)
      return
    }
    this.forwardResponseBody(exchange, exchange.responseBody, bytes, now)
  }

  private readResponseHead(exchange: Exchange, bytes: Uint8Array, now: number): void {
    const reader = exchange.responseHeads ?? (exchange.responseHeads = new HeadReader(this.limits.maxHeadBytes))
    const retained = reader.buffered
    const result = reader.push(bytes)
    switch (result._tag) {
      case "NeedMore":
        exchange.bytesFromOrigin += bytes.length
        return
      case "TooLarge":
        // Counted up to the first byte over the limit, like a request head's 431 (A3).
        exchange.bytesFromOrigin += this.limits.maxHeadBytes + 1 - retained
        return this.failExchange(502, "the origin's response head is too large", "origin-error", now)
      case "Head":
        exchange.bytesFromOrigin += bytes.length - result.rest.length
        return this.responseHead(exchange, result.head, result.rest, now)
    }
  }

  private responseHead(exchange: Exchange, headBytes: Uint8Array, rest: Uint8Array, now: number): void {
    const request = exchange.request
    if (request === undefined) return
    const parsed = parseResponseHead(headBytes, this.limits)
    if (!parsed.ok) return this.failExchange(502, `malformed response from the origin: ${parsed.reason}`, "origin-error", now)
    const head = parsed.value
    if (head.status < 200) return this.interimResponse(exchange, request, head, rest, now)
    // A parent proxy that wants credentials we do not have (or refuses ours): the client cannot answer
    // that challenge (its Proxy-Authorization is for us and never reaches the parent), so it is our 502.
    if (head.status === 407 && exchange.upstream !== undefined) {
      const detail = `upstream proxy ${exchange.upstream.proxy} answered 407 ${head.reason}`.trimEnd()
      return this.failExchange(502, detail, "origin-error", now)
    }

    const framing = responseFraming(head, exchange.method)
    if (!framing.ok) return this.failExchange(502, `malformed response from the origin: ${framing.reason}`, "origin-error", now)
    if (framing.value.kind === "chunked" && request.version === "1.0") {
      // RFC 9112 §6.1: a server must not send Transfer-Encoding to an HTTP/1.0 request; its client cannot decode it.
      return this.failExchange(502, "the origin answered an HTTP/1.0 request with a chunked body", "origin-error", now)
    }
    exchange.responseHeads = undefined
    exchange.status = head.status
    const requestDone = exchange.requestBody?.done ?? true
    const untilClose = framing.value.kind === "until-close"
    // Close the client after this response when its framing ends with the connection, or when the
    // request body is still coming (an early response): the rest of that body must not be read as a request.
    if (untilClose || !requestDone || this.clientEnded) exchange.closeAfter = true
    exchange.originReusable = !untilClose && !wantsClose(head.version, head.headers)
    exchange.responseStarted = true
    this.emit({
      _tag: "Write",
      side: "client",
      bytes: serializeResponseHead(head, { via: this.via, close: exchange.closeAfter, keepUpgrade: false }),
    })
    const body = makeFramer(framing.value, chunkLimits(this.limits))
    exchange.responseBody = body
    if (body.done) return this.exchangeDone(exchange, rest, now)
    if (rest.length > 0) this.forwardResponseBody(exchange, body, rest, now)
  }

  /** 1xx: forward it (not to HTTP/1.0 clients, RFC 9110 §15.2), then wait for the next head; 101 switches to a tunnel. */
  private interimResponse(exchange: Exchange, request: RequestHead, head: ResponseHead, rest: Uint8Array, now: number): void {
    if (++exchange.interimHeads > MAX_INTERIM_RESPONSES) {
      // Only interim heads went to the client: a final response (this 502) may still follow them.
      return this.failExchange(502, `the origin sent more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`, "origin-error", now)
    }
    if (head.status === 101) {
      if (!exchange.upgrade) {
        return this.failExchange(502, "the origin switched protocols without being asked to", "origin-error", now)
      }
      exchange.status = 101
      exchange.responseStarted = true
      exchange.responseHeads = undefined
      this.emit({
        _tag: "Write",
        side: "client",
        bytes: serializeResponseHead(head, { via: this.via, close: false, keepUpgrade: true }),
      })
      this.stateName = "Tunnel"
      exchange.request = undefined
      exchange.responseBody = undefined
      exchange.requestBody = undefined
      // Bytes the client sent after its request belong to the new protocol: pass them on now.
      for (const bytes of this.takeBacklog()) {
        exchange.bytesFromClient += bytes.length
        this.emit({ _tag: "Write", side: "origin", bytes })
      }
      if (rest.length > 0) {
        exchange.bytesFromOrigin += rest.length
        this.emit({ _tag: "Write", side: "client", bytes: rest })
      }
      if (this.clientEnded) this.emit({ _tag: "HalfClose", side: "origin" })
      return
    }
    if (request.version === "1.1") {
      // Not `responseStarted`: a final response may still follow interim ones, so a later origin
      // failure is still answered with its 502/504 (docs/design.md §5, rows F22-F24).
      this.emit({
        _tag: "Write",
        side: "client",
        bytes: serializeResponseHead(head, { via: this.via, close: false, keepUpgrade: false }),
      })
    }
    if (rest.length > 0) this.readResponseHead(exchange, rest, now)
  }

  private forwardResponseBody(exchange: Exchange, body: BodyFramer, bytes: Uint8Array, now: number): void {
    const fed = body.feed(bytes)
    exchange.bytesFromOrigin += fed.consumed
    this.forwardBody("client", bytes, fed)
    if (fed.error !== undefined) {
      return this.finish("origin-error", `malformed response body from the origin: ${fed.error}`, now, false)
    }
    if (fed.done) {
      this.exchangeDone(exchange, bytes.subarray(fed.consumed), now)
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
  private exchangeDone(exchange: Exchange, extra: Uint8Array, now: number): void {
    // Bytes after a complete response are not ours to interpret: that origin connection is spoiled.
    const reusable = exchange.originReusable && extra.length === 0 && (exchange.requestBody?.done ?? true) && !this.originEnded
    this.log(exchange, "ok", undefined, now)
    this.exchange = undefined
    if (exchange.closeAfter) this.clientPause = 0 // released right below: no ResumeReading(client) first
    this.closeOrigin(reusable)
    if (exchange.closeAfter) {
      this.closeClient(true)
      return
    }
    this.stateName = "AwaitingHead"
    this.idleSince = now
    this.headStartedAt = -1
    this.headReader = new HeadReader(this.limits.maxHeadBytes)
    for (const bytes of this.takeBacklog()) {
      if (this.stateName !== "AwaitingHead") {
        this.fromClient(bytes, now)
        continue
      }
      this.readRequestHead(bytes, now)
    }
    if (this.stateName === "AwaitingHead" && this.clientEnded && this.headStartedAt < 0) this.closeClient(true)
  }

  // ---------------------------------------------------------------------------------------------
  // Ends, errors, timeouts

  private clientEnd(now: number): void {
    if (this.clientEnded) return
    this.clientEnded = true
    switch (this.stateName) {
      case "AwaitingHead":
        // Between requests that is a clean close; in the middle of a head the client gave up.
        if (this.headStartedAt >= 0) this.finish("aborted", "the client closed in the middle of a request head", now, true)
        else this.closeClient(true)
        return
      case "Connecting":
      case "Authorizing":
      case "Forwarding": {
        const exchange = this.exchange
        const requestDone = exchange?.kind === "tunnel" || (exchange?.requestBody?.done ?? true)
        if (!requestDone) this.finish("aborted", "the client closed before its request body was complete", now, false)
        // Otherwise the client only half-closed: it still gets its response, then the connection closes.
        else if (exchange !== undefined) exchange.closeAfter = true
        return
      }
      case "Tunnel":
        this.emit({ _tag: "HalfClose", side: "origin" })
        if (this.originEnded) this.finish("ok", undefined, now, true)
        return
      case "Closed":
        return
    }
  }

  private originEnd(now: number): void {
    if (this.originEnded) return
    this.originEnded = true
    const exchange = this.exchange
    if (this.stateName === "Tunnel") {
      this.emit({ _tag: "HalfClose", side: "client" })
      if (this.clientEnded) this.finish("ok", undefined, now, true)
      return
    }
    if (this.stateName !== "Forwarding" || exchange === undefined) return
    const body = exchange.responseBody
    if (body === undefined) {
      if (this.retryOnFreshConnection(exchange, now)) return
      return this.failExchange(502, "the origin closed the connection without a response", "origin-error", now)
    }
    if (body.endOfStream()) {
      // A close-delimited body ends here, and so does the client connection (closeAfter is set).
      this.exchangeDone(exchange, new Uint8Array(0), now)
      return
    }
    this.finish("origin-error", "the origin closed the connection in the middle of the response body", now, false)
  }

  private sideFailed(side: Side, message: string, now: number): void {
    if (side === "origin") {
      // Nothing more is read from or written to it, but it is still released by its one Close(origin)
      // (§7.3: every socket a Connected reported gets exactly one), emitted by the teardown or retry below.
      this.originConnected = false
      const exchange = this.exchange
      if (this.stateName === "Forwarding" && exchange !== undefined && this.retryOnFreshConnection(exchange, now)) return
      if (this.stateName === "Forwarding" || this.stateName === "Connecting") {
        return this.failExchange(502, `the origin connection failed: ${message}`, "origin-error", now)
      }
      return this.finish("aborted", `origin: ${message}`, now, false)
    }
    this.finish("aborted", `client: ${message}`, now, false)
  }

  /**
   * A kept-alive origin connection from the pool can be closed by the origin at the very moment we send
   * a request on it. If nothing came back yet and the request can safely be sent again (idempotent, no
   * body), dial again once instead of answering 502 (RFC 9112 §9.3.1).
   */
  private retryOnFreshConnection(exchange: Exchange, now: number): boolean {
    if (!this.originReused || exchange.retried || !exchange.replayable || exchange.bytesFromOrigin > 0 || exchange.responseStarted) {
      return false
    }
    exchange.retried = true
    this.closeOrigin(false, false)
    this.dial(exchange, now)
    return true
  }

  private timeout(now: number): void {
    switch (this.stateName) {
      case "AwaitingHead":
        if (this.headStartedAt >= 0) {
          if (now >= this.headStartedAt + this.limits.headTimeout) {
            this.reject(408, "the request head did not arrive in time", now)
          }
        } else if (now >= this.idleDeadline()) {
          // An idle connection between requests: close it quietly, there is nobody to answer.
          this.closeClient(true)
        }
        return
      case "Connecting":
        if (now >= this.connectStartedAt + this.limits.connectTimeout) {
          const exchange = this.exchange
          const where = exchange === undefined ? "the origin" : `${exchange.host}:${exchange.port}`
          this.failExchange(504, `timed out connecting to ${where}`, "timeout", now)
        }
        return
      case "Forwarding":
        if (now >= this.lastActivity + this.limits.idleTimeout) {
          this.failExchange(504, "the origin did not respond in time", "timeout", now)
        }
        return
      case "Authorizing":
        if (now >= this.authStartedAt + this.limits.connectTimeout) {
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

  private idleDeadline(): number {
    return this.idleSince + (this.firstRequest ? this.limits.headTimeout : this.limits.keepAliveTimeout)
  }

  /** The deadline this state needs; -1 when closed. */
  private wantedDeadline(): number {
    switch (this.stateName) {
      case "AwaitingHead":
        return this.headStartedAt >= 0 ? this.headStartedAt + this.limits.headTimeout : this.idleDeadline()
      case "Connecting":
        return this.connectStartedAt + this.limits.connectTimeout
      case "Authorizing":
        return this.authStartedAt + this.limits.connectTimeout
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
    if (this.stateName === "Closed") return
    const wanted = this.wantedDeadline()
    if (this.deadlineAt < 0 || wanted < this.deadlineAt) {
      this.deadlineAt = wanted
      this.emit({ _tag: "SetDeadline", at: wanted })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Endings

  /** A request head was refused: answer with its status, close, and log. */
  private reject(status: number, reason: string, now: number, headBytes = this.headBytesSeen, method?: string, target?: string): void {
    this.emit({ _tag: "Write", side: "client", bytes: errorResponse(status, reason, this.via) })
    const outcome: Outcome = status === 408 ? "timeout" : "client-error"
    // A head refused before it was complete (431, 408) still names what it asked for when its line was whole.
    const line = method === undefined ? this.partialRequestLine() : { method, target: target ?? "-" }
    this.emit({
      _tag: "Log",
      record: {
        kind: "http",
        method: line?.method ?? "-",
        target: line?.target ?? "-",
        status,
        bytesFromClient: headBytes,
        bytesFromOrigin: 0,
        startedAt: this.headStartedAt >= 0 ? this.headStartedAt : this.requestStartedAt,
        endedAt: now,
        outcome,
        detail: reason,
      },
    })
    this.exchange = undefined
    this.closeAll(true)
  }

  /** Method and target of the head being read, when its request line is complete and valid. */
  private partialRequestLine(): { readonly method: string; readonly target: string } | undefined {
    if (this.requestLine?.lineComplete !== true) return undefined
    const line = this.headReader?.firstLine()
    return line === undefined ? undefined : requestLineParts(line)
  }

  /** The exchange failed: answer with an error status if the response has not begun, else just cut it. */
  private failExchange(status: number, detail: string, outcome: Outcome, now: number): void {
    const exchange = this.exchange
    if (exchange !== undefined && !exchange.responseStarted) {
      exchange.status = status
      exchange.responseStarted = true
      this.emit({ _tag: "Write", side: "client", bytes: errorResponse(status, detail, this.via) })
      // The client gets its error response flushed; the origin is abandoned mid-exchange: destroyed, so
      // that an origin that never reads or never closes cannot hold the socket (or a shutdown) up.
      this.finish(outcome, detail, now, true, false)
      return
    }
    this.finish(outcome, detail, now, false)
  }

  /** End the connection: log the exchange in flight, release both sockets. */
  private finish(outcome: Outcome, detail: string | undefined, now: number, graceful: boolean, originGraceful = graceful): void {
    const exchange = this.exchange
    if (exchange !== undefined) this.log(exchange, outcome, detail, now)
    this.exchange = undefined
    this.closeAll(graceful, originGraceful)
  }

  private log(exchange: Exchange, outcome: Outcome, detail: string | undefined, now: number): void {
    const record: AccessRecord = {
      kind: exchange.kind === "tunnel" ? "tunnel" : exchange.status === 101 ? "upgrade" : "http",
      method: exchange.method,
      target: exchange.target,
      status: exchange.status,
      bytesFromClient: exchange.bytesFromClient,
      bytesFromOrigin: exchange.bytesFromOrigin,
      startedAt: exchange.startedAt,
      endedAt: now,
      outcome,
      ...(detail === undefined ? {} : { detail }),
      ...(exchange.user === undefined ? {} : { user: exchange.user }),
    }
    this.emit({ _tag: "Log", record })
  }

  private closeAll(graceful: boolean, originGraceful = graceful): void {
    // The client is released right after the origin: resuming it (closeOrigin lifts PEER_BLOCKED) would
    // be a ResumeReading(client) just before its Close, an action the transition table does not have.
    this.clientPause = 0
    this.closeOrigin(false, originGraceful)
    this.closeClient(graceful)
  }

  /** Release the origin: to the pool when `reusable`, else flushed and closed (`graceful`) or destroyed. */
  private closeOrigin(reusable: boolean, graceful = !reusable): void {
    if (!this.originOpen) return
    this.originOpen = false
    this.originConnected = false
    this.originPause = 0
    this.emit({ _tag: "Close", side: "origin", graceful: !reusable && graceful, reusable })
    // Nothing can be blocked on a socket that is gone.
    this.resume("client", PEER_BLOCKED)
  }

  private closeClient(graceful: boolean): void {
    if (this.stateName === "Closed") return
    this.stateName = "Closed"
    this.backlog = []
    this.backlogBytes = 0
    this.headReader = undefined
    this.deadlineAt = -1
    this.emit({ _tag: "Close", side: "client", graceful, reusable: false })
  }

  // ---------------------------------------------------------------------------------------------
  // Backpressure

  private isOpen(side: Side): boolean {
    return side === "client" ? this.stateName !== "Closed" : this.originOpen
  }

  private pause(side: Side, reason: number): void {
    if (!this.isOpen(side)) return
    if (side === "client") {
      if (this.clientPause === 0) this.emit({ _tag: "PauseReading", side })
      this.clientPause |= reason
    } else {
      if (this.originPause === 0) this.emit({ _tag: "PauseReading", side })
      this.originPause |= reason
    }
  }

  private resume(side: Side, reason: number): void {
    if (side === "client") {
      if ((this.clientPause & reason) === 0) return
      this.clientPause &= ~reason
      if (this.clientPause === 0 && this.stateName !== "Closed") this.emit({ _tag: "ResumeReading", side })
    } else {
      if ((this.originPause & reason) === 0) return
      this.originPause &= ~reason
      if (this.originPause === 0 && this.originOpen) this.emit({ _tag: "ResumeReading", side })
    }
  }

  private emit(action: Action): void {
    this.out.push(action)
  }

  /** The actions of the call that is returning: not kept, so an idle connection holds none of its last bytes. */
  private handOver(): ReadonlyArray<Action> {
    const out = this.out
    this.out = noActions
    return out
  }
}

const other = (side: Side): Side => (side === "client" ? "origin" : "client")
