/**
 * Dialer: from the core's `Connect` to a usable origin connection, or the reason there is none.
 *
 * The dial/ folder owns the way to an origin: this Dialer, the resolver (Resolver.ts), the Happy Eyeballs
 * race (HappyEyeballs.ts), the destination policy and its rules (DestinationPolicy.ts, DestinationRules.ts),
 * the idle connections kept for reuse (OriginPool.ts), and parent proxies with their CONNECT handshake
 * (Upstream.ts, UpstreamConnect.ts). It makes no socket options and reads no client bytes: the
 * `DialClient` (a Connection) builds each origin socket, with its read buffers, and gets it back connected.
 * May import: timers/, observe/, access/, src/core.
 *
 * Theory of operation. `connect(host, port, tunnel, client)` goes through these steps, the first answer wins:
 *   1. route: the parent proxy for this destination (Upstream.ts), or none (direct); with an embedding
 *      program's route hook (RouteHook.ts), its decision first: it may refuse (403), choose a parent or
 *      none, or leave it to the configuration; a hook that fails is answered `unrouted` (503);
 *   2. judge before any lookup: a direct destination's name (`checkName`: a name a deny rule names is
 *      never resolved); a destination that goes upstream in full (`checkUnresolved`: the parent resolves
 *      the name, so this is the only verdict it gets);
 *   3. reuse: an idle pooled connection to the same host:port (to the parent, for a plain request through
 *      it) is answered `Connected { reused }` at once: no DNS, no handshake. For a plain request, the
 *      client's own pinned connection comes first (one the core released `pinned`: NTLM or Negotiate
 *      authenticated it; `keepPinned`), kept in the pool under a key only this client asks for. A direct
 *      connection is judged again, its address by the policy in force now and for what it will carry now,
 *      as a fresh dial would be: a reload may have added a rule since it was dialled. A denied one is not
 *      used, and the Connect goes on as if there were none (a tunnel leaves it in the pool: it was dialled
 *      for plain requests, which may still go there). A tunnel through the parent needs a CONNECT of its
 *      own: never pooled. A `fresh` Connect (the core's one retry after a reused connection failed)
 *      skips this step: the pool's other connections to that origin are likely dead too;
 *   4. resolve the origin's name (or the parent's);
 *   5. judge the resolved addresses (direct only; the parent's address is not the destination): the
 *      verdict is on the very addresses dialled next, with no second lookup in between;
 *   6. dial them, every address list by a Happy Eyeballs race (one address is a race of one), with
 *      sockets the client makes;
 *   7. through a parent, a tunnel sends CONNECT and is answered `Connected` after the parent's 2xx; what
 *      the parent relayed after its head is handed over with the socket.
 * The answer is one call of `client.originConnected` or `client.originFailed`: at once when it is known
 * at once (a pooled connection, a denied name, a resolver that answers from its cache), else later. A
 * `ConnectFailed` says why: `denied` (the policy; counted per kind in the worker's stats), `upstream`
 * (naming the parent, never its credentials), `unrouted` (the route hook failed), or what the socket error
 * means (`connectFailure`).
 *
 * It must never: answer twice, answer after `cancel()` (a route hook's late decision included), leave a socket it dialled alive once the attempt
 * failed or was cancelled, resolve a name the policy denies, or dial an address the policy denies.
 */
import type * as net from "node:net"
import type { Limits } from "../../core/limits.ts"
import type { ConnectFailure, Event } from "../../core/events.ts"
import type { Deadlines } from "../timers/Deadlines.ts"
import type { MutableStats } from "../observe/Stats.ts"
import { connectFailureSlot, counterSlot, type WorkerMetrics } from "../observe/Metrics.ts"
import {
  allowedAddresses,
  check,
  checkName,
  checkUnresolved,
  type Denial,
  denialCounter,
  type DestinationPolicy,
} from "./DestinationPolicy.ts"
import { dial, type Dialing } from "./HappyEyeballs.ts"
import { noticePooledData, type OriginPool } from "./OriginPool.ts"
import type { ResolveError, ResolveFn, Resolved } from "./Resolver.ts"
import type { Parent, UpstreamRoutes } from "./Upstream.ts"
import type { Route, RouteHook } from "./RouteHook.ts"
import type { PendingHook } from "../timers/HookCall.ts"
import type { ExchangeInfo } from "../../core/postman.ts"
import { describeParentError, parentFailed, UpstreamHandshake } from "./UpstreamConnect.ts"

