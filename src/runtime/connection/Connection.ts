/**
 * Connection: the socket adapter of ONE client connection.
 *
 * Owns the client socket, at most one origin socket at a time, and the `Postman` that decides what
 * happens to them. Socket callbacks become `Event`s fed synchronously to the Postman; the returned
 * `Action`s are carried out in order by a plain `switch`. No Effect, no promise, no closure per chunk:
 * the socket listeners are module-level functions that find their Connection through a symbol on the
 * socket, so an idle tunnel costs two sockets and one small object.
 *
 * Rules it keeps:
 * - Re-entrancy: an event that arises while actions are being carried out (`Blocked` from a write, a
 *   resolver answering synchronously) is queued and fed after the current action list, never in the middle.
 * - After the Postman closed a side, that socket's events are ignored (a gracefully closed socket keeps
 *   being read, and what arrives is discarded, until the peer's FIN or the linger deadline).
 * - Every origin attempt has a generation; a DNS or connect result that arrives after the Postman moved
 *   on (Close of the origin, a new Connect, the client gone) is dropped and its socket destroyed.
 * - A name with several addresses is dialled by a Happy Eyeballs race (internal/HappyEyeballs.ts) whose
 *   sockets are made by `openOrigin` like any other; the winner is adopted connected, and abandoning the
 *   attempt cancels the race (every attempt socket destroyed).
 * - Every socket we create or accept is destroyed exactly once (by us, or by Node after an error or both
 *   FINs) and its listeners are removed on 'close'. When the client socket is gone (and an origin the core
 *   released gracefully has flushed, bounded by LINGER_MS) the Connection is finished: anything left is
 *   destroyed, the deadline cancelled, and the owner told (`onFinished`).
 * - An origin the core releases as reusable goes to the worker's OriginPool (not destroyed); a Connect
 *   to the same host:port takes a pooled one first and reports `Connected { reused: true }`.
 * - A `Connect` the destination policy (DestinationPolicy.ts) denies is answered `ConnectFailed(denied)`
 *   without dialling: checked on the name before resolving, then on the resolved address, which is the
 *   address dialled (no second lookup). A pooled origin was checked when it was dialled (for HTTP: a
 *   tunnel that would take one checks its address again, as a tunnel's).
 * - With a parent proxy (ctx.upstream, Upstream.ts) a Connect may dial the parent instead: a plain
 *   request's socket is reported `Connected { upstream }` (pooled under the parent's key); a tunnel's only
 *   after the parent's 2xx to our CONNECT (internal/UpstreamConnect.ts); the parent's failures are
 *   `ConnectFailed(upstream)` naming it.
 * - `Authenticate` goes to the worker's Authenticator (proxy authentication on): a verdict known at once
 *   (cached credentials, none, rate limit) is queued like any event an action gives rise to; a later one
 *   (after bcrypt, off the event loop) is fed when it comes, and dropped once the client is gone.
 * - Writes of one action list are corked and leave as one writev.
 * - Sockets get TCP_NODELAY at once and TCP keepalive only once the connection has lived 10–20 s (the
 *   worker's KeepaliveArmer sweeps; `keepaliveSweep`): a short-lived connection would otherwise pay four
 *   setsockopt calls per socket for nothing. The sockets it has then are armed, and origins it dials
 *   later at birth; a pooled origin it adopts later is not (it carries one exchange at a time).
 * - Reads go into buffers we supply: origin sockets always (net `onread`), a client once it streams.
 *   Which buffer, and when bytes may go on without a copy, is internal/ReadArena.ts's policy over this
 *   class's `ReadState` fields; Connection only feeds the bytes and says when they are still referenced.
 * - An idle tunnel keeps as little as possible (RSS per idle tunnel, docs/performance.md): nothing per
 *   socket but the socket's own tag and listeners, all module-level (the Node-internals tricks that
 *   takes, one read-buffer generator for every socket and our 'end' listener in place of Node's no-op
 *   one, are internal/SocketHooks.ts's; 'drain' is listened for only after a refused write); no text
 *   that is only needed for a log line or the pool (made when needed).
 *
 * It must never: read a clock other than `Deadlines.now`, feed the Postman after `closed`, or throw into
 * a socket callback (a bug in the core is logged and the connection destroyed).
 */
