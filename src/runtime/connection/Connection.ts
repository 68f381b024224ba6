/**
 * Connection: the socket adapter of ONE client connection.
 *
 * The connection/ folder owns the adapter of one client connection: this class, which carries out the
 * core's actions on real sockets; the sockets' listeners (Listeners.ts) and the Node-internals tricks
 * they take (SocketHooks.ts); the buffers sockets read into (ReadArena.ts); TCP keepalive for the
 * connections that live long (KeepaliveArmer.ts); and what a finished exchange adds to the metrics
 * (ExchangeMetrics.ts). How an origin is reached is not its business: a `Connect` goes to the worker's
 * Dialer (dial/Dialer.ts), which answers with a connected socket or the reason there is none.
 * May import: timers/, observe/, access/, auth/, dial/, src/core.
 *
 * Owns the client socket, at most one origin socket at a time, and the `Postman` that decides what
 * happens to them. Socket callbacks become `Event`s fed synchronously to the Postman; the returned
 * `Action`s are carried out in order by a plain `switch`. No Effect, no promise, no closure per chunk.
 *
 * Rules it keeps:
 * - Re-entrancy: an event that arises while actions are being carried out (`Blocked` from a write, the
 *   Dialer or the Authenticator answering at once) is queued and fed after the current action list,
 *   never in the middle.
 * - After the Postman closed a side, that socket's events are ignored (a gracefully closed socket keeps
 *   being read, and what arrives is discarded, until the peer's FIN or the linger deadline).
 * - At most one dial attempt is in progress; a new Connect, a Close of the origin while connecting, or
 *   the end of the connection cancels it (the Dialer then destroys what it dialled and never answers).
 * - Every socket we hold is destroyed exactly once (by us, or by Node after an error or both FINs) and
 *   a client's listeners are removed on 'close'. When the client socket is gone (and an origin the core
 *   released gracefully has flushed, bounded by LINGER_MS) the Connection is finished: anything left is
 *   destroyed, the deadline cancelled, and the owner told (`onFinished`).
 * - An origin the core releases as reusable goes back to the Dialer (its pool), not destroyed; one it
 *   releases pinned (NTLM or Negotiate authenticated it) goes back to the Dialer for this client only.
 * - `Authenticate` goes to the worker's Authenticator (proxy authentication on): a verdict known at once
 *   (cached credentials, none, rate limit) is queued like any event an action gives rise to; a later one
 *   (after bcrypt, off the event loop) is fed when it comes, and dropped once the client is gone.
 * - Writes of one action list are corked and leave as one writev.
 * - Sockets get TCP_NODELAY at once and TCP keepalive once the connection has lived 10–20 s (KeepaliveArmer.ts
 *   says why; `keepaliveSweep`): the sockets it has then are armed, origins it dials later at birth, a
 *   pooled origin it adopts later not (it carries one exchange at a time).
 * - Reads go into buffers we supply: origin sockets always (net `onread`), a client once it streams.
 *   ReadArena.ts decides which, over this class's `ReadState` fields; Connection feeds the bytes and
 *   says when they are still referenced.
 * - An idle tunnel keeps as little as possible (RSS per idle tunnel, docs/performance.md): two sockets
 *   with a tag and module-level listeners, one small object, no text only a log line needs.
 *
 * It must never: read a clock other than `Deadlines.now`, feed the Postman after `closed`, or throw into
 * a socket callback (a bug in the core is logged and the connection destroyed).
 */