export type Connected = Extract<Event, { _tag: "Connected" }>
export type ConnectFailed = Extract<Event, { _tag: "ConnectFailed" }>

/** Who asks for an origin (a Connection): it makes the sockets and takes the one answer. */
export interface DialClient {
  /** The client's address (the PROXY header's, else the socket's peer): who asks, for rules about clients. */
  readonly clientAddress: string
  /** The exchange the Connect is for (its method and authenticated user), told to a route hook. */
  readonly exchange?: ExchangeInfo | undefined
  /**
   * Set by the Dialer the first time it keeps a connection pinned to this client (`keepPinned`): the
   * mark of this client's keys in the pool. Undefined until then.
   */
  pinTag: string | undefined
  /**
   * Start a TCP connection to `address`:`port` with the client's own socket options and read buffers.
   * May throw (invalid options): that address failed. The socket is the Dialer's until it is handed back.
   */
  openOrigin(address: Resolved, port: number): net.Socket
  /**
   * The answer when there is an origin: `socket` is connected and carries none of the Dialer's listeners.
   * `poolKey`: where the socket may be kept idle once the core releases it as reusable (`keepIdle`; a
   * pinned connection's key is this client's own, so it stays pinned); undefined when it must not be
   * kept (a tunnel's, or no pool). `rest`: bytes a parent relayed from the
   * origin right after its answer to our CONNECT, already read from the socket.
   */
  originConnected(socket: net.Socket, connected: Connected, poolKey: string | undefined, rest: Uint8Array | undefined): void
  /** The answer when there is none: nothing of the attempt is left. */
  originFailed(failed: ConnectFailed): void
}

/** A `connect` still in progress (resolving, dialling, or waiting for the parent's answer). */
export interface DialAttempt {
  /** Give up: every socket of the attempt is destroyed and the client is not called, now or later. */
  cancel(): void
}

/** What a worker's Dialer works with (ConnectionContext's counterpart for the way to an origin). */
export interface DialerOptions {
  readonly resolve: ResolveFn
  /** The clock of the connect-duration histogram. */
  readonly deadlines: Deadlines
  /** Denials are counted here, by kind. */
  readonly stats: MutableStats
  /** Our pseudonym in the Via of a CONNECT to the parent (loop detection there). */
  readonly via: string
  /** How large the parent's answer to our CONNECT may be. */
  readonly limits: Pick<Limits, "maxHeadBytes" | "maxHeaders">
  /** Idle origin connections of the worker; without it, nothing is reused or kept. */
  readonly pool?: OriginPool
  /** Where origins may be dialled; without it, anywhere. */
  readonly policy?: DestinationPolicy | undefined
  /** The parent proxy and the destinations that skip it; without it, every Connect goes direct. */
  readonly upstream?: UpstreamRoutes
  /** An embedding program's route hook (RouteHook.ts), asked before each Connect is dialled; without it, `upstream` decides. */
  readonly route?: RouteHook
  /** The worker's figures for /metrics; without it, nothing is measured. */
  readonly metrics?: WorkerMetrics
  /** Told the error code of every failed connect (EMFILE/ENFILE pause accepting: ConnectionLimits.ts). */
  readonly onConnectError?: (code: string | undefined) => void
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

const POOL_HIT = counterSlot("originPoolLookups", { result: "hit" })
const POOL_MISS = counterSlot("originPoolLookups", { result: "miss" })

// The answers that carry nothing of their own are made once.
const CONNECTED: Connected = { _tag: "Connected" }
const REUSED: Connected = { _tag: "Connected", reused: true }

/** Where the pool keeps idle connections to `host`:`port` (as the core asked for them). */
const poolKey = (host: string, port: number): string => `${host}:${port}`

/** Marks of the clients that pinned a connection, unique in this worker (its pool). */
let pinTags = 0
const PINNED = "pinned to "
/**
 * Where the pool keeps a connection pinned to one client: a key no other client asks for (a host has no
 * space, and a parent's key starts with "upstream "). A pinned key stays the same when pinned again.
 */
const pinnedKey = (key: string, tag: string): string => (key.startsWith(PINNED) ? key : `${PINNED}${tag}: ${key}`)

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))
const errorCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

