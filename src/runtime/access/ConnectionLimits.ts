/**
 * ConnectionLimits: the accept-side gate of one worker. It owns
 * - the process-wide cap (`--max-connections`) and the per-client-address cap
 *   (`--max-connections-per-client`), exact across worker threads: the counts live in a SharedArrayBuffer
 *   that every worker shares (internal/SharedLimits.ts), made by the supervisor;
 * - what happens over a cap: the new connection is closed at once, before a byte is read or written (the
 *   cheapest answer to a flood: no response to write, no descriptor held), and one warn line per cap per
 *   interval says so, with the count of the others;
 * - the policy for running out of file descriptors: pause accepting for ACCEPT_PAUSE_MS (the caller's
 *   `pause`), log once per interval. libuv never reports EMFILE on accept to Node (it accepts and closes
 *   the connection itself, so the loop never spins), so the gate looks ahead instead: an accepted socket's
 *   descriptor number is the lowest free one, so a number within RESERVE of the process's limit means all
 *   below it are in use; that connection is closed and accepting pauses, which keeps the last descriptors
 *   for the origin connections of the clients already served. EMFILE/ENFILE on an origin connect pauses too.
 *
 * A client the allow-list refuses is never counted (the caller judges it first; its 403 may linger for
 * a moment and must not hold a slot that an allowed client needs): only `closeIfOutOfDescriptors` applies.
 *
 * The caller (ProxyServer) calls `admit` once per accepted socket and `release` once when it is gone;
 * `admit` marks the socket, so `release` is idempotent and knows what to give back. With the PROXY protocol
 * the client address is known only after the header: call `admit` with no address at accept and
 * `admitClient` with the header's client then (both mark the same socket).
 *
 * It never reads or writes client bytes and never touches the listeners itself.
 */
import { readFileSync } from "node:fs"
import type * as net from "node:net"
import type { AccessLog } from "../observe/AccessLog.ts"
import { parseAddress } from "./Cidr.ts"
import { type ClientKey, makeSharedLimitsBuffer, SharedLimits } from "./SharedLimits.ts"

/** What the supervisor passes to each worker (`WorkerInit.connectionLimits`). */
export interface ConnectionLimitsInit {
  /** Live connections allowed in the whole process (all workers together). */
  readonly maxConnections: number
  /** Live connections allowed from one client address (all workers together). */
  readonly maxConnectionsPerClient: number
  /** The shared counts (internal/SharedLimits.ts), made by `makeConnectionLimits`. */
  readonly buffer: SharedArrayBuffer
}

export const DEFAULT_MAX_CONNECTIONS = 20_000
export const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 15_000
/**
 * The init for every worker: one buffer for the process, with a slot for each worker id below `workers`
 * (ids are the supervisor's slot numbers, kept by a replacement thread).
 */
export const makeConnectionLimits = (maxConnections: number, maxConnectionsPerClient: number, workers: number): ConnectionLimitsInit => ({
  maxConnections,
  maxConnectionsPerClient,
  buffer: makeSharedLimitsBuffer(workers, maxConnections, (Math.random() * 0x100000000) | 0),
})

/** Give back what a worker that is gone held (the supervisor calls it when a worker thread ends). */
export const releaseWorker = (init: ConnectionLimitsInit, worker: number): void => {
  new SharedLimits(init.buffer).releaseWorker(worker)
}

/** How long accepting pauses after EMFILE/ENFILE. */
export const ACCEPT_PAUSE_MS = 1_000
/** At most one warn line per cause per interval. */
export const LOG_INTERVAL_MS = 10_000
/** Descriptors kept free for the connections already open: accepting pauses when fewer are left. */
export const descriptorReserve = (limit: number): number => Math.max(8, Math.floor(limit / 16))

/** The process's open-files limit (soft), from /proc/self/limits; undefined where that file does not exist. */
export const openFilesLimit = (): number | undefined => {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))
    return m === null ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

