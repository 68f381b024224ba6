/**
 * ProxyServer: everything one worker thread runs, without the thread.
 *
 * Owns the listening sockets of a worker, the set of live Connections, the worker's single Deadlines
 * structure, its AccessLog and its counters; refuses clients outside the allow-list (403 and close, no
 * Postman, judged before the client takes a connection slot); builds the destination policy the Dialer
 * checks (the rules, and the sockets it is bound to, so that it never proxies into itself); and carries
 * out the graceful shutdown (stop accepting, `shutdown` every connection, abort what is left after the
 * grace period, then report drained).
 *
 * With `proxyProtocolFrom` every connection first reads its PROXY protocol header (ProxyHeaderReader) and
 * is then admitted under the client address the header names.
 *
 * It is plain callback code so that tests can run it in-process over loopback; `worker.ts` wraps it
 * for the worker thread and the main-thread protocol. It must never touch the worker messaging itself.
 */
import * as net from "node:net"
import type { ListenAddress, LiveSettings, WorkerInit } from "./protocol.ts"
import { emptyStats, type MutableStats, type WorkerStats } from "./observe/Stats.ts"
import { AccessLog } from "./observe/AccessLog.ts"
import { AllowList, forbiddenResponse } from "./access/Allow.ts"
import { ACCEPT_PAUSE_MS, ConnectionLimits } from "./access/ConnectionLimits.ts"
import { Connection, type ConnectionContext } from "./connection/Connection.ts"
import { KeepaliveArmer } from "./connection/KeepaliveArmer.ts"
import { Deadlines, type Timed } from "./timers/Deadlines.ts"
import { OriginPool } from "./dial/OriginPool.ts"
import { Dialer } from "./dial/Dialer.ts"
import { makeResolve, type ResolveFn, resolverOptionsFor } from "./dial/Resolver.ts"
import { type DestinationPolicy, makePolicy, localAddresses } from "./dial/DestinationPolicy.ts"
import { type ClientAddress, ProxyHeaderReader } from "./access/ProxyHeaderReader.ts"
import { UpstreamRoutes } from "./dial/Upstream.ts"
import { RefusalLog } from "./access/RefusalLog.ts"
import { counterSlot, WorkerMetrics, type WorkerMetricsSnapshot } from "./observe/Metrics.ts"

const REFUSED_NOT_ALLOWED = counterSlot("connectionsRefused", { reason: "not_allowed" })
const REFUSED_SHUTTING_DOWN = counterSlot("connectionsRefused", { reason: "shutting_down" })
const REFUSED_NOT_PROXY_SOURCE = counterSlot("connectionsRefused", { reason: "not_proxy_source" })
const REFUSED_PROXY_HEADER = counterSlot("connectionsRefused", { reason: "proxy_header" })
import { ProxyAuth } from "./auth/ProxyAuth.ts"
import { HookAuthenticator } from "./auth/HookAuthenticator.ts"
import { RouteHook } from "./dial/RouteHook.ts"
import { HookProblems } from "./observe/HookProblems.ts"
import { DEFAULT_HOOK_TIMEOUT_MS } from "./timers/HookCall.ts"
import type { Hooks } from "./Hooks.ts"
import { PortVerifier } from "./auth/VerifierHub.ts"

/** How long a refused client may take to read its 403 before its socket is destroyed. */
const REFUSED_LINGER_MS = 2_000
/**
 * Refused clients whose 403 may linger at once, per worker. They hold no slot of --max-connections (the
 * allow-list is judged first), so this bounds what a flood of them holds; beyond it they are closed at once.
 */
const MAX_LINGERING_REFUSALS = 1_024

/** Each refused address gets at most one warn line per this interval; the others are counted (RefusalLog). */
const REFUSAL_LOG_INTERVAL_MS = 10_000

export type ListenResult =
  | { readonly ok: true; readonly addresses: ReadonlyArray<ListenAddress> }
  | { readonly ok: false; readonly code: string; readonly message: string }