export class Dialer {
  readonly options: DialerOptions
  /** Replaced by the worker once it listens: its real ports are part of the policy (no dialling ourselves). */
  policy: DestinationPolicy | undefined

  constructor(options: DialerOptions) {
    this.options = options
    this.policy = options.policy
  }

  /** A Dialer like this one with other settings (a reload: new connections dial with them, open ones keep theirs). */
  with(changes: Partial<Pick<DialerOptions, "via" | "limits" | "policy">>): Dialer {
    return new Dialer({ ...this.options, policy: this.policy, ...changes })
  }

  /**
   * Find an origin for `host`:`port` (a tunnel's when `tunnel`) and answer `client` once (see the module
   * comment). `receivedVia`: the Via values the client's request came with (the core's `Connect`), which a
   * CONNECT to a parent carries before our hop, so a loop through parents meets our pseudonym. `fresh`:
   * dial, never take a pooled connection (the core's `Connect.fresh`, design §6.3).
   * Undefined when the answer was given already, before returning; else the attempt in progress.
   */
  connect(host: string, port: number, tunnel: boolean, client: DialClient, receivedVia?: string, fresh = false): DialAttempt | undefined {
    const route = this.options.route
    if (route === undefined) {
      return this.connectVia(host, port, tunnel, client, this.options.upstream?.parentFor(host, port), receivedVia, fresh)
    }
    const exchange = client.exchange
    const request = {
      method: exchange?.method ?? (tunnel ? "CONNECT" : "GET"),
      host,
      port,
      tunnel,
      user: exchange?.user,
      client: client.clientAddress,
    }
    // The hook may answer during the call (a plain function): then this is the Connect's answer at once.
    let routing: Routing | undefined
    let answered: DialAttempt | undefined
    const pending = route.ask(request, (decision) => {
      if (routing === undefined) answered = this.routed(decision, host, port, tunnel, client, receivedVia, fresh)
      else routing.decided(this.routed(decision, host, port, tunnel, client, receivedVia, fresh))
    })
    if (pending === undefined) return answered
    routing = new Routing(pending)
    return routing
  }

  /** Act on the route hook's decision: refuse, or dial the way it chose (the policy still judges it). */
  private routed(
    route: Route,
    host: string,
    port: number,
    tunnel: boolean,
    client: DialClient,
    receivedVia: string | undefined,
    fresh: boolean,
  ): DialAttempt | undefined {
    switch (route._tag) {
      case "Configured":
        return this.connectVia(host, port, tunnel, client, this.options.upstream?.parentFor(host, port), receivedVia, fresh)
      case "Direct":
        return this.connectVia(host, port, tunnel, client, undefined, receivedVia, fresh)
      case "Through":
        return this.connectVia(host, port, tunnel, client, route.parent, receivedVia, fresh)
      case "Deny":
        client.originFailed({ _tag: "ConnectFailed", reason: "denied", message: route.message })
        return undefined
      case "Unrouted":
        client.originFailed({ _tag: "ConnectFailed", reason: "unrouted", message: route.message })
        return undefined
    }
  }