/** The descriptor of a socket (libuv's handle), or -1 where it has none. */
const descriptorOf = (socket: net.Socket): number => {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd
  return typeof fd === "number" ? fd : -1
}

/** Addresses whose key is remembered (the memory is dropped when full). */
const REMEMBERED = 4096

const kAdmitted = Symbol("hctunnel.admitted")
interface AdmittedSocket extends net.Socket {
  /** true: counted in the process total; a key: also counted for that client. */
  [kAdmitted]?: true | ClientKey | undefined
}

/** One warn line per interval, with the number of occurrences since the last line. */
class RateLimitedWarning {
  private lastAt = -Infinity
  private suppressed = 0
  private readonly log: AccessLog
  private readonly now: () => number
  constructor(log: AccessLog, now: () => number) {
    this.log = log
    this.now = now
  }
  warn(text: () => string): void {
    const now = this.now()
    if (now - this.lastAt < LOG_INTERVAL_MS) {
      this.suppressed++
      return
    }
    const others = this.suppressed === 0 ? "" : ` (and ${this.suppressed} more since the last such line)`
    this.lastAt = now
    this.suppressed = 0
    this.log.message("warn", `${text()}${others}`)
  }
}

export class ConnectionLimits {
  readonly maxConnections: number
  readonly maxConnectionsPerClient: number
  /** Counters of this worker (for stats and metrics): connections closed over each cap, pauses for descriptors. */
  closedOverTotal = 0
  closedOverClient = 0
  closedForDescriptors = 0
  private readonly shared: SharedLimits
  private readonly worker: number
  /** The per-client count is skipped when it cannot bind before the process-wide one. */
  private readonly perClient: boolean
  private readonly keys = new Map<string, ClientKey | null>()
  private readonly overTotal: RateLimitedWarning
  private readonly overClient: RateLimitedWarning
  private readonly exhausted: RateLimitedWarning
  /** An accepted descriptor at or above this number means the process is nearly out of them. */
  private readonly descriptorCeiling: number
  private readonly descriptorLimit: number
  private readonly pause: () => void

  /**
   * `pause`: stop accepting for ACCEPT_PAUSE_MS (the caller owns the listeners). `descriptorLimit`: the
   * open-files limit (default: read from /proc/self/limits; undefined: no look-ahead).
   */
  constructor(
    init: ConnectionLimitsInit | undefined,
    worker: number,
    log: AccessLog,
    pause: () => void,
    descriptorLimit: number | undefined = openFilesLimit(),
    now: () => number = () => performance.now(),
  ) {
    this.pause = pause
    this.descriptorLimit = descriptorLimit ?? Infinity
    this.descriptorCeiling = descriptorLimit === undefined ? Infinity : descriptorLimit - descriptorReserve(descriptorLimit)
    const own = init ?? makeConnectionLimits(DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_CLIENT, worker + 1)
    this.maxConnections = own.maxConnections
    this.maxConnectionsPerClient = own.maxConnectionsPerClient
    this.shared = new SharedLimits(own.buffer)
    this.worker = worker
    this.perClient = own.maxConnectionsPerClient < own.maxConnections
    this.overTotal = new RateLimitedWarning(log, now)
    this.overClient = new RateLimitedWarning(log, now)
    this.exhausted = new RateLimitedWarning(log, now)
  }

  /** Live connections of the process now (all workers). */
  get total(): number {
    return this.shared.total
  }

  /** Live connections of `address` now (all workers). */
  clientCount(address: string): number {
    const key = this.keyOf(address)
    return key === null ? 0 : this.shared.clientCount(key)
  }