export interface ProxyServerOptions {
  /** Where log text goes (default process.stdout). */
  readonly write?: (chunk: string) => void
  /** The resolver (worker.ts takes it from the Resolver service); default: Resolver rules with `init.hosts`. */
  readonly resolve?: ResolveFn
  /** The worker's counters (worker.ts shares them with its Resolver service); default: new ones. */
  readonly stats?: MutableStats
  /** The worker's clock, monotonic milliseconds (default `performance.now()`); tests drive it by hand. */
  readonly clock?: () => number
  /** How often the auth file is checked for changes (default ProxyAuth's; tests make it short). */
  readonly authFilePollMs?: number
  /** An embedding program's hooks (Hooks.ts, loaded by worker.ts from `init.hooks`); absent: none. */
  readonly hooks?: Hooks
  /**
   * Test hooks (worker.ts turns them on when HCTUNNEL_TEST_HOOKS=1): a Connect to `crash.hctunnel.invalid`
   * ends the worker thread with exit code 70, so the supervisor's restart can be tested end to end.
   */
  readonly testHooks?: boolean
}

/** A type with its fields writable (the worker's own view of the context it shares with its Connections). */
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** The host that crashes a worker when test hooks are on. */
export const CRASH_HOST = "crash.hctunnel.invalid"

const withTestHooks = (resolve: ResolveFn, on: boolean, log: AccessLog): ResolveFn =>
  on
    ? (host, cb) => {
        if (host.toLowerCase() === CRASH_HOST) {
          log.message("warn", "test hook: crashing this worker on purpose")
          log.flush()
          process.exit(70)
        }
        resolve(host, cb)
      }
    : resolve

/** A client outside the allow-list: its 403 is on the way; destroyed on close or after a short linger. */
class Refused implements Timed {
  deadlineIndex = -1
  deadlineAt = 0
  readonly socket: net.Socket
  private readonly owner: ProxyServer
  constructor(socket: net.Socket, owner: ProxyServer) {
    this.socket = socket
    this.owner = owner
  }
  onDeadline(): void {
    this.socket.destroy()
  }
  /** @internal */ closed(): void {
    this.owner.refusedClosed(this)
  }
}

export class ProxyServer {
  readonly init: WorkerInit
  readonly stats: MutableStats
  /** Figures for /metrics (Metrics.ts), shipped with every Stats message. */
  readonly metrics = new WorkerMetrics()
  readonly deadlines: Deadlines
  readonly pool: OriginPool
  readonly log: AccessLog
  // Replaced by `reconfigure`.
  private allow: AllowList
  /**
   * The one context every Connection of this worker shares. `reconfigure` replaces its settings in place,
   * so each exchange reads the ones in force when it starts: the destination policy at every Connect,
   * the users at every Authenticate (issue 17 item 5).
   */
  private readonly context: Mutable<ConnectionContext>
  private readonly servers: Array<net.Server> = []
  private readonly connections = new Set<Connection>()
  readonly keepalive: KeepaliveArmer
  private readonly refused = new Set<Refused>()
  private forbidden: Uint8Array
  /**
   * What the destination policy is made from besides the listeners (replaced by `reconfigure`): the
   * rules, and the client allow list (it decides whether the proxy is exposed); and the addresses bound.
   */
  private rules: {
    readonly allowTo: ReadonlyArray<string>
    readonly denyTo: ReadonlyArray<string>
    readonly clientAllow: ReadonlyArray<string>
  }
  private bound: ReadonlyArray<ListenAddress> = []
  private accepting = false
  private onDrained: Array<(cut: number) => void> = []
  /** The end of a graceful shutdown's grace period: what is still open then is aborted. */
  private readonly graceEnd: Timed = {
    deadlineIndex: -1,
    deadlineAt: 0,
    onDeadline: () => this.cut("shutdown: grace period over"),
  }
  /** Connections a shutdown aborted (still open when its grace period ended, or when it was cut short). */
  private cutByShutdown = 0
  private draining = false
  /** PROXY protocol (issue 10 §2): the load balancers that send a header, and the sockets reading one. */
  private readonly proxyFrom: AllowList | undefined
  private readonly proxyHeaders: ProxyHeaderReader
  // --- connection limits (ConnectionLimits.ts): caps shared by all workers, and the pause on EMFILE ---
  readonly connectionLimits: ConnectionLimits
  private resumeTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private readonly refusals: RefusalLog
  /** Proxy authentication (authFile), or undefined when it is off; made, moved or closed by `reconfigure`. */
  private auth: ProxyAuth | undefined
  /** An embedding program's authenticate hook (Hooks.ts), instead of authFile; fixed for the worker's life. */
  private readonly hookAuth: HookAuthenticator | undefined
  /** The process's bcrypt verifier thread, through this worker's port (undefined: each ProxyAuth makes its own). */
  private readonly verifier: PortVerifier | undefined
  private readonly authFilePollMs: number | undefined