import * as net from "node:net"
import type { AccessRecord, Action } from "../../core/actions.ts"
import type { ConnectFailure, Event, Side } from "../../core/events.ts"
import type { Limits } from "../../core/limits.ts"
import { Postman } from "../../core/postman.ts"
import type { AccessLog } from "../observe/AccessLog.ts"
import type { Deadlines, Timed } from "../timers/Deadlines.ts"
import type { MutableStats } from "../observe/Stats.ts"
import {
  forgetOriginBuffer,
  giveUpBulk,
  readAcceptedInto,
  readBuffer,
  readIsViewable,
  type ReadState,
  shared,
  SHARED_READ_BYTES,
} from "./ReadArena.ts"
import { defaultKeepalive, type KeepaliveArmer } from "./KeepaliveArmer.ts"
import { noticePooledData, type OriginPool } from "../dial/OriginPool.ts"
import type { ResolveError, ResolveFn, Resolved } from "../dial/Resolver.ts"
import { dial, type Dialing } from "../dial/HappyEyeballs.ts"
import {
  allowedAddresses,
  check,
  checkName,
  checkUnresolved,
  type Denial,
  denialCounter,
  type DestinationPolicy,
} from "../dial/DestinationPolicy.ts"
import { connectFailureSlot, counterSlot, outcomeSlot, requestSlot, type WorkerMetrics } from "../observe/Metrics.ts"

const POOL_HIT = counterSlot("originPoolLookups", { result: "hit" })
const POOL_MISS = counterSlot("originPoolLookups", { result: "miss" })
const INTERNAL_ERROR = counterSlot("internalErrors")
const TUNNEL_CLOSED = counterSlot("tunnelsClosed")
import { describeParentError, parentFailed, UpstreamHandshake } from "../dial/UpstreamConnect.ts"
import type { Parent, UpstreamRoutes } from "../dial/Upstream.ts"
import type { Authenticator, AuthVerdict, AuthWaiter } from "../auth/Authenticator.ts"
import { hostPort, peerOf } from "../access/Peer.ts"
import {
  kConnection,
  kListening,
  listenEnd,
  nextReadBuffer,
  noteRead,
  type SocketOwner,
  type TaggedSocket as OwnedSocket,
} from "./SocketHooks.ts"

/** How long a gracefully closed client socket may linger (flushing our last bytes, reading theirs) before it is destroyed. */
export const LINGER_MS = 5_000
/** TCP keepalive probes start after this much idle time (see KeepaliveArmer for when a socket is armed). */
export const KEEPALIVE_DELAY_MS = defaultKeepalive.delayMs

/** The part of the Postman API the adapter drives (a test may drive the adapter with a scripted double). */
export type Engine = Pick<Postman, "start" | "handle" | "shutdown" | "abort" | "closed" | "bufferedBytes" | "state">

/**
 * What every Connection of a worker shares: one object, whose settings (limits, via, policy, auth) the
 * worker replaces in place on a reload, so they are read when an exchange needs them, never kept.
 */
export interface ConnectionContext {
  readonly limits: Limits
  readonly via: string
  readonly deadlines: Deadlines
  readonly resolve: ResolveFn
  readonly log: AccessLog
  readonly stats: MutableStats
  /** Called once, when the client socket is gone and everything of this connection is released. */
  readonly onFinished: (connection: Connection) => void
  /** How long a gracefully released socket may linger (default LINGER_MS). */
  readonly lingerMs?: number
  /** Test seam: build the engine of a connection (default: a real Postman with `limits` and `via`). */
  readonly makeEngine?: () => Engine
  /** Idle origin connections of this worker; without it, reusable origins are simply closed. */
  readonly pool?: OriginPool
  /** Sweeps the connections to arm TCP keepalive on long-lived ones; without it, sockets are armed at once. */
  readonly keepalive?: KeepaliveArmer
  /**
   * Where origins may be dialled (checked on the name before resolving, and on the resolved address right
   * before it is dialled); without it, anywhere. Set by the worker once it listens (its ports are part of it).
   */
  policy?: DestinationPolicy | undefined
  /** The worker's figures for /metrics (Metrics.ts); without it, nothing is measured. */
  readonly metrics?: WorkerMetrics
  /** Told the error code of every failed origin connect (EMFILE/ENFILE pause accepting: ConnectionLimits.ts). */
  readonly onConnectError?: (code: string | undefined) => void
  /** The parent proxy (`--upstream`) and the destinations that skip it; without it, every Connect goes direct. */
  readonly upstream?: UpstreamRoutes
  /** Proxy authentication: when present, every request's credentials are checked (the core's `Authenticate`). */
  readonly auth?: Authenticator | undefined
}

