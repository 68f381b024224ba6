/**
 * ProxyProtocol: the PROXY protocol header (v1 text, v2 binary) that a load balancer such as HAProxy
 * puts in front of the bytes of a connection, to say who the real client is.
 *
 * Owns the grammar of both versions (haproxy.org/download/2.6/doc/proxy-protocol.txt) and nothing
 * else: `parseProxyHeader` looks at the bytes received so far and says "need more", "invalid: why",
 * or "done: this many bytes were the header, and this is the client". It is pure (no socket, no
 * clock) so it can be tested byte by byte; the accept path (internal/ProxyHeaderReader.ts) feeds it.
 *
 * Strict on purpose: a header that is not exactly right is refused, never guessed at, because its
 * address decides what `allow`, rate limits and the access log believe about the client.
 *   v1: "PROXY TCP4 <ip4> <ip4> <port> <port>\r\n", "PROXY TCP6 <ip6> <ip6> <port> <port>\r\n", or
 *       "PROXY UNKNOWN[ anything]\r\n"; single spaces, 107 bytes at most, no leading zeros.
 *   v2: the 12-byte signature, version 2, command LOCAL or PROXY, then for PROXY the family
 *       TCP over IPv4 or IPv6 (or UNSPEC), and an address block at least as long as that family's.
 *       TLVs after the addresses are skipped unread.
 * LOCAL (v2, the load balancer's own health checks), UNKNOWN (v1) and UNSPEC (v2) carry no client:
 * the connection keeps its real peer address.
 */
import { isIPv6 } from "node:net"
import { parseAddress } from "./Allow.ts"

/** Who the header says the client is; `undefined` address: keep the socket's own peer. */
export interface ProxyHeader {
  readonly version: 1 | 2
  /** The client's address as text ("203.0.113.7", "2001:db8::1"), or undefined for LOCAL/UNKNOWN/UNSPEC. */
  readonly address: string | undefined
  readonly port: number
}

export type ProxyParse =
  | { readonly _tag: "NeedMore" }
  | { readonly _tag: "Invalid"; readonly reason: string }
  | { readonly _tag: "Done"; readonly header: ProxyHeader; readonly length: number }

/** The longest v1 line, CRLF included (the spec's figure for TCP6 with the longest addresses). */
export const V1_MAX_BYTES = 107
/** The v2 fixed part: signature (12), version/command, family/protocol, length (2). */
export const V2_FIXED_BYTES = 16
/** The v2 signature. */
export const V2_SIGNATURE: Uint8Array = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a)
const V1_PREFIX = "PROXY "

const NEED_MORE: ProxyParse = { _tag: "NeedMore" }
const invalid = (reason: string): ProxyParse => ({ _tag: "Invalid", reason })

/**
 * Parse the header at the start of `bytes` (everything received so far on the connection).
 * NeedMore is only answered while `bytes` is still a prefix of some valid header, so a client that
 * is not a PROXY protocol sender is refused at its first wrong byte.
 */
export const parseProxyHeader = (bytes: Uint8Array): ProxyParse => {
  if (bytes.length === 0) return NEED_MORE
  if (bytes[0] === 0x0d) return parseV2(bytes)
  if (bytes[0] === 0x50) return parseV1(bytes)
  return invalid('no PROXY protocol header (the connection does not start with "PROXY " or the v2 signature)')
}

// ---------------------------------------------------------------------------------------------
// Version 1: one line of text

const parseV1 = (bytes: Uint8Array): ProxyParse => {
  const prefix = Math.min(bytes.length, V1_PREFIX.length)
  for (let i = 0; i < prefix; i++) {
    if (bytes[i] !== V1_PREFIX.charCodeAt(i))
      return invalid('no PROXY protocol header (the connection does not start with "PROXY " or the v2 signature)')
  }
  let end = -1
  // The CR of the longest line is its byte V1_MAX_BYTES - 2 (the LF the last one).
  const scan = Math.min(bytes.length, V1_MAX_BYTES - 1)
  for (let i = prefix; i < scan; i++) {
    const b = bytes[i] as number
    if (b === 0x0d) {
      if (i + 1 >= bytes.length) return NEED_MORE
      if (bytes[i + 1] !== 0x0a) return invalid("v1 header: CR not followed by LF")
      end = i
      break
    }
    if (b < 0x20 || b > 0x7e) return invalid("v1 header: a byte that is not printable ASCII before CRLF")
  }
  if (end < 0) return bytes.length < V1_MAX_BYTES - 1 ? NEED_MORE : invalid(`v1 header: no CRLF within ${V1_MAX_BYTES} bytes`)
  let line = ""
  for (let i = V1_PREFIX.length; i < end; i++) line += String.fromCharCode(bytes[i] as number)
  const length = end + 2
  if (line === "UNKNOWN" || line.startsWith("UNKNOWN ")) return done(1, undefined, 0, length)
  const fields = line.split(" ")
  if (fields.length !== 5) return invalid('v1 header: expected "PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>"')
  const [family, source, destination, sourcePort, destinationPort] = fields as [string, string, string, string, string]
  const isAddress = family === "TCP4" ? isDottedQuad : family === "TCP6" ? isStrictIPv6 : undefined
  if (isAddress === undefined) return invalid(`v1 header: unknown protocol ${JSON.stringify(family)} (expected TCP4, TCP6 or UNKNOWN)`)
  if (!isAddress(source) || !isAddress(destination))
    return invalid(`v1 header: an address is not a valid ${family === "TCP4" ? "IPv4" : "IPv6"} address`)
  const port = parsePort(sourcePort)
  if (port < 0 || parsePort(destinationPort) < 0) return invalid("v1 header: a port is not a decimal number 0-65535 without leading zeros")
  // One spelling per IPv6 address (as v2 gives it), so that per-client counts do not split on "0db8" vs "db8".
  return done(1, family === "TCP6" ? formatIPv6(parseAddress(source) as Uint8Array, 0) : source, port, length)
}