  constructor(init: WorkerInit, options: ProxyServerOptions = {}) {
    this.init = init
    this.stats = options.stats ?? emptyStats()
    this.log = new AccessLog({
      format: init.logFormat,
      level: init.logLevel,
      worker: init.id,
      ...(options.write === undefined ? {} : { write: options.write }),
    })
    this.deadlines = new Deadlines({
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      // A deadline callback that throws is a bug like an engine that throws: logged and counted, the rest served.
      onError: (e) => {
        this.stats.errors++
        this.log.message("error", `internal error in a deadline: ${String(e)}`)
      },
    })
    this.pool = new OriginPool(this.deadlines)
    this.keepalive = new KeepaliveArmer(this.deadlines, this.connections)
    this.allow = AllowList.parse(init.allow)
    this.connectionLimits = new ConnectionLimits(init.connectionLimits, init.id, this.log, () => this.pauseAccepting())
    this.forbidden = forbiddenResponse(init.via)
    this.rules = { allowTo: init.allowTo ?? [], denyTo: init.denyTo ?? [], clientAllow: init.allow }
    this.refusals = new RefusalLog({
      write: (line) => this.log.message("warn", line),
      arm: (entry, at) => this.deadlines.set(entry, at),
      intervalMs: REFUSAL_LOG_INTERVAL_MS,
    })
    const hooks = options.hooks ?? {}
    if (hooks.authenticate !== undefined && init.authFile !== undefined) {
      throw new Error("the hooks module exports authenticate and authFile (--auth-file) is set too: keep one of them")
    }
    const problems = new HookProblems(this.log, () => this.deadlines.now())
    const timing = { deadlines: this.deadlines, timeoutMs: init.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS }
    // The process's shared verifier thread (supervisor); without a port (in-process tests) a thread of its own.
    this.verifier = init.verifierPort === undefined ? undefined : new PortVerifier(init.verifierPort)
    this.authFilePollMs = options.authFilePollMs
    this.auth = init.authFile === undefined ? undefined : this.makeAuth(init.authFile)
    const dialer = new Dialer({
      resolve: withTestHooks(options.resolve ?? makeResolve(resolverOptionsFor(init, this.stats)), options.testHooks === true, this.log),
      deadlines: this.deadlines,
      stats: this.stats,
      via: init.via,
      limits: init.limits,
      pool: this.pool,
      policy: this.destinationPolicy(init.listen),
      metrics: this.metrics,
      onConnectError: (code) => void this.connectionLimits.socketError(code, "connect"),
      ...(init.upstream === undefined ? {} : { upstream: new UpstreamRoutes(init.upstream, init.noUpstream ?? []) }),
      ...(hooks.route === undefined ? {} : { route: new RouteHook(hooks.route, timing, problems) }),
    })
    // An authenticate hook answers for the users file, for as long as the worker runs.
    this.hookAuth =
      hooks.authenticate === undefined
        ? undefined
        : new HookAuthenticator({ hook: hooks.authenticate, timing, problems, counters: this.stats, now: () => this.deadlines.now() })
    this.context = {
      limits: init.limits,
      via: init.via,
      deadlines: this.deadlines,
      dialer,
      log: this.log,
      stats: this.stats,
      keepalive: this.keepalive,
      metrics: this.metrics,
      onFinished: (connection) => this.connectionFinished(connection),
      auth: this.hookAuth ?? this.auth?.authenticator,
    }
    const proxyFrom = init.proxyProtocolFrom ?? []
    this.proxyFrom = proxyFrom.length === 0 ? undefined : AllowList.parse(proxyFrom)
    this.proxyHeaders = new ProxyHeaderReader({
      deadlines: this.deadlines,
      log: this.log,
      timeoutMs: init.limits.headTimeout,
      admit: (socket, client, rest) => this.admit(socket, client, rest),
      rejected: (kind, socket) => {
        this.connectionLimits.release(socket)
        this.stats.errors++
        if (kind !== "gone") this.metrics.count(REFUSED_PROXY_HEADER)
      },
      settled: () => this.checkDrained(),
    })
  }