  /**
   * A socket was accepted from client `address`: count it, or close it at once and return false when a cap
   * is reached. (The accept path: one Atomics add, plus a table update under a short lock for the client.)
   * `undefined`: the client is not known yet (a PROXY protocol header will name it): only the process-wide
   * cap now, and `admitClient` once it is known. (Never the socket's peer by default: behind a load
   * balancer that is the balancer, and counting it would lock every client out at once; issue 17 item 2.)
   */
  admit(socket: net.Socket, address: string | undefined): boolean {
    if (this.closeIfOutOfDescriptors(socket)) return false
    return this.admitTotal(socket) && (address === undefined || this.admitClient(socket, address))
  }

  /**
   * The descriptor look-ahead alone, for a socket that is not counted (a refused client, whose 403 may
   * linger): true when it was closed because the process is nearly out of descriptors (accepting pauses).
   */
  closeIfOutOfDescriptors(socket: net.Socket): boolean {
    if (descriptorOf(socket) < this.descriptorCeiling) return false
    this.closedForDescriptors++
    this.outOfDescriptors(`fewer than ${this.descriptorLimit - this.descriptorCeiling} of ${this.descriptorLimit} left`)
    socket.destroy()
    return true
  }

  /** The process-wide cap alone (for a caller that learns the client address later). */
  admitTotal(socket: net.Socket): boolean {
    if (!this.shared.acquireTotal(this.worker, this.maxConnections)) {
      this.closedOverTotal++
      this.overTotal.warn(
        () => `connection limit reached: ${this.maxConnections} connections open, closing new ones at once (--max-connections)`,
      )
      socket.destroy()
      return false
    }
    ;(socket as AdmittedSocket)[kAdmitted] = true
    return true
  }

  /** The per-client cap, for a socket admitted by `admitTotal`: false (socket closed, all released) when over. */
  admitClient(socket: net.Socket, address: string | undefined): boolean {
    if (!this.perClient) return true
    const key = address === undefined ? null : this.keyOf(address)
    if (key === null) return true // not an IP address (a Unix socket, a test double): nothing to count it by
    const verdict = this.shared.acquireClient(key, this.worker, this.maxConnectionsPerClient)
    if (verdict === "full") {
      this.closedOverClient++
      this.overClient.warn(
        () =>
          `connection limit reached for client ${address}: ${this.maxConnectionsPerClient} connections open, closing new ones at once (--max-connections-per-client)`,
      )
      this.release(socket)
      socket.destroy()
      return false
    }
    if (verdict === "ok") (socket as AdmittedSocket)[kAdmitted] = key
    return true
  }

  /** The socket is gone: give back what `admit` counted for it. Idempotent. */
  release(socket: net.Socket): void {
    const s = socket as AdmittedSocket
    const admitted = s[kAdmitted]
    if (admitted === undefined) return
    s[kAdmitted] = undefined
    if (admitted !== true) this.shared.releaseClient(admitted, this.worker)
    this.shared.releaseTotal(this.worker)
  }

  /** An error on a listener or an origin connect: EMFILE/ENFILE pause accepting (true), anything else is the caller's (false). */
  socketError(code: string | undefined, where: "accept" | "connect"): boolean {
    if (code !== "EMFILE" && code !== "ENFILE") return false
    this.outOfDescriptors(`${code} on ${where}`)
    return true
  }

  private outOfDescriptors(why: string): void {
    this.exhausted.warn(
      () =>
        `out of file descriptors (${why}): pausing accepting for ${ACCEPT_PAUSE_MS} ms at a time; open connections are served. ` +
        `Raise the limit (ulimit -n) or lower --max-connections`,
    )
    this.pause()
  }

  private keyOf(address: string): ClientKey | null {
    let key = this.keys.get(address)
    if (key !== undefined) return key
    const pct = address.indexOf("%") // IPv6 zone
    const bytes = parseAddress(pct < 0 ? address : address.slice(0, pct))
    key = bytes === undefined ? null : new Int32Array(bytes.buffer, bytes.byteOffset, 4)
    if (this.keys.size >= REMEMBERED) this.keys.clear()
    this.keys.set(address, key)
    return key
  }
}