const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/
const isDottedQuad = (text: string): boolean => DOTTED_QUAD.test(text)
/** An IPv6 address without a zone ("%eth0") or brackets. */
const isStrictIPv6 = (text: string): boolean => !text.includes("%") && isIPv6(text)

/** A port "0".."65535" without leading zeros; -1 if not. */
const parsePort = (text: string): number => {
  if (!/^(?:0|[1-9]\d{0,4})$/.test(text)) return -1
  const n = Number(text)
  return n <= 65535 ? n : -1
}

// ---------------------------------------------------------------------------------------------
// Version 2: binary

const COMMAND_LOCAL = 0x0
const COMMAND_PROXY = 0x1
const TCP_OVER_IPV4 = 0x11
const TCP_OVER_IPV6 = 0x21
const UNSPEC = 0x00
const IPV4_BLOCK = 12 // 4 + 4 + 2 + 2
const IPV6_BLOCK = 36 // 16 + 16 + 2 + 2

const parseV2 = (bytes: Uint8Array): ProxyParse => {
  const prefix = Math.min(bytes.length, V2_SIGNATURE.length)
  for (let i = 0; i < prefix; i++) {
    if (bytes[i] !== V2_SIGNATURE[i])
      return invalid('no PROXY protocol header (the connection does not start with "PROXY " or the v2 signature)')
  }
  if (bytes.length <= 12) return NEED_MORE
  const versionCommand = bytes[12] as number
  if (versionCommand >> 4 !== 2) return invalid(`v2 header: version ${versionCommand >> 4} (only 2 exists)`)
  const command = versionCommand & 0x0f
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY)
    return invalid(`v2 header: unknown command ${command} (expected LOCAL or PROXY)`)
  if (bytes.length <= 13) return NEED_MORE
  const family = bytes[13] as number
  const known = family === TCP_OVER_IPV4 || family === TCP_OVER_IPV6 || family === UNSPEC
  // LOCAL ignores the family (the spec says so); a PROXY must be TCP over IP, or say it does not know.
  if (command === COMMAND_PROXY && !known) {
    return invalid(`v2 header: family/protocol 0x${family.toString(16).padStart(2, "0")} is not TCP over IPv4 or IPv6`)
  }
  if (bytes.length < V2_FIXED_BYTES) return NEED_MORE
  const blockLength = ((bytes[14] as number) << 8) | (bytes[15] as number)
  const needed = command === COMMAND_LOCAL ? 0 : family === TCP_OVER_IPV4 ? IPV4_BLOCK : family === TCP_OVER_IPV6 ? IPV6_BLOCK : 0
  if (blockLength < needed) return invalid(`v2 header: address block of ${blockLength} bytes, shorter than the ${needed} its family needs`)
  const length = V2_FIXED_BYTES + blockLength
  if (bytes.length < length) return NEED_MORE
  if (command === COMMAND_LOCAL || family === UNSPEC) return done(2, undefined, 0, length)
  const at = V2_FIXED_BYTES
  if (family === TCP_OVER_IPV4) {
    const address = `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`
    return done(2, address, ((bytes[at + 8] as number) << 8) | (bytes[at + 9] as number), length)
  }
  return done(2, formatIPv6(bytes, at), ((bytes[at + 32] as number) << 8) | (bytes[at + 33] as number), length)
}

const done = (version: 1 | 2, address: string | undefined, port: number, length: number): ProxyParse => ({
  _tag: "Done",
  header: { version, address, port },
  length,
})

/**
 * 16 bytes at `at` as RFC 5952 text: lower case, the longest run (2 words or more) of zero words as
 * "::", and an IPv4-mapped address as "::ffff:a.b.c.d" (what Node shows for a dual-stack peer).
 */
export const formatIPv6 = (bytes: Uint8Array, at: number): string => {
  const words: Array<number> = []
  for (let i = 0; i < 8; i++) words.push(((bytes[at + 2 * i] as number) << 8) | (bytes[at + 2 * i + 1] as number))
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes[at + 12]}.${bytes[at + 13]}.${bytes[at + 14]}.${bytes[at + 15]}`
  }
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = (ws: Array<number>): string => ws.map((w) => w.toString(16)).join(":")
  if (bestStart < 0) return hex(words)
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`
}
