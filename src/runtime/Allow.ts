/**
 * Allow: the client address allow-list of a worker.
 *
 * Owns parsing CIDR strings (IPv4 "10.0.0.0/8", IPv6 "fd00::/8", a bare address = a single host) and
 * matching a client's remote address against them. Every address is compared as 16 bytes: IPv4 is
 * held in its IPv4-mapped IPv6 form (::ffff:a.b.c.d, prefix + 96), so an IPv4 rule matches a client
 * that arrives on a dual-stack socket as `::ffff:127.0.0.1`, and `::ffff:0:0/96` matches all of IPv4.
 *
 * An empty list allows nobody. A client outside the list is answered 403 by the listener and never
 * reaches a Postman (see `forbiddenResponse`).
 */
import { isIPv4, isIPv6 } from "node:net"

export interface Cidr {
  readonly bytes: Uint8Array // 16 bytes, host bits cleared
  readonly prefix: number // 0..128
}

export class CidrError extends Error {
  readonly _tag = "CidrError"
  readonly input: string
  constructor(input: string, reason: string) {
    super(`invalid CIDR ${JSON.stringify(input)}: ${reason}`)
    this.input = input
  }
}

/** Parse an IPv4 or IPv6 address (no brackets, no zone) into 16 bytes, IPv4 as IPv4-mapped; undefined if invalid. */
export const parseAddress = (text: string): Uint8Array | undefined => {
  if (isIPv4(text)) {
    const out = new Uint8Array(16)
    out[10] = 0xff
    out[11] = 0xff
    writeIPv4(text, out, 12)
    return out
  }
  if (!isIPv6(text)) return undefined
  const out = new Uint8Array(16)
  let tail = text
  // An embedded dotted quad takes the last 32 bits.
  let words = 8
  const lastColon = text.lastIndexOf(":")
  const maybeV4 = text.slice(lastColon + 1)
  let v4: string | undefined
  if (maybeV4.includes(".")) {
    v4 = maybeV4
    tail = text.slice(0, lastColon + 1)
    // "::1.2.3.4" keeps its "::"; "x:y:1.2.3.4" drops the separator before the quad.
    if (!tail.endsWith("::")) tail = tail.slice(0, -1)
    words = 6
  }
  const [head = "", rest] = tail.split("::") as [string, string | undefined]
  const headWords = head === "" ? [] : head.split(":")
  const restWords = rest === undefined || rest === "" ? [] : rest.split(":")
  const all = new Array<number>(words).fill(0)
  headWords.forEach((w, i) => (all[i] = parseInt(w, 16)))
  restWords.forEach((w, i) => (all[words - restWords.length + i] = parseInt(w, 16)))
  for (let i = 0; i < words; i++) {
    const w = all[i] ?? 0
    out[2 * i] = w >> 8
    out[2 * i + 1] = w & 0xff
  }
  if (v4 !== undefined) writeIPv4(v4, out, 12)
  return out
}

const writeIPv4 = (text: string, out: Uint8Array, at: number): void => {
  const parts = text.split(".")
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i])
}

/** Parse "addr/len" or a bare address. Throws CidrError. Host bits must be zero. */
export const parseCidr = (input: string): Cidr => {
  const text = input.trim()
  const slash = text.indexOf("/")
  const addr = slash < 0 ? text : text.slice(0, slash)
  const v4 = isIPv4(addr)
  const bytes = parseAddress(addr)
  if (bytes === undefined) throw new CidrError(input, "not an IPv4 or IPv6 address")
  const max = v4 ? 32 : 128
  let len = max
  if (slash >= 0) {
    const lenText = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) throw new CidrError(input, `prefix length must be 0..${max}`)
    len = Number(lenText)
  }
  const prefix = v4 ? len + 96 : len
  for (let bit = prefix; bit < 128; bit++) {
    if ((bytes[bit >> 3] as number) & (0x80 >> (bit & 7))) throw new CidrError(input, "address has non-zero host bits")
  }
  return { bytes, prefix }
}

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
   * connection was ~1.5 % of the worker's CPU at thousands of new connections a second.
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