import type * as net from "node:net"
import type { Action } from "../../core/actions.ts"
import type { Event, Side } from "../../core/events.ts"
import type { Limits } from "../../core/limits.ts"
import { type ExchangeInfo, Postman } from "../../core/postman.ts"
import type { AccessLog } from "../observe/AccessLog.ts"
import type { Deadlines, Timed } from "../timers/Deadlines.ts"
import type { MutableStats } from "../observe/Stats.ts"
import { counterSlot, type WorkerMetrics } from "../observe/Metrics.ts"
import type { AuthVerdict, AuthWaiter } from "../auth/Authenticator.ts"
import type { ProxyAuthenticator } from "../auth/HookAuthenticator.ts"
import { hostPort, peerOf } from "../access/Peer.ts"
import type { Connected, ConnectFailed, DialAttempt, DialClient, Dialer } from "../dial/Dialer.ts"
import type { Resolved } from "../dial/Resolver.ts"
import { forgetOriginBuffer, giveUpBulk, readBuffer, readIsViewable, type ReadState, shared, SHARED_READ_BYTES } from "./ReadArena.ts"
import { defaultKeepalive, type KeepaliveArmer } from "./KeepaliveArmer.ts"
import { adoptOrigin, connectOrigin, detachOrigin, listenClient, listenDrain, type SocketEvents, streamClient } from "./Listeners.ts"
import { countExchange, DIALLING } from "./ExchangeMetrics.ts"

const INTERNAL_ERROR = counterSlot("internalErrors")

/** How long a gracefully closed client socket may linger (flushing our last bytes, reading theirs) before it is destroyed. */
export const LINGER_MS = 5_000
/** TCP keepalive probes start after this much idle time (see KeepaliveArmer for when a socket is armed). */
export const KEEPALIVE_DELAY_MS = defaultKeepalive.delayMs

/** The part of the Postman API the adapter drives (a test may drive the adapter with a scripted double). */
export type Engine = Pick<Postman, "start" | "handle" | "shutdown" | "abort" | "closed" | "bufferedBytes" | "state" | "exchange">

/**
 * What every Connection of a worker shares: one object, whose settings (limits, via, policy, auth) the
 * worker replaces in place on a reload, so they are read when an exchange needs them, never kept.
 */
export interface ConnectionContext {
  readonly limits: Limits
  readonly via: string
  readonly deadlines: Deadlines
  /** The way to an origin: every `Connect` goes to it, and a reusable origin goes back to it. */
  readonly dialer: Dialer
  readonly log: AccessLog
  readonly stats: MutableStats
  /** Called once, when the client socket is gone and everything of this connection is released. */
  readonly onFinished: (connection: Connection) => void
  /** How long a gracefully released socket may linger (default LINGER_MS). */
  readonly lingerMs?: number
  /** Test seam: build the engine of a connection (default: a real Postman with `limits` and `via`). */
  readonly makeEngine?: () => Engine
  /** Sweeps the connections to arm TCP keepalive on long-lived ones; without it, sockets are armed at once. */
  readonly keepalive?: KeepaliveArmer
  /** The worker's figures for /metrics (Metrics.ts); without it, nothing is measured. */
  readonly metrics?: WorkerMetrics
  /** Proxy authentication: when present, every request's credentials are checked (the core's `Authenticate`). */
  readonly auth?: ProxyAuthenticator | undefined
}

/** The verdict when the core asks for authentication that this worker cannot check (never, once configured). */
const noAuthenticator: AuthVerdict = { _tag: "AuthenticationFailed", reason: "unavailable", message: "no user file is loaded" }

/** The engine calls `guard` makes (other than `handle`, which `feed` makes). */
const START = 0
const SHUTDOWN = 1
const ABORT = 2
type GuardedCall = typeof START | typeof SHUTDOWN | typeof ABORT

/** Where a socket slot stands, as far as this adapter is concerned. */
const IDLE = 0 // no socket (origin only)
const CONNECTING = 1 // origin: the Dialer is at work (no socket of ours yet)
const OPEN = 2 // the core uses it
const CLOSING = 3 // the core released it gracefully: flushing and draining, events ignored
const GONE = 4 // destroyed (or being destroyed); waiting for nothing
type SlotState = typeof IDLE | typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof GONE

export class Connection implements Timed, AuthWaiter, SocketEvents, DialClient, ReadState {
  // Timed (owned by Deadlines)
  deadlineIndex = -1
  deadlineAt = 0

