/**
 * ProxyServer: everything one worker thread runs, without the thread.
 *
 * Owns the listening sockets of a worker, the set of live Connections, the worker's single Deadlines
 * structure, its AccessLog and its counters; refuses clients outside the allow-list (403 and close,
 * no Postman); and carries out the graceful shutdown (stop accepting, `shutdown` every connection,
 * abort what is left after the grace period, then report drained).
 *
 * It is plain callback code so that tests can run it in-process over loopback; `worker.ts` wraps it
 * for the worker thread and the main-thread protocol. It must never touch the worker messaging itself.
 */
import * as net from "node:net"
import type { ListenAddress, WorkerInit, WorkerStats } from "../protocol.ts"
import { AccessLog } from "../AccessLog.ts"
import { AllowList, forbiddenResponse } from "../Allow.ts"
import { Connection, type ConnectionContext, emptyStats, type MutableStats } from "../Connection.ts"
import { KeepaliveArmer } from "../KeepaliveArmer.ts"
import { Deadlines, type Timed } from "../Deadlines.ts"
import { OriginPool } from "../OriginPool.ts"
import { makeResolve, type ResolveFn, type ResolverOptions } from "../Resolver.ts"
import { UpstreamRoutes } from "../Upstream.ts"
import { ProxyAuth } from "../ProxyAuth.ts"
import { PortVerifier } from "../VerifierHub.ts"

/** How long a refused client may take to read its 403 before its socket is destroyed. */
const REFUSED_LINGER_MS = 2_000

export type ListenResult =
  | { readonly ok: true; readonly addresses: ReadonlyArray<ListenAddress> }
  | { readonly ok: false; readonly code: string; readonly message: string }