/** Map a connect error code to the reason the core understands. */
export const connectFailure = (code: string | undefined): ConnectFailure => {
  switch (code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_NODATA":
    case "ENODATA":
      return "unresolved"
    case "ECONNREFUSED":
      return "refused"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
    case "EHOSTDOWN":
    case "ENETDOWN":
      return "unreachable"
    case "ETIMEDOUT":
      return "timeout"
    default:
      return "error"
  }
}

/** The verdict when the core asks for authentication that this worker cannot check (never, once configured). */
const noAuthenticator: AuthVerdict = { _tag: "AuthenticationFailed", reason: "unavailable", message: "no user file is loaded" }

/** Where a socket slot stands, as far as this adapter is concerned. */
const IDLE = 0 // no socket (origin only)
const CONNECTING = 1 // origin: resolving or dialling
const OPEN = 2 // the core uses it
const CLOSING = 3 // the core released it gracefully: flushing and draining, events ignored
const GONE = 4 // destroyed (or being destroyed); waiting for nothing
type SlotState = typeof IDLE | typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof GONE

/** A socket whose owner is a Connection (internal/SocketHooks.ts). */
type TaggedSocket = OwnedSocket<Connection>

/** Where the pool keeps idle connections to `host`:`port` (as the core asked for them). */
const poolKey = (host: string, port: number): string => `${host}:${port}`

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))
const errorCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

export class Connection implements Timed, AuthWaiter, SocketOwner, ReadState {
  // Timed (owned by Deadlines)
  deadlineIndex = -1
  deadlineAt = 0

  readonly client: net.Socket
  private readonly ctx: ConnectionContext
  private readonly postman: Engine

  private clientState: SlotState = OPEN
  private origin: net.Socket | undefined = undefined
  private originState: SlotState = IDLE
  /** Incremented by every Connect and every abandonment; a result of an older generation is stale. */
  private connectGeneration = 0
  private originPort = 0
  /** Host of the current origin as the core asked for it (with originPort: the pool key). */
  private originHost = ""
  /** The current origin carries a CONNECT tunnel (the destination policy opens other ports to tunnels). */
  private originTunnel = false
  /** The client's "address:port" once something was logged (see `peer`). */
  private peerText: string | undefined = undefined
  private originPaused = false
  /** Keepalive sweeps seen (KeepaliveArmer); the sockets are armed at the second. */
  private keepaliveSweeps = 0
  /** A Happy Eyeballs race while a name with several addresses is dialled (origin is undefined then). */
  private dialing: Dialing | undefined = undefined
  /** The parent proxy the current origin socket leads to (Upstream.ts), if any. */
  private parent: Parent | undefined = undefined
  /** A tunnel through the parent, until the parent answered our CONNECT (internal/UpstreamConnect.ts). */
  private handshake: UpstreamHandshake | undefined = undefined

  private busy = false
  private queue: Array<Event> | undefined = undefined
  private finished = false

  /**
   * Metrics timing (core clock, ms), one field so that an idle tunnel carries one number, not two:
   * > 0: an origin dial started at this time and is in progress; < 0: the origin's first bytes since
   * the last finished exchange arrived at minus this time; 0: neither.
   */
  private originMark = 0