  readonly client: net.Socket
  private readonly ctx: ConnectionContext
  private readonly postman: Engine

  private clientState: SlotState = OPEN
  private origin: net.Socket | undefined = undefined
  private originState: SlotState = IDLE
  /** The Dialer's attempt while originState is CONNECTING. */
  private attempt: DialAttempt | undefined = undefined
  /** Where the Dialer keeps the current origin once the core releases it as reusable; undefined: not kept. */
  private originKey: string | undefined = undefined
  /** DialClient: the mark of the origin connections pinned to this client (the Dialer sets it when it first keeps one). */
  pinTag: string | undefined = undefined
  /** The client's "address:port" once something was logged (see `peer`). */
  private peerText: string | undefined = undefined
  private originPaused = false
  /** Keepalive sweeps seen (KeepaliveArmer); the sockets are armed at the second. */
  private keepaliveSweeps = 0

  private busy = false
  private queue: Array<Event> | undefined = undefined
  private finished = false

  /** For the metrics of the exchange (ExchangeMetrics.ts): DIALLING, minus the origin's first byte time, or 0. */
  private originMark = 0

  /** PROXY protocol (issue 10 §2): the client's address from the load balancer's header, if there was one. */
  private readonly proxiedAddress: string | undefined = undefined
  /** Sockets corked by the action list being carried out. */
  private corked: Array<net.Socket> | undefined = undefined

  // ReadState: the read buffers of a streaming side (ReadArena.ts decides; nothing else touches them).
  /** @internal */ clientBulk: Buffer | undefined = undefined
  /** @internal */ originBulk: Buffer | undefined = undefined
  /** @internal */ clientStreaming = false
  /** @internal */ originStreaming = false

  constructor(client: net.Socket, ctx: ConnectionContext, proxied?: { readonly address: string; readonly port: number }) {
    this.client = client
    this.ctx = ctx
    // PROXY protocol (issue 10 §2): the client is the one the load balancer's header names, not the balancer.
    if (proxied !== undefined) {
      this.proxiedAddress = proxied.address
      this.peerText = hostPort(proxied.address, proxied.port)
    }
    // Node keeps the peer address on the socket once asked (also after close): `peer` reads it when needed.
    void client.remoteAddress
    this.postman = ctx.makeEngine?.() ?? new Postman({ limits: ctx.limits, via: ctx.via, auth: ctx.auth !== undefined })
    if (ctx.keepalive === undefined) client.setKeepAlive(true, KEEPALIVE_DELAY_MS)
    listenClient(client, this)
    this.guard(START, ctx.deadlines.now())
  }

  /** The client's IP address (for per-client limits and rate limits): the PROXY header's, else the socket's peer. */
  get clientAddress(): string {
    return this.proxiedAddress ?? this.client.remoteAddress ?? "?"
  }

  /** DialClient: the exchange a Connect is for (its method and user, for a route hook). */
  get exchange(): ExchangeInfo | undefined {
    return this.postman.exchange
  }

  /** "address:port" of the client, for the log; made when first needed, so an idle tunnel keeps no text. */
  get peer(): string {
    return (this.peerText ??= peerOf(this.client))
  }

  /** Whether this connection's sockets have TCP keepalive on (new origin sockets get it at birth then). */
  private get keepaliveArmed(): boolean {
    return this.keepaliveSweeps >= 2 || this.ctx.keepalive === undefined
  }

  /** KeepaliveArmer: a sweep went by. At the second one (the connection is 10–20 s old) arm its sockets. */
  keepaliveSweep(delayMs: number): void {
    if (this.keepaliveSweeps >= 2 || ++this.keepaliveSweeps < 2) return
    if (this.clientState !== GONE && !this.client.destroyed) this.client.setKeepAlive(true, delayMs)
    const origin = this.origin
    if (origin !== undefined && !origin.destroyed) origin.setKeepAlive(true, delayMs)
  }