  /**
   * Switch to new settings (SIGHUP). Throws (and changes nothing) if they are invalid: the supervisor
   * validated them, this is the last guard. What applies when (issue 17 item 5; docs/configuration.md,
   * Reload):
   * - every request or tunnel that starts from now on is judged by the new settings; one under way
   *   finishes under the old (a tunnel relays on; a request already being read is served);
   * - the destination rules and the users file apply at once on the connections already open (each
   *   exchange reads them from the shared context when it starts);
   * - who may use a connection was fixed when it was accepted (that its client is allowed; whether its
   *   requests must authenticate), so a connection for which the reload changes that is asked to finish:
   *   closed once its exchange under way is done, at once when idle; the client's next request comes on a
   *   new connection, judged by the new settings;
   * - limits and Via are the Postman's own, set when the connection was accepted: they apply to new
   *   connections, and open ones keep theirs (closing every kept-alive connection on each reload would
   *   make every client race the close).
   */
  reconfigure(settings: LiveSettings): void {
    const allow = AllowList.parse(settings.allow)
    const forbidden = forbiddenResponse(settings.via)
    const rules = { allowTo: settings.allowTo ?? [], denyTo: settings.denyTo ?? [], clientAllow: settings.allow }
    const policy = this.destinationPolicy(this.bound.length > 0 ? this.bound : this.init.listen, rules)
    if (this.hookAuth !== undefined && settings.authFile !== undefined) {
      throw new Error("the hooks module exports authenticate: authFile (--auth-file) cannot be set too")
    }
    // Validated: from here on nothing throws.
    const context = this.context
    const authTurned = (settings.authFile === undefined) !== (this.auth === undefined)
    this.allow = allow
    this.forbidden = forbidden
    this.rules = rules
    this.log.configure(settings.logFormat, settings.logLevel)
    this.switchAuth(settings.authFile)
    context.limits = settings.limits
    context.via = settings.via
    context.dialer = context.dialer.with({ via: settings.via, limits: settings.limits, policy })
    context.auth = this.hookAuth ?? this.auth?.authenticator
    for (const connection of [...this.connections]) {
      if (authTurned || !allow.allows(connection.clientAddress)) connection.shutdown()
    }
  }

  /** Proxy authentication as `path` says: turned on, off, moved to another file, or the same file read again. */
  private switchAuth(path: string | undefined): void {
    const auth = this.auth
    if (path === undefined) {
      auth?.close()
      this.auth = undefined
    } else if (auth === undefined) {
      this.auth = this.makeAuth(path)
    } else {
      // The same file is read at once too (it is also watched; a reload should not wait for the poll).
      auth.follow(path)
    }
  }