  /** Steps 2-7 of the module comment, through `parent` (undefined: direct); `fresh`: no step 3. */
  private connectVia(
    host: string,
    port: number,
    tunnel: boolean,
    client: DialClient,
    parent: Parent | undefined,
    receivedVia: string | undefined,
    fresh: boolean,
  ): DialAttempt | undefined {
    const { pool, metrics } = this.options
    const policy = this.policy
    if (policy !== undefined) {
      const destination = { host, port, kind: tunnel ? ("connect" as const) : ("http" as const) }
      const early = parent === undefined ? checkName(policy, destination) : checkUnresolved(policy, destination)
      if (early !== undefined) {
        client.originFailed(this.denied(early))
        return undefined
      }
    }
    // A tunnel through the parent needs a CONNECT of its own: never a pooled connection to the parent.
    // A tunnel's key serves only to search the pool (its origin is never kept), so with the pool empty
    // (every tunnel of a CONNECT-only workload) neither the key text is made nor the pool searched.
    const key =
      pool === undefined || (tunnel && (parent !== undefined || pool.size === 0))
        ? undefined
        : parent === undefined
          ? poolKey(host, port)
          : parent.poolKey
    // A fresh dial still keeps its connection under `key` afterwards: only the lookup is skipped.
    if (pool !== undefined && key !== undefined && !fresh) {
      const reused = this.reuse(pool, key, host, port, tunnel, parent === undefined ? policy : undefined, client)
      metrics?.count(reused !== undefined ? POOL_HIT : POOL_MISS)
      if (reused !== undefined) {
        const connected = parent === undefined ? REUSED : { _tag: "Connected" as const, reused: true, upstream: parent.hop }
        client.originConnected(reused.socket, connected, tunnel ? undefined : reused.key, undefined)
        return undefined
      }
    } else metrics?.count(POOL_MISS)
    const attempt = new Attempt(this, client, host, port, tunnel, parent, tunnel ? undefined : key, receivedVia)
    attempt.start()
    return attempt.over ? undefined : attempt
  }

  /**
   * An idle connection for `key` that may serve this Connect, taken from the pool (step 3), with the key
   * it goes back under; undefined when there is none. `policy`: the destination policy to judge it by
   * (undefined through a parent: its address is the parent's, not the destination).
   */
  private reuse(
    pool: OriginPool,
    key: string,
    host: string,
    port: number,
    tunnel: boolean,
    policy: DestinationPolicy | undefined,
    client: DialClient,
  ): { readonly socket: net.Socket; readonly key: string } | undefined {
    const tag = client.pinTag
    const pinned = tag === undefined || tunnel ? undefined : pinnedKey(key, tag)
    let from = pinned ?? key
    let socket = pool.take(from)
    if (socket === undefined && pinned !== undefined) socket = pool.take((from = key))
    if (socket === undefined) return undefined
    if (policy === undefined) return { socket, key: from }
    const address = socket.remoteAddress
    if (address === undefined) {
      socket.destroy() // no address to judge: not a connection to use
      return undefined
    }
    if (check(policy, { host, address, port, kind: tunnel ? "connect" : "http" }) === undefined) return { socket, key: from }
    // Dialled for plain requests, which may still go there: a tunnel's denial leaves it in the pool.
    if (tunnel) pool.put(from, socket)
    else socket.destroy()
    return undefined
  }

  /** Keep `socket` idle under `poolKey` (from `originConnected`) for a later Connect; it has no owner's listeners left. */
  keepIdle(poolKey: string, socket: net.Socket): void {
    const pool = this.options.pool
    if (pool === undefined) socket.destroy()
    else pool.put(poolKey, socket)
  }

  /**
   * Keep `socket`, which the core released `pinned` (NTLM or Negotiate authenticated it), for `client`'s
   * later requests only: under a key of its own (the pool's idle rules apply to it as to any other).
   */
  keepPinned(poolKey: string, socket: net.Socket, client: DialClient): void {
    client.pinTag ??= `#${++pinTags}`
    this.keepIdle(pinnedKey(poolKey, client.pinTag), socket)
  }

  /** The policy said no: nothing is dialled; the core answers 403 with the reason. */
  denied(denial: Denial): ConnectFailed {
    this.options.stats[denialCounter[denial.kind]]++
    return { _tag: "ConnectFailed", reason: "denied", message: denial.message }
  }
}

/** A Connect waiting for the route hook's decision, then for the attempt that decision started. */
class Routing implements DialAttempt {
  private pending: PendingHook | undefined
  private attempt: DialAttempt | undefined = undefined
  private cancelled = false