  /** True once the client socket is gone and everything was released. */
  get isFinished(): boolean {
    return this.finished
  }

  /** Relaying bytes as a tunnel (CONNECT established, or upgraded after a 101): counted by /metrics. */
  get inTunnel(): boolean {
    return this.postman.state === "Tunnel"
  }

  /** The Postman has released the client (it may still be lingering). */
  get isClosed(): boolean {
    return this.postman.closed
  }

  /** Graceful stop (worker shutdown): idle connections close now, exchanges in flight finish first. */
  shutdown(now: number = this.ctx.deadlines.now()): void {
    if (this.postman.closed) return
    this.guard(SHUTDOWN, now)
  }

  /** Stop now (grace period over): the core logs what was in flight, then every socket is destroyed. */
  abort(detail: string, now: number = this.ctx.deadlines.now()): void {
    if (!this.postman.closed) this.guard(ABORT, now, detail)
    this.destroyAll()
  }

  /** Deadlines callback: the core's deadline, or (once the core closed the client) the linger deadline. */
  onDeadline(now: number): void {
    if (this.postman.closed) this.destroyAll()
    else this.feed({ _tag: "Timeout" }, now)
  }

  // ---------------------------------------------------------------------------------------------
  // Feeding the core

  /** Feed one event, or queue it if actions are being carried out right now. (Hot path: no closure, no allocation.) */
  feed(event: Event, now?: number): void {
    if (this.busy) {
      ;(this.queue ??= []).push(event)
      return
    }
    this.busy = true
    try {
      if (!this.postman.closed) this.execute(this.postman.handle(event, now ?? this.ctx.deadlines.now()))
      this.drainQueue()
    } catch (e) {
      this.failed(e)
    } finally {
      this.busy = false
    }
  }

  /**
   * Carry out the actions of the engine's `start`, `shutdown` or `abort`, then feed what was queued
   * meanwhile. Named by a constant, not passed as a closure: `start` runs for every connection.
   */
  private guard(call: GuardedCall, now: number, detail = ""): void {
    if (this.busy) {
      // Called from inside an action (not done today): run after the current action list, never in its middle.
      queueMicrotask(() => this.guard(call, now, detail))
      return
    }
    this.busy = true
    try {
      const postman = this.postman
      this.execute(call === START ? postman.start(now) : call === SHUTDOWN ? postman.shutdown(now) : postman.abort(now, detail))
      this.drainQueue()
    } catch (e) {
      this.failed(e)
    } finally {
      this.busy = false
    }
  }

  private drainQueue(): void {
    const queue = this.queue
    if (queue === undefined) return
    while (queue.length > 0 && !this.postman.closed) {
      this.execute(this.postman.handle(queue.shift() as Event, this.ctx.deadlines.now()))
    }
    queue.length = 0
  }

