/**
 * SpecialRanges: the addresses an exposed proxy does not dial unless an `--allow-to` rule names them.
 *
 * Owns the table and the lookup. The list is the IANA IPv4 and IPv6 Special-Purpose Address Registries
 * (RFC 6890 and the RFCs that added entries since), every entry of them, whether the registry calls it
 * globally reachable or not: none of them holds a web site a client needs through a proxy, and several
 * lead into the proxy's own network (loopback, private, link-local, benchmarking, the translation and
 * tunnelling prefixes whose gateway dials an address of its own choosing). Added to the registries:
 * multicast (its own registry), the deprecated IPv6 site-local prefix, and cloud metadata addresses that
 * no range above covers. docs/security.md's table of the defaults is this table (a test compares them).
 *
 * Four prefixes are not denied as a whole but judged by the IPv4 address they carry, so that no IPv6
 * spelling of an IPv4 address gets another verdict than the address itself: IPv4-mapped
 * (`::ffff:0:0/96`, how every IPv4 address is held here), IPv4-compatible (`::/96`, deprecated; parsed
 * as IPv4 by DestinationRules.addressBytes) and the NAT64 well-known prefix (`64:ff9b::/96`, RFC 6052:
 * a NAT64 gateway dials the IPv4 address in its last 32 bits).
 *
 * The first entry that contains an address names it, so an entry comes before any entry that contains
 * it (`192.0.0.9/32` before `192.0.0.0/24`).
 */
import { type Cidr, matches, parseCidr } from "../access/Allow.ts"
import { mappedV4 } from "./DestinationRules.ts"

export interface SpecialRange {
  /** The word a denial gives (`destination 10.0.0.1:443 denied: private`). */
  readonly name: string
  /** The network as an operator writes it in `--allow-to` (the denial's hint). */
  readonly text: string
  readonly cidr: Cidr
  /** What the range is and why a proxy open to others must not dial it by default. */
  readonly reason: string
}

const entry = (text: string, name: string, reason: string): SpecialRange => ({ name, text, cidr: parseCidr(text), reason })

/** IPv4, from the IANA IPv4 Special-Purpose Address Registry unless the reason says otherwise. */
export const specialRangesV4: ReadonlyArray<SpecialRange> = [
  entry("0.0.0.0/8", "unspecified", '"This network" (RFC 791); Linux dials 0.0.0.0 as this host'),
  entry("10.0.0.0/8", "private", "private-use (RFC 1918): the network behind the proxy"),
  entry("100.64.0.0/10", "private", "shared address space, carrier-grade NAT (RFC 6598); also cloud services (100.100.100.200)"),
  entry("127.0.0.0/8", "loopback", "loopback (RFC 1122): the proxy host's own services"),
  entry("169.254.0.0/16", "link-local", "link-local (RFC 3927); the cloud metadata service 169.254.169.254"),
  entry("172.16.0.0/12", "private", "private-use (RFC 1918)"),
  entry("192.0.0.0/29", "ietf-protocol", "IPv4 service continuity prefix, DS-Lite (RFC 7335)"),
  entry("192.0.0.8/32", "ietf-protocol", "IPv4 dummy address (RFC 7600)"),
  entry("192.0.0.9/32", "ietf-protocol", "Port Control Protocol anycast (RFC 7723): the local network's PCP server"),
  entry("192.0.0.10/32", "ietf-protocol", "TURN anycast (RFC 8155): the local network's TURN server"),
  entry("192.0.0.170/31", "ietf-protocol", "NAT64/DNS64 discovery (RFC 7050, RFC 8880)"),
  entry("192.0.0.0/24", "ietf-protocol", "IETF protocol assignments (RFC 6890)"),
  entry("192.0.2.0/24", "documentation", "documentation, TEST-NET-1 (RFC 5737)"),
  entry("192.31.196.0/24", "as112", "AS112 DNS sink (RFC 7535)"),
  entry("192.52.193.0/24", "amt", "Automatic Multicast Tunneling relays (RFC 7450)"),
  entry("192.88.99.0/24", "6to4-relay", "6to4 relay anycast, deprecated (RFC 7526): a relay tunnels to an address of its choosing"),
  entry("192.168.0.0/16", "private", "private-use (RFC 1918)"),
  entry("192.175.48.0/24", "as112", "AS112 direct delegation DNS sink (RFC 7534)"),
  entry("198.18.0.0/15", "benchmarking", "network benchmarking (RFC 2544): test networks inside an organisation"),
  entry("198.51.100.0/24", "documentation", "documentation, TEST-NET-2 (RFC 5737)"),
  entry("203.0.113.0/24", "documentation", "documentation, TEST-NET-3 (RFC 5737)"),
  entry("224.0.0.0/4", "multicast", "multicast (RFC 5771; the IANA multicast registry): no TCP peer"),
  entry("255.255.255.255/32", "broadcast", "limited broadcast (RFC 919, RFC 8190)"),
  entry("240.0.0.0/4", "reserved", "reserved for future use (RFC 1112)"),
  entry("168.63.129.16/32", "cloud-metadata", "not in the registry: Azure's platform address (WireServer, metadata, DNS)"),
]