  constructor(pending: PendingHook) {
    this.pending = pending
  }

  /** The hook decided: `attempt` is what the decision started (undefined: answered already). */
  decided(attempt: DialAttempt | undefined): void {
    this.pending = undefined
    this.attempt = attempt
  }

  cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    this.pending?.cancel()
    this.attempt?.cancel()
  }
}

/**
 * Tunnels through a parent waiting for its answer to our CONNECT, by socket. Their bytes arrive through
 * the client's read callback, which hands bytes of a socket it does not own to `readUnowned`.
 */
const handshaking = new Map<net.Socket, Attempt>()

/**
 * Bytes on an origin socket no Connection owns: the parent's answer to our CONNECT (an attempt in
 * progress), or an idle pooled connection that spoke (the pool drops it). `buffer` may be shared: copy.
 */
export const readUnowned = (socket: net.Socket, buffer: Buffer, n: number): void => {
  const attempt = handshaking.get(socket)
  if (attempt !== undefined) attempt.handshakeRead(socket, Buffer.from(buffer.subarray(0, n)))
  else noticePooledData(socket)
}

function onHandshakeEnd(this: net.Socket): void {
  handshaking.get(this)?.parentGone("closed the connection without answering CONNECT")
}
function onHandshakeError(this: net.Socket, error: Error): void {
  handshaking.get(this)?.socketFailed(error)
}
function onHandshakeClose(this: net.Socket): void {
  handshaking.get(this)?.parentGone("closed the connection without answering CONNECT")
}

/** One `connect` that could not be answered at once: resolving, dialling, then (through a parent, for a tunnel) the handshake. */
class Attempt implements DialAttempt {
  /** Answered or cancelled: nothing more happens. */
  over = false
  private readonly dialer: Dialer
  private readonly client: DialClient
  private readonly host: string
  private readonly port: number
  private readonly tunnel: boolean
  private readonly parent: Parent | undefined
  private readonly poolKey: string | undefined
  private readonly receivedVia: string | undefined
  /** When the dial started (core clock), for the connect-duration histogram; 0 when not measured. */
  private startedAt = 0
  private race: Dialing | undefined = undefined
  /** A tunnel through the parent: our CONNECT and the reading of its answer. */
  private handshake: UpstreamHandshake | undefined = undefined
  /** The connected parent socket while its answer to our CONNECT is awaited. */
  private socket: net.Socket | undefined = undefined

  constructor(
    dialer: Dialer,
    client: DialClient,
    host: string,
    port: number,
    tunnel: boolean,
    parent: Parent | undefined,
    poolKey: string | undefined,
    receivedVia: string | undefined,
  ) {
    this.dialer = dialer
    this.client = client
    this.host = host
    this.port = port
    this.tunnel = tunnel
    this.parent = parent
    this.poolKey = poolKey
    this.receivedVia = receivedVia
  }

  start(): void {
    const { options } = this.dialer
    if (options.metrics !== undefined) this.startedAt = options.deadlines.now()
    const parent = this.parent
    if (parent === undefined) {
      options.resolve(this.host, (error, addresses) => this.resolved(error, addresses))
      return
    }
    if (this.tunnel) this.handshake = new UpstreamHandshake(this.host, this.port, parent, options.via, options.limits, this.receivedVia)
    options.resolve(parent.host, (error, addresses) => {
      if (this.over) return
      if (error !== undefined || addresses.length === 0) this.parentGone(`could not be resolved: ${error?.message ?? "no address"}`)
      else this.dial(addresses, parent.port)
    })
  }

  cancel(): void {
    if (this.over) return
    this.over = true
    this.release()?.destroy()
  }