  /** A throw from the core or from our own code is a bug: log it, count it, release the connection. */
  private failed(e: unknown): void {
    this.ctx.stats.errors++
    this.ctx.metrics?.count(INTERNAL_ERROR)
    this.ctx.log.message("error", `connection ${this.peer}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
    if (this.queue !== undefined) this.queue.length = 0
    this.destroyAll()
  }

  // ---------------------------------------------------------------------------------------------
  // Carrying out actions

  private execute(actions: ReadonlyArray<Action>): void {
    // Several writes in one action list (a response head and its body, a request head and the body
    // bytes queued behind it) go out as one writev: the socket is corked until the list is done.
    // A single action (a relayed chunk) is written directly.
    const batch = actions.length > 1
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i] as Action
      switch (a._tag) {
        case "Write": {
          const socket = this.openSocket(a.side)
          if (socket === undefined) break
          if (batch && socket.writableCorked === 0) {
            socket.cork()
            ;(this.corked ??= []).push(socket)
          }
          if (!socket.write(a.bytes)) {
            // 'drain' is listened for once a write was refused: an idle socket has one listener less.
            listenDrain(socket, a.side)
            ;(this.queue ??= []).push({ _tag: "Blocked", side: a.side })
          }
          break
        }
        case "HalfClose": {
          this.uncorkAll()
          this.openSocket(a.side)?.end()
          break
        }
        case "Close":
          this.uncorkAll() // nothing leaves our hands corked (the pool, a lingering close)
          if (a.side === "client") this.closeClient(a.graceful)
          else this.closeOrigin(a.graceful, a.reusable, a.pinned === true)
          break
        case "PauseReading":
          if (a.side === "origin") this.originPaused = true
          this.openSocket(a.side)?.pause()
          break
        case "ResumeReading":
          if (a.side === "origin") this.originPaused = false
          this.openSocket(a.side)?.resume()
          break
        case "SetDeadline":
          if (this.clientState === OPEN) this.ctx.deadlines.set(this, a.at)
          break
        case "Connect":
          this.connect(a.host, a.port, a.tunnel === true, a.receivedVia, a.fresh === true)
          break
        case "Log":
          countExchange(this.ctx.stats, this.ctx.metrics, a.record, this.originMark)
          this.originMark = 0
          // The client's "address:port" text is made only for a line that is written (not at --log-level none).
          if (this.ctx.log.accessEnabled) this.ctx.log.access(this.peer, a.record)
          break
        case "Authenticate": {
          // The verdict may be known at once (cache, no credentials, rate limit): fed after this action list.
          const auth = this.ctx.auth
          const verdict = auth === undefined ? noAuthenticator : auth.authenticate(a.credentials, this.clientAddress, this)
          if (verdict !== undefined) (this.queue ??= []).push(verdict)
          break
        }
      }
    }
    if (this.corked !== undefined) this.uncorkAll()
  }

  private uncorkAll(): void {
    const corked = this.corked
    if (corked === undefined) return
    this.corked = undefined
    for (const socket of corked) if (!socket.destroyed && socket.writableCorked > 0) socket.uncork()
  }

  /** The socket of `side` if the core may still use it (not released, not destroyed under us). */
  private openSocket(side: Side): net.Socket | undefined {
    const socket =
      side === "client" ? (this.clientState === OPEN ? this.client : undefined) : this.originState === OPEN ? this.origin : undefined
    return socket === undefined || socket.destroyed ? undefined : socket
  }

  private closeClient(graceful: boolean): void {
    if (this.clientState !== OPEN) return
    const client = this.client
    if (!graceful || client.destroyed) {
      this.clientState = GONE
      client.destroy()
      return
    }
    // Lingering close: send FIN after the pending bytes, keep reading (and discarding) so the peer's
    // late bytes do not make the kernel answer with RST and destroy the response we just sent.
    // Node destroys the socket once both directions are done; the linger deadline is the backstop.
    this.clientState = CLOSING
    // end() on a socket already half-closed by a HalfClose would only build an ERR_STREAM_ALREADY_FINISHED
    // error (with its stack trace) for nobody: measurably costly when tunnels come and go fast.
    if (!client.writableEnded) client.end()
    client.resume()
    this.ctx.deadlines.set(this, this.ctx.deadlines.now() + (this.ctx.lingerMs ?? LINGER_MS))
  }

  private closeOrigin(graceful: boolean, reusable: boolean, pinned: boolean): void {
    const socket = this.origin
    if (this.originState === CONNECTING) {
      // The core gave up on this attempt (timeout, client gone): the Dialer drops it and never answers.
      this.abandonOrigin()
      return
    }
    if (this.originState !== OPEN || socket === undefined) return
    const key = this.originKey
    if ((reusable || pinned) && key !== undefined && !socket.destroyed) {
      // At a message boundary: hand it to the Dialer (the worker's pool) instead of closing it.
      detachOrigin(socket)
      const idle = this.releaseOrigin()!
      if (pinned) this.ctx.dialer.keepPinned(key, idle, this)
      else this.ctx.dialer.keepIdle(key, idle)
      return
    }
    if (!graceful || socket.destroyed) {
      this.releaseOrigin()?.destroy()
      return
    }
    this.originState = CLOSING
    if (!socket.writableEnded) socket.end() // see closeClient
    socket.resume()
  }

  /** Forget the origin socket (it is closed, destroyed or pooled by the caller); returns it. */
  private releaseOrigin(): net.Socket | undefined {
    const socket = this.origin
    this.origin = undefined
    this.originState = IDLE
    return socket
  }

  private connect(host: string, port: number, tunnel: boolean, receivedVia: string | undefined, fresh: boolean): void {
    this.abandonOrigin()
    this.originState = CONNECTING
    const attempt = this.ctx.dialer.connect(host, port, tunnel, this, receivedVia, fresh)
    // Undefined: answered already (a pooled origin, a denial...), and the answer is queued behind this action list.
    if (attempt === undefined) return
    this.attempt = attempt
    if (this.ctx.metrics !== undefined) this.originMark = DIALLING
  }

  /** DialClient: start a TCP connection for the Dialer, armed for keepalive if this connection's sockets are. */
  openOrigin(address: Resolved, port: number): net.Socket {
    // The same delay the sweep arms with (one source of truth if the worker's armer is configured).
    return connectOrigin(address, port, this.keepaliveArmed, this.ctx.keepalive?.options.delayMs ?? KEEPALIVE_DELAY_MS)
  }

  /** DialClient: the Dialer's answer, an origin connected (and `rest`, bytes a parent relayed after its answer). */
  originConnected(socket: net.Socket, connected: Connected, poolKey: string | undefined, rest: Uint8Array | undefined): void {
    this.attempt = undefined
    this.originKey = poolKey
    if (this.originMark > 0) this.originMark = 0
    forgetOriginBuffer(this)
    adoptOrigin(socket, this)
    if (this.originPaused) socket.pause()
    else if (socket.readableFlowing !== true) socket.resume() // a pooled one is flowing already
    this.origin = socket
    this.originState = OPEN
    this.feed(connected)
    if (rest !== undefined && rest.length > 0 && socket === this.origin && this.originState === OPEN) {
      this.ctx.stats.bytesFromOrigins += rest.length
      this.feed({ _tag: "Received", side: "origin", bytes: rest })
    }
  }

  /** DialClient: the Dialer's answer, no origin (it counted why). */
  originFailed(failed: ConnectFailed): void {
    this.attempt = undefined
    this.originState = IDLE
    this.originMark = 0
    this.feed(failed)
  }

  /** Drop the current origin socket whatever its state (a new Connect, or the connection is finished). */
  private abandonOrigin(): void {
    const socket = this.origin
    const attempt = this.attempt
    this.attempt = undefined
    attempt?.cancel()
    this.origin = undefined
    this.originState = IDLE
    if (socket !== undefined && !socket.destroyed) socket.destroy()
  }

  /** Release everything now (linger over, grace over, or an internal error). */
  destroyAll(): void {
    this.abandonOrigin()
    if (this.clientState !== GONE) {
      this.clientState = GONE
      this.client.destroy()
    }
    this.maybeFinish()
  }

  // ---------------------------------------------------------------------------------------------
  // Socket callbacks (called by the listeners of Listeners.ts)

  /** @internal */ clientData(chunk: Buffer): void {
    if (this.clientState !== OPEN) return // lingering: discard
    // A full 64 KiB read means the client is streaming (an upload): from now on its reads go into our
    // buffers (ReadArena.ts). Done lazily because user-buffer mode costs every idle socket RSS, and they
    // gain nothing from it (docs/performance.md, "RSS per idle tunnel").
    if (chunk.length === SHARED_READ_BYTES && !this.clientStreaming && streamClient(this.client)) {
      this.clientStreaming = true
    }
    this.ctx.stats.bytesFromClients += chunk.length
    this.feed({ _tag: "Received", side: "client", bytes: chunk })
  }

  /** @internal */ clientEvent(event: Event): void {
    if (this.clientState === OPEN) this.feed(event)
  }

  /** @internal */ clientClose(): void {
    const wasOpen = this.clientState === OPEN
    this.clientState = GONE
    if (wasOpen && !this.postman.closed) this.feed({ _tag: "Errored", side: "client", message: "connection closed" })
    if (this.originState === CLOSING && this.deadlineIndex < 0) {
      // The origin is still flushing what the core sent it (a tunnel's last bytes): let it, within the linger bound.
      this.ctx.deadlines.set(this, this.ctx.deadlines.now() + (this.ctx.lingerMs ?? LINGER_MS))
    }
    this.maybeFinish()
  }

  /** @internal */ originRead(socket: net.Socket, buffer: Buffer, n: number): void {
    if (socket !== this.origin || this.originState !== OPEN) return
    this.ctx.stats.bytesFromOrigins += n
    if (this.originMark === 0 && this.ctx.metrics !== undefined) this.originMark = -this.ctx.deadlines.now()
    this.bulkRead("origin", this.client, buffer, n)
  }

  /** @internal */ clientRead(buffer: Buffer, n: number): void {
    if (this.clientState !== OPEN) return // lingering: discard
    this.ctx.stats.bytesFromClients += n
    this.bulkRead("client", this.origin, buffer, n)
  }

  /**
   * Where the next read of `socket` goes: this connection's bulk buffer for its client, or for its
   * current, open, streaming origin; else the shared buffer. A pooled socket adopted by another
   * connection asks its new owner, and two sockets never share a bulk buffer (forgetOriginBuffer).
   */
  /** @internal */ readBufferFor(socket: net.Socket): Buffer {
    return socket === this.client
      ? readBuffer(this, "client", this.clientState === OPEN)
      : socket === this.origin
        ? readBuffer(this, "origin", this.originState === OPEN)
        : shared
  }

  /**
   * `n` bytes read from `side` into `buffer`; `to` is the socket they will be written to. Bytes in the
   * shared buffer (or a buffer this side no longer owns) are copied; bytes in this side's own bulk
   * buffer go on without a copy, and the buffer is given up if anything still references them.
   */
  private bulkRead(side: Side, to: net.Socket | undefined, buffer: Buffer, n: number): void {
    if (!readIsViewable(this, side, buffer, n)) {
      this.feed({ _tag: "Received", side, bytes: Buffer.from(buffer.subarray(0, n)) })
      return
    }
    this.feed({ _tag: "Received", side, bytes: buffer.subarray(0, n) })
    // Still referenced (a queued or partial write, or the core keeps the bytes): the next read needs a new buffer.
    if (this.busy || (to !== undefined && to.writableLength > 0) || this.postman.bufferedBytes > 0) giveUpBulk(this, side)
  }

  /** @internal */ originEvent(socket: net.Socket, event: Event): void {
    if (socket === this.origin && this.originState === OPEN) this.feed(event)
  }

  /** @internal */ originClose(socket: net.Socket): void {
    if (socket !== this.origin) return
    const state = this.originState
    this.origin = undefined
    this.originState = IDLE
    if (state === OPEN) {
      // Closed under the core without the core releasing it (after an 'error' the core usually has).
      this.feed({ _tag: "Errored", side: "origin", message: "connection closed" })
    }
    this.maybeFinish()
  }

  /** Authenticator: the verdict on this connection's credentials, after a bcrypt verification. */
  authVerdict(verdict: AuthVerdict): void {
    if (this.clientState === OPEN && !this.finished) this.feed(verdict)
  }

  /** Finished once the client socket is gone and no released origin is still flushing. */
  private maybeFinish(): void {
    if (this.clientState === GONE && this.originState !== CLOSING) this.finish()
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.abandonOrigin()
    this.ctx.deadlines.cancel(this)
    if (this.queue !== undefined) this.queue.length = 0
    this.ctx.onFinished(this)
  }
}