  /** PROXY protocol (issue 10 §2): the client's address from the load balancer's header, if there was one. */
  private readonly proxiedAddress: string | undefined = undefined
  /** Sockets corked by the action list being carried out. */
  private corked: Array<net.Socket> | undefined = undefined

  // ReadState: the read buffers of a streaming side (internal/ReadArena.ts decides; nothing else touches them).
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
    const tagged = client as TaggedSocket
    tagged[kConnection] = this
    client.on("data", onClientData)
    listenEnd(client, onClientEnd)
    client.on("error", onClientError)
    client.on("close", onClientClose)
    this.guard(() => this.postman.start(ctx.deadlines.now()))
  }

  /** The client's IP address (for per-client limits and rate limits): the PROXY header's, else the socket's peer. */
  get clientAddress(): string {
    return this.proxiedAddress ?? this.client.remoteAddress ?? "?"
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
    this.guard(() => this.postman.shutdown(now))
  }

  /** Stop now (grace period over): the core logs what was in flight, then every socket is destroyed. */
  abort(detail: string, now: number = this.ctx.deadlines.now()): void {
    if (!this.postman.closed) this.guard(() => this.postman.abort(now, detail))
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

  /** Carry out `make()`'s actions (start, shutdown, abort), then feed what was queued meanwhile. */
  private guard(make: () => ReadonlyArray<Action>): void {
    if (this.busy) {
      // Called from inside an action (not done today): run after the current action list, never in its middle.
      queueMicrotask(() => this.guard(make))
      return
    }
    this.busy = true
    try {
      this.execute(make())
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
            const onDrain = a.side === "client" ? onClientDrain : onOriginDrain
            if (socket.listenerCount("drain", onDrain) === 0) socket.on("drain", onDrain)
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
          else this.closeOrigin(a.graceful, a.reusable)
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
          this.connect(a.host, a.port, a.tunnel === true)
          break
        case "Log": {
          const stats = this.ctx.stats
          const r = a.record
          if (r.kind === "tunnel") stats.tunnels++
          else stats.requests++
          // A 407 is the normal first step of a challenge, counted apart (authFailed), not as an error.
          if (r.outcome !== "ok" && r.outcome !== "shutdown" && r.outcome !== "unauthenticated") stats.errors++
          if (this.ctx.metrics !== undefined) this.measure(this.ctx.metrics, r)
          this.ctx.log.access(this.peer, r)
          break
        }
        case "Authenticate": {
          // The verdict may be known at once (cache, no credentials, rate limit): fed after this action list.
          const auth = this.ctx.auth
          const verdict = auth === undefined ? noAuthenticator : auth.authenticate(a.credentials, this.client.remoteAddress ?? "", this)
          if (verdict !== undefined) (this.queue ??= []).push(verdict)
          break
        }
      }
    }
    if (this.corked !== undefined) this.uncorkAll()
  }

  /** Count a finished exchange (a Log action) in the worker's metrics. */
  private measure(m: WorkerMetrics, r: AccessRecord): void {
    m.count(requestSlot(r.method, r.status))
    m.count(outcomeSlot(r.outcome))
    if (r.kind === "http") {
      m.observe("requestDuration", r.endedAt - r.startedAt)
      const firstByteAt = -this.originMark
      if (firstByteAt > 0 && firstByteAt >= r.startedAt && r.status !== 0) m.observe("firstByte", firstByteAt - r.startedAt)
    } else if (r.status === 200 || r.status === 101) {
      // Established (a tunnel gets 200 once the origin is connected; an upgrade, 101).
      m.count(TUNNEL_CLOSED)
      m.observe("tunnelDuration", r.endedAt - r.startedAt)
    }
    // The exchange ended while its origin was still being dialled: the core gave up on the dial.
    if (this.originMark > 0 && r.outcome === "timeout") m.count(connectFailureSlot("timeout"))
    this.originMark = 0
  }

  /** Tell the core a dial failed (and count why). */
  private connectFailed(reason: ConnectFailure, message: string): void {
    this.originMark = 0
    this.ctx.metrics?.count(connectFailureSlot(reason))
    this.feed({ _tag: "ConnectFailed", reason, message })
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

  private closeOrigin(graceful: boolean, reusable: boolean): void {
    const socket = this.origin
    if (this.originState === CONNECTING) {
      // The core gave up on this attempt (timeout, client gone): whatever comes back is stale.
      this.cancelDial()
      this.connectGeneration++
      this.releaseOrigin()?.destroy()
      return
    }
    if (this.originState !== OPEN || socket === undefined) return
    const pool = this.ctx.pool
    if (reusable && pool !== undefined && !socket.destroyed) {
      // At a message boundary: hand it to the worker's pool instead of closing it.
      detachOrigin(socket as TaggedSocket)
      pool.put(this.parent?.poolKey ?? poolKey(this.originHost, this.originPort), this.releaseOrigin()!)
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

  private connect(host: string, port: number, tunnel: boolean): void {
    this.abandonOrigin()
    const generation = ++this.connectGeneration
    this.originState = CONNECTING
    this.originPort = port
    this.originHost = host
    this.originTunnel = tunnel
    const parent = (this.parent = this.ctx.upstream?.parentFor(host, port))
    this.handshake = undefined
    // The destination policy, before anything is looked up or sent: a name a deny rule names is never
    // resolved; a destination that goes upstream is judged here in full, on `host` as the client wrote it
    // (the parent resolves the name), and resolved() then dials the PARENT's address unchecked.
    const policy = this.ctx.policy
    if (policy !== undefined) {
      const destination = { host, port, kind: tunnel ? ("connect" as const) : ("http" as const) }
      const early = parent === undefined ? checkName(policy, destination) : checkUnresolved(policy, destination)
      if (early !== undefined) return this.denied(early)
    }
    const pool = this.ctx.pool
    // A tunnel through the parent needs a CONNECT of its own: never a pooled connection to the parent.
    const key = parent === undefined ? poolKey(host, port) : tunnel ? undefined : parent.poolKey
    const pooled = pool === undefined || key === undefined ? undefined : pool.take(key)
    this.ctx.metrics?.count(pooled !== undefined ? POOL_HIT : POOL_MISS)
    if (pooled !== undefined) {
      // Pooled origins were dialled for HTTP exchanges; a tunnel has other ports open (DestinationPolicy),
      // so it checks the pooled socket's address as a tunnel's and leaves a denied one in the pool.
      const denial =
        tunnel && parent === undefined && policy !== undefined
          ? check(policy, { host, address: pooled.remoteAddress ?? "", port, kind: "connect" })
          : undefined
      if (denial !== undefined) {
        pool?.put(poolKey(host, port), pooled)
        return this.denied(denial)
      }
      // A kept-alive connection to the same origin: no DNS, no handshake. Connected is queued
      // (we are inside the action list) and fed after the current actions.
      this.adoptOrigin(pooled as TaggedSocket)
      this.originState = OPEN
      this.feed(parent === undefined ? { _tag: "Connected", reused: true } : { _tag: "Connected", reused: true, upstream: parent.hop })
      return
    }
    if (parent !== undefined) {
      this.originPort = parent.port
      if (tunnel) this.handshake = new UpstreamHandshake(host, port, parent, this.ctx.via, this.ctx.limits)
      if (this.ctx.metrics !== undefined) this.originMark = this.ctx.deadlines.now()
      this.ctx.resolve(parent.host, (error, addresses) => {
        if (generation !== this.connectGeneration || this.originState !== CONNECTING || this.finished) return
        if (error !== undefined || addresses.length === 0) this.failParent(`could not be resolved: ${error?.message ?? "no address"}`)
        else this.resolved(generation, undefined, addresses)
      })
      return
    }
    if (this.ctx.metrics !== undefined) this.originMark = this.ctx.deadlines.now()
    this.ctx.resolve(host, (error, addresses) => this.resolved(generation, error, addresses))
  }

  /** The parent failed before the origin connection was usable: drop the attempt, tell the core. */
  private failParent(what: string): void {
    const parent = this.parent
    if (parent === undefined) return
    this.handshake = undefined
    this.abandonOrigin()
    this.feed(parentFailed(parent, what))
  }

  /** The parent's answer to our CONNECT, as it arrives (the socket is still CONNECTING for the core). */
  private handshakeRead(handshake: UpstreamHandshake, socket: net.Socket, buffer: Buffer, n: number): void {
    const verdict = handshake.push(Buffer.from(buffer.subarray(0, n)))
    switch (verdict._tag) {
      case "NeedMore":
        return
      case "Refused":
        return this.failParent(verdict.what)
      case "Established":
        this.handshake = undefined
        this.originState = OPEN
        this.feed({ _tag: "Connected" })
        if (verdict.rest.length > 0 && socket === this.origin && this.originState === OPEN) {
          this.ctx.stats.bytesFromOrigins += verdict.rest.length
          this.feed({ _tag: "Received", side: "origin", bytes: verdict.rest })
        }
    }
  }

  /** Make `socket` this connection's origin: our listeners, our paused state. */
  private adoptOrigin(socket: TaggedSocket): void {
    forgetOriginBuffer(this)
    socket[kConnection] = this
    if (socket[kListening] === undefined) {
      // Once per socket: a pooled origin changes owner once per request; its listeners stay and find
      // the current owner (or none) through kConnection. ('drain' is added on the first refused write.)
      socket[kListening] = true
      socket.on("connect", onOriginConnect)
      listenEnd(socket, onOriginEnd)
      socket.on("error", onOriginError)
      socket.on("close", onOriginClose)
    }
    if (this.originPaused) socket.pause()
    else if (socket.readableFlowing !== true) socket.resume() // a pooled one is flowing already
    this.origin = socket
  }

  private resolved(generation: number, error: ResolveError | undefined, resolved: ReadonlyArray<Resolved>): void {
    let addresses = resolved
    if (generation !== this.connectGeneration || this.originState !== CONNECTING || this.finished) return
    if (error !== undefined || addresses.length === 0) {
      this.originState = IDLE
      this.connectFailed("unresolved", error?.message ?? "no address")
      return
    }
    // The verdict is on the very addresses dialled next (no second lookup in between: DNS cannot change them).
    const policy = this.parent === undefined ? this.ctx.policy : undefined // the parent's address is not the destination
    if (policy !== undefined) {
      const destination = {
        host: this.originHost,
        port: this.originPort,
        kind: this.originTunnel ? ("connect" as const) : ("http" as const),
      }
      if (addresses.length === 1) {
        const denial = check(policy, { ...destination, address: addresses[0]!.address })
        if (denial !== undefined) return this.denied(denial)
      } else {
        const verdict = allowedAddresses(policy, destination, addresses)
        if (verdict.denial !== undefined) return this.denied(verdict.denial)
        addresses = verdict.allowed
      }
    }
    if (addresses.length > 1) {
      // Several addresses: race them (internal/HappyEyeballs.ts); the winner comes back connected.
      this.dialing = dial(
        addresses,
        (address) => this.openOrigin(address),
        (e, socket) => this.dialled(generation, e, socket),
      )
      return
    }
    let socket: TaggedSocket
    try {
      socket = this.openOrigin(addresses[0]!)
    } catch (e) {
      // Invalid options (a port out of range...): no socket exists.
      this.originState = IDLE
      this.connectFailed("error", errorMessage(e))
      return
    }
    this.adoptOrigin(socket)
  }

  /** Start connecting to `address` at the current origin port: every origin socket we dial is made here. */
  private openOrigin(address: Resolved): TaggedSocket {
    return net.connect({
      host: address.address,
      port: this.originPort,
      family: address.family,
      noDelay: true,
      keepAlive: this.keepaliveArmed,
      // The same delay the sweep arms with (one source of truth if the worker's armer is configured).
      keepAliveInitialDelay: this.ctx.keepalive?.options.delayMs ?? KEEPALIVE_DELAY_MS,
      allowHalfOpen: true,
      onread: { buffer: nextReadBuffer, callback: onOriginRead },
    })
  }

  /** The Happy Eyeballs race of a Connect is over: its winner, connected, or the last attempt's error. */
  private dialled(generation: number, error: Error | undefined, socket: net.Socket | undefined): void {
    this.dialing = undefined
    if (generation !== this.connectGeneration || this.originState !== CONNECTING || this.finished) {
      socket?.destroy() // (cannot happen: abandoning an attempt cancels the race)
      return
    }
    if (socket === undefined) {
      this.originState = IDLE
      this.ctx.onConnectError?.(errorCode(error))
      if (this.parent !== undefined) this.failParent(describeParentError(errorCode(error), errorMessage(error)))
      else this.connectFailed(connectFailure(errorCode(error)), errorMessage(error))
      return
    }
    // The winner is connected already: from here on it is like any origin socket's 'connect'.
    this.adoptOrigin(socket as TaggedSocket)
    this.originConnect(socket)
  }

  /** Stop a Happy Eyeballs race in progress (the attempt is abandoned). */
  private cancelDial(): void {
    const dialing = this.dialing
    this.dialing = undefined
    dialing?.cancel()
  }

  /** The destination policy said no: nothing was dialled; the core answers 403 with the reason. */
  private denied(denial: Denial): void {
    this.originState = IDLE
    this.ctx.stats[denialCounter[denial.kind]]++
    this.originMark = 0
    this.feed({ _tag: "ConnectFailed", reason: "denied", message: denial.message })
  }

  /** Drop the current origin socket whatever its state (a new Connect, or the connection is finished). */
  private abandonOrigin(): void {
    const socket = this.origin
    this.cancelDial()
    this.connectGeneration++
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
  // Socket callbacks (called by the module-level listeners below)

  /** @internal */ clientData(chunk: Buffer): void {
    if (this.clientState !== OPEN) return // lingering: discard
    // A full 64 KiB read means the client is streaming (an upload): from now on its reads go into our
    // buffers (internal/ReadArena.ts). Done lazily because user-buffer mode costs idle sockets ~5 KB
    // of RSS each (measured), and they gain nothing from it.
    if (chunk.length === SHARED_READ_BYTES && !this.clientStreaming && readAcceptedInto(this.client, nextReadBuffer, onClientRead)) {
      this.clientStreaming = true
    }
    this.ctx.stats.bytesFromClients += chunk.length
    this.feed({ _tag: "Received", side: "client", bytes: chunk })
  }

  /** @internal */ clientEnd(): void {
    if (this.clientState === OPEN) this.feed({ _tag: "Ended", side: "client" })
  }

  /** @internal */ clientDrain(): void {
    if (this.clientState === OPEN) this.feed({ _tag: "Drained", side: "client" })
  }

  /** @internal */ clientError(error: Error): void {
    if (this.clientState === OPEN) this.feed({ _tag: "Errored", side: "client", message: errorMessage(error) })
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

  /** @internal */ originConnect(socket: net.Socket): void {
    if (socket !== this.origin || this.originState !== CONNECTING) {
      socket.destroy() // a late answer to an attempt the core gave up on
      return
    }
    if (this.handshake !== undefined) {
      // A tunnel through the parent: Connected waits for the parent's 2xx (handshakeRead).
      socket.write(this.handshake.request)
      return
    }
    this.originState = OPEN
    if (this.originMark > 0) {
      this.ctx.metrics?.observe("originConnect", this.ctx.deadlines.now() - this.originMark)
      this.originMark = 0
    }
    const parent = this.parent
    this.feed(parent === undefined ? { _tag: "Connected" } : { _tag: "Connected", upstream: parent.hop })
  }

  /** @internal */ originRead(socket: net.Socket, buffer: Buffer, n: number): void {
    const handshake = this.handshake
    if (handshake !== undefined && socket === this.origin && this.originState === CONNECTING) {
      return this.handshakeRead(handshake, socket, buffer, n)
    }
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

  /** @internal */ originEnd(socket: net.Socket): void {
    if (socket === this.origin && this.originState === CONNECTING && this.handshake !== undefined) {
      return this.failParent("closed the connection without answering CONNECT")
    }
    if (socket === this.origin && this.originState === OPEN) this.feed({ _tag: "Ended", side: "origin" })
  }

  /** @internal */ originDrain(socket: net.Socket): void {
    if (socket === this.origin && this.originState === OPEN) this.feed({ _tag: "Drained", side: "origin" })
  }

  /** @internal */ originError(socket: net.Socket, error: Error): void {
    if (socket !== this.origin) return
    if (this.originState === CONNECTING) {
      // Node destroys the socket itself after an error.
      this.originState = IDLE
      this.origin = undefined
      this.connectGeneration++
      this.ctx.onConnectError?.(errorCode(error))
      if (this.parent !== undefined) this.failParent(describeParentError(errorCode(error), errorMessage(error)))
      else this.connectFailed(connectFailure(errorCode(error)), errorMessage(error))
    } else if (this.originState === OPEN) {
      // The socket is being destroyed by Node; the core answers with Close(origin), which finds it destroyed.
      this.feed({ _tag: "Errored", side: "origin", message: errorMessage(error) })
    }
  }

  /** @internal */ originClose(socket: net.Socket): void {
    if (socket !== this.origin) return
    const state = this.originState
    this.origin = undefined
    this.originState = IDLE
    if (state === CONNECTING) {
      this.connectGeneration++
      if (this.parent !== undefined)
        this.failParent(
          this.handshake !== undefined ? "closed the connection without answering CONNECT" : "closed the connection while connecting",
        )
      else this.connectFailed("error", "connection closed while connecting")
    } else if (state === OPEN) {
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

// -------------------------------------------------------------------------------------------------
// Module-level listeners: `this` is the socket (EventEmitter calls listeners with the emitter as `this`).

function owner(socket: TaggedSocket): Connection | undefined {
  return socket[kConnection]
}

function onClientData(this: TaggedSocket, chunk: Buffer): void {
  owner(this)?.clientData(chunk)
}
function onClientEnd(this: TaggedSocket): void {
  owner(this)?.clientEnd()
}
function onClientDrain(this: TaggedSocket): void {
  owner(this)?.clientDrain()
}
function onClientError(this: TaggedSocket, error: Error): void {
  owner(this)?.clientError(error)
}
function onClientClose(this: TaggedSocket): void {
  const connection = owner(this)
  this.removeListener("data", onClientData)
  this.removeListener("end", onClientEnd)
  this.removeListener("drain", onClientDrain)
  this.removeListener("error", onClientError)
  this.removeListener("close", onClientClose)
  this[kConnection] = undefined
  connection?.clientClose()
}

function onOriginConnect(this: TaggedSocket): void {
  const connection = owner(this)
  if (connection === undefined) this.destroy()
  else connection.originConnect(this)
}
// Origin sockets deliver their bytes through `onread` (onOriginRead), never 'data'.
function onOriginEnd(this: TaggedSocket): void {
  owner(this)?.originEnd(this)
}
/** Read callback of client sockets (internal/ReadArena.ts): `this` is the socket. */
function onClientRead(this: TaggedSocket, n: number, buffer: Buffer): boolean {
  owner(this)?.clientRead(buffer, n)
  noteRead(this)
  return true
}

/** `onread` callback of origin sockets: `this` is the socket. */
function onOriginRead(this: TaggedSocket, n: number, buffer: Buffer): boolean {
  const connection = owner(this)
  if (connection !== undefined) connection.originRead(this, buffer, n)
  else noticePooledData(this) // an idle pooled connection spoke: the pool drops it
  noteRead(this)
  return true
}
function onOriginDrain(this: TaggedSocket): void {
  owner(this)?.originDrain(this)
}
function onOriginError(this: TaggedSocket, error: Error): void {
  owner(this)?.originError(this, error)
}
function onOriginClose(this: TaggedSocket): void {
  const connection = owner(this)
  detachOrigin(this)
  connection?.originClose(this)
}

/**
 * The origin socket has no owner any more (closed, or handed to the pool): our listeners stay on it
 * and do nothing until a Connection adopts it again.
 */
function detachOrigin(socket: TaggedSocket): void {
  socket[kConnection] = undefined
}