  private makeAuth(path: string): ProxyAuth {
    return new ProxyAuth({
      path,
      counters: this.stats,
      now: () => this.deadlines.now(),
      log: this.log,
      ...(this.verifier === undefined ? {} : { verifier: this.verifier }),
      ...(this.authFilePollMs === undefined ? {} : { pollMs: this.authFilePollMs }),
    })
  }

  /** The destination policy for these listeners (the process's own sockets, the admin endpoint's too, are part of it). */
  private destinationPolicy(listen: ReadonlyArray<ListenAddress>, rules = this.rules): DestinationPolicy {
    const admin = this.init.adminAddress
    return makePolicy({
      ...rules,
      listen,
      ownSockets: admin === undefined ? [] : [admin],
      proxyProtocolFrom: this.init.proxyProtocolFrom,
      interfaces: localAddresses(),
    })
  }

  /** Connections not yet finished (lingering ones included). */
  get liveConnections(): number {
    return this.connections.size
  }

  snapshot(): WorkerStats {
    return { ...this.stats }
  }

  /** The counters and histograms as they are now (copies), and the gauges counted now. */
  metricsSnapshot(loopDelay: WorkerMetricsSnapshot["loopDelay"]): WorkerMetricsSnapshot {
    let tunnelsOpen = 0
    for (const c of this.connections) if (c.inTunnel) tunnelsOpen++
    return { counters: this.metrics.counters.slice(), histograms: this.metrics.histograms.slice(), tunnelsOpen, loopDelay }
  }

  /** Listen on every address of `init.listen`; on any failure close what was opened and report the first error. */
  listen(done: (result: ListenResult) => void): void {
    const addresses = this.init.listen
    const bound: Array<ListenAddress> = []
    let failed: ListenResult | undefined
    let pending = addresses.length
    if (pending === 0) return done({ ok: false, code: "ENOADDRESS", message: "no address to listen on" })
    const settle = () => {
      if (--pending > 0) return
      if (failed !== undefined) {
        for (const s of this.servers) s.close()
        this.servers.length = 0
        return done(failed)
      }
      // Port 0 is now a real port: the policy must know it (no proxying into ourselves).
      this.context.dialer.policy = this.destinationPolicy(bound)
      this.accepting = true
      this.bound = bound
      done({ ok: true, addresses: bound })
    }
    for (const address of addresses) {
      const server = net.createServer({
        noDelay: true,
        allowHalfOpen: true, // TCP keepalive: KeepaliveArmer, once a connection lives long enough to need it
      })
      server.on("connection", (socket) => this.accept(socket))
      const onError = (e: NodeJS.ErrnoException) => {
        failed ??= { ok: false, code: e.code ?? "ERROR", message: `${address.host}:${address.port}: ${e.message}` }
        settle()
      }
      server.once("error", onError)
      server.listen({ host: address.host, port: address.port, reusePort: this.init.reusePort }, () => {
        server.removeListener("error", onError)
        server.on("error", (e) => this.listenerError(address, e))
        this.servers.push(server)
        const a = server.address()
        bound.push(typeof a === "object" && a !== null ? { host: a.address, port: a.port } : address)
        settle()
      })
    }
  }

  private accept(socket: net.Socket): void {
    this.stats.connectionsAccepted++
    // Reset while in the accept queue: no peer to judge or answer, so closed, neither refused nor an error (F1).
    if (socket.remoteAddress === undefined) return void socket.destroy()
    if (!this.accepting) {
      this.metrics.count(REFUSED_SHUTTING_DOWN)
      socket.destroy()
      return
    }
    // PROXY protocol (issue 10 §2): with --proxy-protocol-from, every connection comes from a listed
    // load balancer and starts with a header; `admit` runs once it is read. The process-wide connection
    // cap applies now, the per-client one once the header names the client.
    if (this.proxyFrom !== undefined) {
      if (!this.proxyFrom.allows(socket.remoteAddress)) return this.closeUnlisted(socket)
      if (!this.connectionLimits.admit(socket, undefined)) return
      this.proxyHeaders.read(socket)
      return
    }
    // The allow-list first: a refused client gets its 403 without taking a slot of --max-connections
    // (issue 17 item 12), so refused clients cannot lock allowed ones out while their 403 lingers.
    if (!this.allow.allows(socket.remoteAddress)) return this.refuse(socket)
    // Over --max-connections or --max-connections-per-client: closed at once (ConnectionLimits.ts).
    if (!this.connectionLimits.admit(socket, socket.remoteAddress)) return
    this.stats.connectionsLive++
    this.connections.add(new Connection(socket, this.context))
    this.keepalive.wake()
  }

