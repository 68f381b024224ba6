/**
 * ProxyHeaderReader: the pre-phase of a connection from a load balancer that speaks the PROXY
 * protocol (`--proxy-protocol-from`): read the header, then hand the socket on.
 *
 * Owns the sockets whose header has not arrived yet: their bytes until the header is complete (fed
 * to the pure parser in ../ProxyProtocol.ts), the `headTimeout` deadline that bounds the wait, and
 * closing those that send a malformed header, end or time out first. A complete header gives
 * `admit(socket, client, rest)`: the client the header names (or the socket's own peer for LOCAL /
 * UNKNOWN), and the bytes that followed it, which become the Connection's first `Received`.
 *
 * It never creates a Connection or answers HTTP itself (a load balancer is not an HTTP client), and
 * its listeners are all gone from the socket before `admit` runs.
 */
import type * as net from "node:net"
import type { AccessLog } from "../observe/AccessLog.ts"
import type { Deadlines, Timed } from "../timers/Deadlines.ts"
import { peerOf } from "./Peer.ts"
import { parseProxyHeader } from "./ProxyProtocol.ts"

/** The client a connection stands for: from the PROXY header, or the socket's own peer. */
export interface ClientAddress {
  readonly address: string
  readonly port: number
}

export interface ProxyHeaderReaderOptions {
  readonly deadlines: Deadlines
  readonly log: AccessLog
  /** How long the header may take (the `headTimeout` limit), in ms. */
  readonly timeoutMs: number
  /** The header is complete: the socket is the caller's again. `rest` may be empty. */
  readonly admit: (socket: net.Socket, client: ClientAddress, rest: Buffer) => void
  /** A socket was closed without being admitted (malformed header, timeout, peer gone). */
  readonly rejected: (kind: "malformed" | "timeout" | "gone", socket: net.Socket) => void
  /** The last waiting socket is gone (for the drain check). */
  readonly settled: () => void
}

const EMPTY = Buffer.alloc(0)

/** One socket whose header is on its way. */
class Waiting implements Timed {
  deadlineIndex = -1
  deadlineAt = 0
  readonly socket: net.Socket
  private readonly reader: ProxyHeaderReader
  /** What arrived so far (the header is at most 16 + 65535 bytes, and only listed sources get here). */
  private bytes: Buffer = EMPTY
  readonly onData = (chunk: Buffer): void => this.received(chunk)
  readonly onEnd = (): void => this.reader.close(this, "gone", "debug", "closed before its PROXY protocol header was complete")
  readonly onError = (e: Error): void => this.reader.close(this, "gone", "debug", `error before its PROXY protocol header: ${e.message}`)
  readonly onClose = (): void => this.reader.close(this, "gone", "debug", "closed before its PROXY protocol header was complete")

  constructor(socket: net.Socket, reader: ProxyHeaderReader) {
    this.socket = socket
    this.reader = reader
  }

  onDeadline(): void {
    this.reader.close(this, "timeout", "warn", "no complete PROXY protocol header within the head timeout")
  }

  private received(chunk: Buffer): void {
    this.bytes = this.bytes.length === 0 ? chunk : Buffer.concat([this.bytes, chunk])
    const r = parseProxyHeader(this.bytes)
    if (r._tag === "NeedMore") return
    if (r._tag === "Invalid") return this.reader.close(this, "malformed", "warn", r.reason)
    const header = r.header
    const client: ClientAddress =
      header.address === undefined
        ? { address: this.socket.remoteAddress ?? "?", port: this.socket.remotePort ?? 0 }
        : { address: header.address, port: header.port }
    // A copy: the bytes that follow may sit in a read buffer that is reused.
    this.reader.done(this, client, r.length === this.bytes.length ? EMPTY : Buffer.from(this.bytes.subarray(r.length)))
  }
}

export class ProxyHeaderReader {
  private readonly options: ProxyHeaderReaderOptions
  private readonly waiting = new Set<Waiting>()

  constructor(options: ProxyHeaderReaderOptions) {
    this.options = options
  }

  /** Sockets still waiting for their header. */
  get size(): number {
    return this.waiting.size
  }

  /** Start reading the header of a freshly accepted socket. */
  read(socket: net.Socket): void {
    const w = new Waiting(socket, this)
    this.waiting.add(w)
    socket.on("data", w.onData)
    socket.on("end", w.onEnd)
    socket.on("error", w.onError)
    socket.on("close", w.onClose)
    this.options.deadlines.set(w, this.options.deadlines.now() + this.options.timeoutMs)
  }

  /** Close every waiting socket (shutdown: none of them has a request in flight yet). */
  destroyAll(): void {
    for (const w of [...this.waiting]) this.close(w, "gone", "debug", "shutting down")
  }

  /** @internal */ done(w: Waiting, client: ClientAddress, rest: Buffer): void {
    if (!this.release(w)) return
    this.options.admit(w.socket, client, rest)
    this.options.settled()
  }

  /** @internal */ close(w: Waiting, kind: "malformed" | "timeout" | "gone", level: "debug" | "warn", why: string): void {
    if (!this.release(w)) return
    this.options.log.message(level, `connection ${peerOf(w.socket)}: closed: ${why}`)
    w.socket.on("error", () => {}) // a reset after our close is not news
    w.socket.destroy()
    this.options.rejected(kind, w.socket)
    this.options.settled()
  }

  /** Take `w` out of the waiting set and off its socket; false if it was already gone. */
  private release(w: Waiting): boolean {
    if (!this.waiting.delete(w)) return false
    this.options.deadlines.cancel(w)
    const s = w.socket
    s.removeListener("data", w.onData)
    s.removeListener("end", w.onEnd)
    s.removeListener("error", w.onError)
    s.removeListener("close", w.onClose)
    return true
  }
}