/** IPv6, from the IANA IPv6 Special-Purpose Address Registry unless the reason says otherwise. */
export const specialRangesV6: ReadonlyArray<SpecialRange> = [
  entry("::/128", "unspecified", "unspecified address (RFC 4291); Linux dials it as this host"),
  entry("::1/128", "loopback", "loopback (RFC 4291)"),
  entry("::ffff:0:0:0/96", "ipv4-translated", "IPv4-translated (SIIT, RFC 2765): a translator dials the IPv4 address it carries"),
  entry("64:ff9b:1::/48", "nat64-local", "local-use IPv4/IPv6 translation (RFC 8215): the network's own NAT64, mapping of its choosing"),
  entry("100::/64", "discard", "discard-only (RFC 6666)"),
  entry("100:0:0:1::/64", "discard", "dummy IPv6 prefix (RFC 9780)"),
  entry("2001::/32", "teredo", "Teredo (RFC 4380): a relay tunnels to the IPv4 address it carries"),
  entry("2001:1::1/128", "ietf-protocol", "Port Control Protocol anycast (RFC 7723)"),
  entry("2001:1::2/128", "ietf-protocol", "TURN anycast (RFC 8155)"),
  entry("2001:1::3/128", "ietf-protocol", "DNS-SD service registration protocol anycast (RFC 9665)"),
  entry("2001:2::/48", "benchmarking", "network benchmarking (RFC 5180)"),
  entry("2001:3::/32", "amt", "Automatic Multicast Tunneling (RFC 7450)"),
  entry("2001:4:112::/48", "as112", "AS112-v6 DNS sink (RFC 7535)"),
  entry("2001:10::/28", "orchid", "ORCHID, deprecated (RFC 4843): identifiers, not locators"),
  entry("2001:20::/28", "orchid", "ORCHIDv2 (RFC 7343): identifiers, not locators"),
  entry("2001:30::/28", "drone-remote-id", "drone remote ID entity tags (RFC 9374): identifiers, not locators"),
  entry("2001::/23", "ietf-protocol", "IETF protocol assignments (RFC 2928)"),
  entry("2001:db8::/32", "documentation", "documentation (RFC 3849)"),
  entry("2002::/16", "6to4", "6to4 (RFC 3056): a relay tunnels to the IPv4 address it carries"),
  entry("2620:4f:8000::/48", "as112", "AS112 direct delegation DNS sink (RFC 7534)"),
  entry("3fff::/20", "documentation", "documentation (RFC 9637)"),
  entry("5f00::/16", "srv6-sid", "segment routing (SRv6) SIDs (RFC 9602): routes inside an operator's network"),
  entry("fc00::/7", "private", "unique local (RFC 4193): the network behind the proxy; also cloud metadata (fd00:ec2::254)"),
  entry("fe80::/10", "link-local", "link-scoped unicast (RFC 4291)"),
  entry("fec0::/10", "private", "not in the registry: site-local, deprecated (RFC 3879) but still routed by some"),
  entry("ff00::/8", "multicast", "not in the registry: multicast (RFC 4291), no TCP peer"),
]

/** Every entry, IPv4 first. */
export const specialRanges: ReadonlyArray<SpecialRange> = [...specialRangesV4, ...specialRangesV6]

/** 64:ff9b::/96 (RFC 6052): a NAT64 gateway dials the IPv4 address in the last 32 bits. */
const NAT64 = parseCidr("64:ff9b::/96")

/** ::ffff:0:0/96: an IPv4 address, as every one is held here. */
const isMappedV4 = (b: Uint8Array): boolean => {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}

const first = (table: ReadonlyArray<SpecialRange>, b: Uint8Array): SpecialRange | undefined => {
  for (const r of table) if (matches(r.cidr, b)) return r
  return undefined
}

/**
 * The special range `b` (16 bytes, IPv4 mapped) is in; for a NAT64 address, the range of the IPv4
 * address it leads to (`nat64` true). Undefined: none.
 */
export const specialRange = (b: Uint8Array): { readonly range: SpecialRange; readonly nat64: boolean } | undefined => {
  if (isMappedV4(b)) {
    const range = first(specialRangesV4, b)
    return range === undefined ? undefined : { range, nat64: false }
  }
  if (matches(NAT64, b)) {
    const range = first(specialRangesV4, mappedV4(b))
    return range === undefined ? undefined : { range, nat64: true }
  }
  const range = first(specialRangesV6, b)
  return range === undefined ? undefined : { range, nat64: false }
}