export interface ProxyServerOptions {
  /** Where log text goes (default process.stdout). */
  readonly write?: (chunk: string) => void
  /** The resolver (worker.ts takes it from the Resolver service); default: Resolver rules with `init.hosts`. */
  readonly resolve?: ResolveFn
  /** Replace the system DNS lookup of the default resolver (tests). */
  readonly lookup?: ResolverOptions["lookup"]
  /** How often the auth file is checked for changes (default ProxyAuth's; tests make it short). */
  readonly authFilePollMs?: number
  /**
   * Test hooks (worker.ts turns them on when HCTUNNEL_TEST_HOOKS=1): a Connect to `crash.hctunnel.invalid`
   * ends the worker thread with exit code 70, so the supervisor's restart can be tested end to end.
   */
  readonly testHooks?: boolean
}

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
  readonly stats: MutableStats = emptyStats()
  readonly deadlines = new Deadlines()
  readonly pool = new OriginPool(this.deadlines)
  readonly log: AccessLog
  private readonly allow: AllowList
  private readonly context: ConnectionContext
  private readonly servers: Array<net.Server> = []
  private readonly connections = new Set<Connection>()
  readonly keepalive = new KeepaliveArmer(this.deadlines, this.connections)
  private readonly refused = new Set<Refused>()
  private readonly forbidden: Uint8Array
  private accepting = false
  private onDrained: Array<() => void> = []
  private graceTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private draining = false
  /** Proxy authentication (init.authFile), or undefined when it is off. */
  readonly auth: ProxyAuth | undefined

  constructor(init: WorkerInit, options: ProxyServerOptions = {}) {
    this.init = init
    this.log = new AccessLog({
      format: init.logFormat,
      level: init.logLevel,
      worker: init.id,
      ...(options.write === undefined ? {} : { write: options.write }),
    })
    this.allow = AllowList.parse(init.allow)
    this.forbidden = forbiddenResponse(init.via)
    this.auth = init.authFile === undefined ? undefined : new ProxyAuth({
      path: init.authFile,
      counters: this.stats,
      now: () => this.deadlines.now(),
      log: this.log,
      // The process's shared verifier thread (supervisor); without a port (in-process tests) a thread of its own.
      ...(init.verifierPort === undefined ? {} : { verifier: new PortVerifier(init.verifierPort) }),
      ...(options.authFilePollMs === undefined ? {} : { pollMs: options.authFilePollMs }),
    })
    this.context = {
      limits: init.limits,
      via: init.via,
      deadlines: this.deadlines,
      resolve: withTestHooks(
        options.resolve ?? makeResolve({ hosts: init.hosts, ...(options.lookup === undefined ? {} : { lookup: options.lookup }) }),
        options.testHooks === true,
        this.log,
      ),
      log: this.log,
      stats: this.stats,
      pool: this.pool,
      keepalive: this.keepalive,
      onFinished: (connection) => this.connectionFinished(connection),
      ...(init.upstream === undefined ? {} : { upstream: new UpstreamRoutes(init.upstream, init.noUpstream ?? []) }),
      ...(this.auth === undefined ? {} : { auth: this.auth.authenticator }),
    }
  }

  /** Connections not yet finished (lingering ones included). */
  get liveConnections(): number {
    return this.connections.size
  }

  snapshot(): WorkerStats {
    return { ...this.stats }
  }

  /** Listen on every address of `init.listen`; on any failure close what was opened and report the first error. */
  listen(done: (result: ListenResult) => void): void {
    const addresses = this.init.listen
    const bound: Array<ListenAddress> = []
    let failed: ListenResult | undefined = undefined
    let pending = addresses.length
    if (pending === 0) return done({ ok: false, code: "ENOADDRESS", message: "no address to listen on" })
    const settle = () => {
      if (--pending > 0) return
      if (failed !== undefined) {
        for (const s of this.servers) s.close()
        this.servers.length = 0
        return done(failed)
      }
      this.accepting = true
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
        server.on("error", (e) => this.log.message("error", `listener ${address.host}:${address.port}: ${e.message}`))
        this.servers.push(server)
        const a = server.address()
        bound.push(typeof a === "object" && a !== null ? { host: a.address, port: a.port } : address)
        settle()
      })
    }
  }

  private accept(socket: net.Socket): void {
    this.stats.connectionsAccepted++
    if (!this.accepting) {
      socket.destroy()
      return
    }
    if (!this.allow.allows(socket.remoteAddress)) {
      this.refuse(socket)
      return
    }
    this.stats.connectionsLive++
    this.connections.add(new Connection(socket, this.context))
    this.keepalive.wake()
  }

  private refuse(socket: net.Socket): void {
    this.stats.errors++
    this.log.message("warn", `refused client ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}: not in the allow-list`)
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
    this.stats.connectionsLive--
    this.checkDrained()
  }

  /**
   * Graceful shutdown: stop accepting, ask every connection to finish, abort the rest after `graceMs`;
   * `done` runs once no connection is left. Calling it again only adds `done` (and never extends the grace).
   */
  shutdown(graceMs: number, done: () => void): void {
    this.onDrained.push(done)
    if (this.draining) return this.checkDrained()
    this.draining = true
    this.stopAccepting()
    this.pool.close()
    const now = this.deadlines.now()
    for (const connection of [...this.connections]) connection.shutdown(now)
    if (this.connections.size > 0 || this.refused.size > 0) {
      this.graceTimer = setTimeout(() => {
        this.graceTimer = undefined
        this.abortAll("shutdown: grace period over")
      }, Math.max(0, graceMs))
    }
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
    this.deadlines.stop()
    this.log.flush()
  }

  private stopAccepting(): void {
    this.accepting = false
    for (const s of this.servers) s.close()
    this.servers.length = 0
  }

  private abortAll(detail: string): void {
    const now = this.deadlines.now()
    for (const connection of [...this.connections]) connection.abort(detail, now)
    for (const r of [...this.refused]) r.socket.destroy()
  }

  private checkDrained(): void {
    if (!this.draining || this.connections.size > 0 || this.refused.size > 0 || this.onDrained.length === 0) return
    if (this.graceTimer !== undefined) {
      clearTimeout(this.graceTimer)
      this.graceTimer = undefined
    }
    this.deadlines.stop()
    this.log.flush()
    const callbacks = this.onDrained
    this.onDrained = []
    for (const f of callbacks) f()
  }
}