  /** The origin's addresses (direct): judged, then dialled. */
  private resolved(error: ResolveError | undefined, resolved: ReadonlyArray<Resolved>): void {
    if (this.over) return
    if (error !== undefined || resolved.length === 0) return this.failed("unresolved", error?.message ?? "no address")
    let addresses = resolved
    const policy = this.dialer.policy
    if (policy !== undefined) {
      const destination = { host: this.host, port: this.port, kind: this.tunnel ? ("connect" as const) : ("http" as const) }
      if (addresses.length === 1) {
        const denial = check(policy, { ...destination, address: addresses[0]!.address })
        if (denial !== undefined) return this.answerFailed(this.dialer.denied(denial))
      } else {
        const verdict = allowedAddresses(policy, destination, addresses)
        if (verdict.denial !== undefined) return this.answerFailed(this.dialer.denied(verdict.denial))
        addresses = verdict.allowed
      }
    }
    this.dial(addresses, this.port)
  }

  private dial(addresses: ReadonlyArray<Resolved>, port: number): void {
    const client = this.client
    this.race = dial(
      addresses,
      (address) => client.openOrigin(address, port),
      (error, socket) => {
        this.race = undefined
        if (socket !== undefined) this.reached(socket)
        else this.socketFailed(error)
      },
    )
  }

  /** A TCP connection is up (to the origin, or to the parent). */
  private reached(socket: net.Socket): void {
    if (this.handshake !== undefined) {
      // A tunnel through the parent: Connected waits for the parent's 2xx (handshakeRead).
      this.socket = socket
      handshaking.set(socket, this)
      socket.on("end", onHandshakeEnd)
      socket.on("error", onHandshakeError)
      socket.on("close", onHandshakeClose)
      socket.write(this.handshake.request)
      return
    }
    const { metrics, deadlines } = this.dialer.options
    if (this.startedAt > 0) metrics?.observe("originConnect", deadlines.now() - this.startedAt)
    const parent = this.parent
    this.answerConnected(socket, parent === undefined ? CONNECTED : { _tag: "Connected", upstream: parent.hop }, undefined)
  }

  /** The parent's answer to our CONNECT, as it arrives (`bytes` is our own copy). */
  handshakeRead(socket: net.Socket, bytes: Uint8Array): void {
    const handshake = this.handshake
    if (this.over || handshake === undefined || socket !== this.socket) return
    const verdict = handshake.push(bytes)
    switch (verdict._tag) {
      case "NeedMore":
        return
      case "Refused":
        return this.parentGone(verdict.what)
      case "Established":
        this.handshake = undefined
        this.answerConnected(socket, CONNECTED, verdict.rest)
    }
  }

  /** The socket being dialled (the last attempt of the race), or the parent's during the handshake, failed. */
  socketFailed(error: Error | undefined): void {
    if (this.over) return
    const code = errorCode(error)
    this.dialer.options.onConnectError?.(code)
    if (this.parent !== undefined) this.parentGone(describeParentError(code, errorMessage(error)))
    else this.failed(connectFailure(code), errorMessage(error))
  }

  /** The parent failed before the connection was usable. */
  parentGone(what: string): void {
    if (this.over || this.parent === undefined) return
    this.answerFailed(parentFailed(this.parent, what))
  }

  /** A direct dial failed: counted by reason. */
  private failed(reason: ConnectFailure, message: string): void {
    this.dialer.options.metrics?.count(connectFailureSlot(reason))
    this.answerFailed({ _tag: "ConnectFailed", reason, message })
  }

  private answerFailed(failed: ConnectFailed): void {
    this.over = true
    this.release()?.destroy()
    this.client.originFailed(failed)
  }

  private answerConnected(socket: net.Socket, connected: Connected, rest: Uint8Array | undefined): void {
    this.over = true
    this.release()
    this.client.originConnected(socket, connected, this.poolKey, rest)
  }

  /** Stop the race, and let go of the handshake socket (returned, without our listeners). */
  private release(): net.Socket | undefined {
    const race = this.race
    this.race = undefined
    race?.cancel()
    const socket = this.socket
    if (socket === undefined) return undefined
    this.socket = undefined
    handshaking.delete(socket)
    socket.removeListener("end", onHandshakeEnd)
    socket.removeListener("error", onHandshakeError)
    socket.removeListener("close", onHandshakeClose)
    return socket
  }
}
