/**
 * The access/ folder owns who may come in, decided before a byte of HTTP is read: the client allow list
 * (this file) and its CIDRs (Cidr.ts), the connection limits and their table shared by the workers
 * (ConnectionLimits.ts, SharedLimits.ts), the PROXY protocol header and its reader (ProxyProtocol.ts,
 * ProxyHeaderReader.ts), the peer's address as a log writes it (Peer.ts) and the rate-limited log of
 * refusals (RefusalLog.ts). May import: timers/, observe/, src/core.
 *
 * Allow: the client address allow-list of a worker.
 *
 * Owns matching a client's remote address against a list of CIDRs (parsed by Cidr.ts, the one parser
 * the configuration check uses too). Every address is compared as 16 bytes: IPv4 is
 * held in its IPv4-mapped IPv6 form (::ffff:a.b.c.d, prefix + 96), so an IPv4 rule matches a client
 * that arrives on a dual-stack socket as `::ffff:127.0.0.1`, and `::ffff:0:0/96` matches all of IPv4.
 *
 * An empty list allows nobody. A client outside the list is answered 403 by the listener and never
 * reaches a Postman (see `forbiddenResponse`).
 */
import { type Cidr, parseAddress, parseCidr } from "./Cidr.ts"

// The CIDR grammar lives in Cidr.ts (shared with the configuration check); re-exported for existing users.
export { type Cidr, CidrError, parseAddress, parseCidr } from "./Cidr.ts"

/** True if `addr` (16 bytes, as from parseAddress) is inside `cidr`. */
export const matches = (cidr: Cidr, addr: Uint8Array): boolean => {
  const full = cidr.prefix >> 3
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== addr[i]) return false
  const bits = cidr.prefix & 7
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return ((addr[full] as number) & mask) === (cidr.bytes[full] as number)
}

/** Addresses whose verdict is remembered (the whole memory is dropped when full). */
const REMEMBERED = 1024

export class AllowList {
  readonly cidrs: ReadonlyArray<Cidr>
  /**
   * Verdicts by address text: clients come from few addresses, and parsing one for every accepted
   * connection showed in the worker's profile at thousands of new connections a second (docs/performance.md).
   */
  private readonly verdicts = new Map<string, boolean>()

  constructor(cidrs: ReadonlyArray<Cidr>) {
    this.cidrs = cidrs
  }

  /** Parse every CIDR string; throws CidrError on the first bad one. */
  static parse(list: ReadonlyArray<string>): AllowList {
    return new AllowList(list.map(parseCidr))
  }

  /** True if `address` (as in `socket.remoteAddress`) is in the list. Unknown or malformed addresses are refused. */
  allows(address: string | undefined): boolean {
    if (address === undefined) return false
    const known = this.verdicts.get(address)
    if (known !== undefined) return known
    const verdict = this.decide(address)
    if (this.verdicts.size >= REMEMBERED) this.verdicts.clear()
    this.verdicts.set(address, verdict)
    return verdict
  }

  private decide(address: string): boolean {
    const pct = address.indexOf("%") // IPv6 zone ("fe80::1%eth0")
    const bytes = parseAddress(pct < 0 ? address : address.slice(0, pct))
    if (bytes === undefined) return false
    for (const cidr of this.cidrs) if (matches(cidr, bytes)) return true
    return false
  }
}

/** The whole answer to a refused client: 403, short text body, `Connection: close`. */
export const forbiddenResponse = (via: string): Uint8Array => {
  const body = "403 Forbidden: client address not allowed\n"
  return new TextEncoder().encode(
    "HTTP/1.1 403 Forbidden\r\n" +
      "Content-Type: text/plain; charset=utf-8\r\n" +
      `Content-Length: ${body.length}\r\n` +
      `Via: 1.1 ${via.replace(/[^\x21-\x7e]/g, "")}\r\n` +
      "Connection: close\r\n" +
      "\r\n" +
      body,
  )
}