  /**
   * PROXY protocol (issue 10 §2): the header named `client` (or said LOCAL/UNKNOWN: then it is the
   * socket's own peer); `rest` is what followed the header. From here on `client` is the client's address.
   */
  private admit(socket: net.Socket, client: ClientAddress, rest: Buffer): void {
    if (!this.allow.allows(client.address)) {
      // The slot taken while the header was read is given back before the 403 (issue 17 item 12).
      this.connectionLimits.release(socket)
      return this.refuse(socket, client)
    }
    if (!this.connectionLimits.admitClient(socket, client.address)) return
    this.stats.connectionsLive++
    const connection = new Connection(socket, this.context, client)
    this.connections.add(connection)
    this.keepalive.wake()
    if (rest.length > 0) connection.clientData(rest)
    // Accepted before a graceful shutdown began: a request that came with the header is served, like
    // one in flight; an idle connection closes now.
    if (this.draining) connection.shutdown()
  }

  /** PROXY protocol (issue 10 §2): a connection that did not come through a listed load balancer. */
  private closeUnlisted(socket: net.Socket): void {
    this.stats.errors++
    this.metrics.count(REFUSED_NOT_PROXY_SOURCE)
    this.log.message(
      "warn",
      `closed connection from ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}: not a --proxy-protocol-from source`,
    )
    socket.on("error", () => {})
    socket.destroy()
  }

  private refuse(socket: net.Socket, client?: ClientAddress): void {
    this.stats.errors++
    this.metrics.count(REFUSED_NOT_ALLOWED)
    this.refusals.refused(client?.address ?? socket.remoteAddress ?? "?", client?.port ?? socket.remotePort ?? 0, this.deadlines.now())
    if (this.refused.size >= MAX_LINGERING_REFUSALS) {
      socket.on("error", () => {})
      socket.destroy()
      return
    }
    if (this.connectionLimits.closeIfOutOfDescriptors(socket)) return
    const r = new Refused(socket, this)
    this.refused.add(r)
    socket.on("error", () => {}) // a refused client resetting the connection is not our problem
    socket.once("close", () => r.closed())
    socket.on("data", () => {}) // read and discard what it sends, so closing does not reset the 403
    socket.end(this.forbidden)
    this.deadlines.set(r, this.deadlines.now() + REFUSED_LINGER_MS)
  }

  /** @internal */ refusedClosed(r: Refused): void {
    this.deadlines.cancel(r)
    r.socket.removeAllListeners()
    this.refused.delete(r)
    this.checkDrained()
  }

  private connectionFinished(connection: Connection): void {
    if (!this.connections.delete(connection)) return
    this.connectionLimits.release(connection.client)
    this.stats.connectionsLive--
    this.checkDrained()
  }

