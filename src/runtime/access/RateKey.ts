/**
 * RateKey: what a per-client rate limit counts by, so that a client cannot get a fresh allowance by
 * changing its address within what it owns anyway.
 *
 * An IPv4 client is its address (an IPv4-mapped IPv6 peer, `::ffff:a.b.c.d`, counts as `a.b.c.d`). An
 * IPv6 client is its /64: the smallest block a network hands a host or a LAN (RFC 4291's interface
 * identifiers are 64 bits, and SLAAC and privacy addresses pick them freely), so one machine holds 2^64
 * addresses and counting per address would count nothing. The key of an IPv6 client is the /64 written
 * as a CIDR (`2001:db8:1:2::/64`), readable in a log line. Anything that is not an address (a socket
 * whose peer is already gone: `?`) is its own key.
 *
 * Pure: no IO, no state.
 */
import { parseAddress } from "./Cidr.ts"
import { formatIPv6 } from "./ProxyProtocol.ts"

/** The IPv6 prefix length a client is counted by. */
export const IPV6_CLIENT_PREFIX = 64

export const rateKeyOf = (address: string): string => {
  const bytes = parseAddress(address)
  if (bytes === undefined) return address
  if (isIPv4Mapped(bytes)) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
  bytes.fill(0, IPV6_CLIENT_PREFIX / 8)
  return `${formatIPv6(bytes, 0)}/${IPV6_CLIENT_PREFIX}`
}

const isIPv4Mapped = (bytes: Uint8Array): boolean => {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return bytes[10] === 0xff && bytes[11] === 0xff
}