  /**
   * Graceful shutdown: stop accepting, ask every connection to finish, abort the rest after `graceMs`;
   * `done` runs once no connection is left, with how many connections were aborted. Calling it again adds
   * `done`, and may shorten the grace period (a second signal: 0 aborts what is open now), never extend it.
   */
  shutdown(graceMs: number, done: (cut: number) => void): void {
    this.onDrained.push(done)
    const now = this.deadlines.now()
    const end = now + Math.max(0, graceMs)
    if (this.draining) {
      if (this.graceEnd.deadlineIndex >= 0 && end < this.graceEnd.deadlineAt) {
        if (end <= now) {
          this.deadlines.cancel(this.graceEnd)
          this.cut("shutdown: grace period cut short")
        } else this.deadlines.set(this.graceEnd, end)
      }
      return this.checkDrained()
    }
    this.draining = true
    this.stopAccepting()
    this.pool.close()
    for (const connection of [...this.connections]) connection.shutdown(now)
    if (this.connections.size > 0 || this.refused.size > 0 || this.proxyHeaders.size > 0) this.deadlines.set(this.graceEnd, end)
    this.checkDrained()
  }

  /** Stop everything now (the worker is going away). Idempotent. */
  close(): void {
    this.draining = true
    this.stopAccepting()
    this.abortAll("worker closed")
    this.pool.close()
    this.keepalive.stop()
    this.auth?.close()
    this.verifier?.close()
    this.deadlines.stop()
    this.log.flush()
  }

  private stopAccepting(): void {
    this.accepting = false
    if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer)
    this.resumeTimer = undefined
    for (const s of this.servers) s.close()
    this.servers.length = 0
  }

  private listenerError(address: ListenAddress, e: NodeJS.ErrnoException): void {
    if (!this.connectionLimits.socketError(e.code, "accept"))
      this.log.message("error", `listener ${address.host}:${address.port}: ${e.message}`)
  }

  /**
   * Out of file descriptors (ConnectionLimits decides): stop accepting for ACCEPT_PAUSE_MS by closing the
   * listeners (Node has no way to stop accepting on an open one). Open connections go on. Then listen again
   * on the same addresses; a failure (still no descriptor) pauses again.
   */
  private pauseAccepting(): void {
    if (!this.accepting || this.draining || this.resumeTimer !== undefined) return
    for (const s of this.servers) s.close()
    this.servers.length = 0
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined
      if (this.accepting && !this.draining) this.listenAgain()
    }, ACCEPT_PAUSE_MS)
  }

  private listenAgain(): void {
    for (const address of this.bound) {
      const server = net.createServer({ noDelay: true, allowHalfOpen: true })
      server.on("connection", (socket) => this.accept(socket))
      server.on("error", (e: NodeJS.ErrnoException) => {
        if (this.servers.includes(server)) return this.listenerError(address, e)
        // Listening failed: still out of descriptors (pause again), or something else (log, and retry later too).
        server.close()
        if (!this.connectionLimits.socketError(e.code, "accept")) {
          this.log.message("error", `listening again on ${address.host}:${address.port}: ${e.message}`)
          this.pauseAccepting()
        }
      })
      server.listen({ host: address.host, port: address.port, reusePort: this.init.reusePort }, () => {
        // Stopped, or paused again meanwhile (another address failed): this one waits for the next round.
        if (!this.accepting || this.draining || this.resumeTimer !== undefined) server.close()
        else this.servers.push(server)
      })
    }
  }

  /** A shutdown aborts what is still open: counted first, since the last one to finish reports drained. */
  private cut(detail: string): void {
    this.cutByShutdown += this.connections.size
    this.abortAll(detail)
  }

  private abortAll(detail: string): void {
    const now = this.deadlines.now()
    for (const connection of [...this.connections]) connection.abort(detail, now)
    for (const r of [...this.refused]) r.socket.destroy()
    this.proxyHeaders.destroyAll()
  }

  private checkDrained(): void {
    if (!this.draining || this.connections.size > 0 || this.refused.size > 0 || this.onDrained.length === 0) return
    if (this.proxyHeaders.size > 0) return // PROXY protocol (issue 10 §2): sockets still reading a header
    this.deadlines.cancel(this.graceEnd)
    this.deadlines.stop()
    this.log.flush()
    const callbacks = this.onDrained
    this.onDrained = []
    for (const f of callbacks) f(this.cutByShutdown)
  }
}
