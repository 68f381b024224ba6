/**
 * DestinationPolicy: where the proxy may connect to, decided on the address it is about to dial.
 *
 * Owns which rules apply when (their syntax is DestinationRules.ts), the default ranges and ports of an
 * exposed proxy, the proxy's own sockets, and one pure verdict function per destination. It never resolves a name,
 * dials, reads the clock or looks at the machine: the caller hands it the address it resolved (and
 * will dial, unchanged) and, once, the addresses of the local interfaces.
 *
 * Theory of operation. A destination is the host as the client asked for it, the address that will be
 * dialled (absent when a parent proxy resolves it), the port, and the kind (`connect` for a CONNECT
 * tunnel, `http` for a forwarded request). `check` goes through four steps, first verdict wins:
 *   1. self: every socket the process listens on, the proxy's listeners and the admin endpoint (and,
 *      for one on 0.0.0.0 / [::], every local address on its port, plus the unspecified address), is
 *      denied, whatever the rules say;
 *   2. deny rules: any `--deny-to` rule that matches denies (deny wins over allow);
 *   3. a proxy that is not exposed (`isExposed`: only this machine's users can reach it): everything
 *      else is allowed;
 *   4. an exposed proxy (some listen address is not loopback, or PROXY protocol is trusted, or the
 *      client allow list admits a non-loopback client), two defaults apply:
 *      - an address in a special range (SpecialRanges.ts: the IANA special-purpose registries, multicast,
 *        cloud metadata; an IPv4 address also as IPv4-mapped, IPv4-compatible or NAT64 IPv6) is denied
 *        unless an `--allow-to` rule with an explicit address (not `*`) matches;
 *      - CONNECT only to 443, plain HTTP only to Squid's Safe_ports, unless an `--allow-to` rule
 *        (`*` included) matches the destination with its port (a rule without ports matches every port).
 *
 * `check` is per address on purpose: a resolver that dials several addresses (Happy Eyeballs) filters
 * its list with it. `checkName` is the part that needs no address (name rules, `*` rules), run before
 * the lookup so that a denied name is never even resolved.
 */
import { networkInterfaces } from "node:os"
import { type Cidr, matches, parseAddress, parseCidr } from "../access/Allow.ts"
import { hostPort } from "../access/Peer.ts"
import { addressBytes, inPorts, isZero, normalHost, parseRule, type Rule, ruleMatches } from "./DestinationRules.ts"
import { specialRange } from "./SpecialRanges.ts"

export type DestinationKind = "connect" | "http"

export interface Destination {
  /** The host as the client asked for it (a name or an IP literal; brackets allowed). */
  readonly host: string
  /** The address that will be dialled; undefined when this proxy does not resolve it (a parent proxy does). */
  readonly address?: string | undefined
  readonly port: number
  readonly kind: DestinationKind
}

/** What a denial is about (worker stats count denials by this). */
export type DenialKind = "self" | "rule" | "range" | "port"

export interface Denial {
  readonly kind: DenialKind
  /** The rule that denied: `self`, the `--deny-to` rule's text, the range's name (`loopback`...), or `port`. */
  readonly rule: string
  /** The whole sentence for the client and the log: `destination 127.0.0.1:22 denied: loopback (allow it with --allow-to 127.0.0.0/8:22)`. */
  readonly message: string
}

/** A socket of the proxy itself: no destination in `cidr` on `port` may be dialled. */
export interface SelfSocket {
  readonly cidr: Cidr
  readonly port: number
}

export interface DestinationPolicy {
  readonly allow: ReadonlyArray<Rule>
  readonly deny: ReadonlyArray<Rule>
  /** Clients from elsewhere than this machine can reach it (`isExposed`): the defaults of step 4 apply. */
  readonly exposed: boolean
  readonly self: ReadonlyArray<SelfSocket>
  /** The ports of `self`, to skip parsing the address of the many destinations that are not on them. */
  readonly selfPorts: ReadonlySet<number>
  /** Deny rules that need no address (`*`, names, suffixes): what `checkName` looks at. */
  readonly denyByName: ReadonlyArray<Rule>
}

// ---------------------------------------------------------------------------------------------
// Ranges and ports of an exposed proxy

/** CONNECT ports open by default on an exposed proxy (Squid's SSL_ports). */
const CONNECT_PORTS: ReadonlyArray<readonly [number, number]> = [[443, 443]]
/** Plain HTTP ports open by default on an exposed proxy (Squid's Safe_ports). */
const HTTP_PORTS: ReadonlyArray<readonly [number, number]> = [
  [80, 80],
  [21, 21],
  [443, 443],
  [70, 70],
  [210, 210],
  [1025, 65535],
  [280, 280],
  [488, 488],
  [591, 591],
  [777, 777],
]

/** Whether `port` is open by default to `kind` on an exposed proxy. */
export const defaultPortOpen = (kind: DestinationKind, port: number): boolean =>
  inPorts(kind === "connect" ? CONNECT_PORTS : HTTP_PORTS, port)

const isLocalhostName = (host: string): boolean => host === "localhost" || host.endsWith(".localhost")

const LOCALHOST = parseAddress("127.0.0.1") as Uint8Array

/** A rule's text for a network and port, IPv6 in brackets: `127.0.0.0/8:22`, `[fe80::/10]:22`. */
const ruleText = (network: string, port: number): string => hostPort(network, port)

// ---------------------------------------------------------------------------------------------
// Building a policy

export interface PolicyOptions extends Exposure {
  readonly allowTo?: ReadonlyArray<string>
  readonly denyTo?: ReadonlyArray<string>
  /**
   * Other sockets the process listens on (the admin endpoint), ports as bound: the proxy must not dial
   * them either, but they do not make it exposed (they serve no proxying).
   */
  readonly ownSockets?: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** Every address of the machine's interfaces (os.networkInterfaces()); used for wildcard listeners. */
  readonly interfaces?: ReadonlyArray<string>
}

const LOOPBACK_V4 = parseCidr("127.0.0.0/8")
const LOOPBACK_V6 = parseCidr("::1/128")
const isLoopbackBytes = (b: Uint8Array): boolean => matches(LOOPBACK_V4, b) || matches(LOOPBACK_V6, b)

/** True if `host` (a listen address) is loopback: 127.0.0.0/8, ::1 or their mapped forms. */
export const isLoopbackAddress = (host: string): boolean => {
  if (host === "localhost") return true
  const b = addressBytes(host)
  return b !== undefined && isLoopbackBytes(b)
}

/** What decides whether a proxy is exposed. */
export interface Exposure {
  /** The proxy's listen addresses, ports as bound (port 0 is skipped for self: nothing can be dialled there). */
  readonly listen: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** The client allow list (`--allow`, CIDRs as WorkerInit.allow carries them). */
  readonly clientAllow: ReadonlyArray<string>
  /** The load balancers trusted to send a PROXY protocol header (CIDRs); absent or empty: none. */
  readonly proxyProtocolFrom?: ReadonlyArray<string> | undefined
}

const isLoopbackNetwork = (text: string): boolean => {
  try {
    const cidr = parseCidr(text)
    // Inside 127.0.0.0/8 (held as ::ffff:127.0.0.0/104) or ::1/128 itself.
    return (
      (cidr.prefix >= LOOPBACK_V4.prefix && matches(LOOPBACK_V4, cidr.bytes)) || (cidr.prefix === 128 && matches(LOOPBACK_V6, cidr.bytes))
    )
  } catch {
    return false // not ours to judge (the configuration check refuses it): assume the worst
  }
}

/**
 * Whether someone other than this machine's own users can make the proxy dial, so that the defaults of
 * an exposed proxy (special ranges denied, usual ports only) apply. Any one of these exposes it:
 * - a listen address that is not loopback (`0.0.0.0`, a LAN address): other machines connect;
 * - PROXY protocol trusted from anyone (`--proxy-protocol-from`): the client is whoever the header
 *   names, so a loopback listener behind a load balancer serves remote clients;
 * - a client allow list that admits a non-loopback address (`--allow 10.0.0.0/8`, or everyone, as
 *   with `--auth-file`): it was written to let other machines in, through whatever path reaches the
 *   listener (a port forward, a load balancer, a container's published port).
 * Only a proxy with loopback listeners, no PROXY protocol and loopback clients only is not exposed.
 */
export const isExposed = (exposure: Exposure): boolean =>
  exposure.listen.some((a) => !isLoopbackAddress(a.host)) ||
  (exposure.proxyProtocolFrom ?? []).length > 0 ||
  exposure.clientAllow.some((cidr) => !isLoopbackNetwork(cidr))

const UNSPECIFIED_V4 = "0.0.0.0"
const UNSPECIFIED_V6 = "::"

/** The proxy's own sockets: each listen address on its port; a wildcard listener is every local address. */
export const selfSockets = (listen: PolicyOptions["listen"], interfaces: ReadonlyArray<string> = []): Array<SelfSocket> => {
  const out: Array<SelfSocket> = []
  const add = (address: string, port: number) => {
    const bytes = addressBytes(address)
    if (bytes !== undefined) out.push({ cidr: { bytes, prefix: 128 }, port })
  }
  for (const { host, port } of listen) {
    if (port === 0) continue
    const bytes = addressBytes(host)
    // Dialling the unspecified address reaches this machine (Linux dials loopback): always ours.
    add(UNSPECIFIED_V4, port)
    add(UNSPECIFIED_V6, port)
    const wildcard = bytes !== undefined && (isZero(bytes, 0, 16) || (isZero(bytes, 0, 10) && bytes[10] === 0xff && isZero(bytes, 12, 16)))
    if (!wildcard) {
      add(host, port)
      continue
    }
    // 0.0.0.0 takes IPv4 only; [::] (dual-stack) takes both families.
    const v6 = host.includes(":")
    out.push({ cidr: parseCidr("127.0.0.0/8"), port })
    if (v6) add("::1", port)
    for (const address of interfaces) {
      if (v6 || !address.includes(":")) add(address, port)
    }
  }
  return out
}

/** Parse the rules and take in the listeners. Throws RuleError on the first bad rule. */
export const makePolicy = (options: PolicyOptions): DestinationPolicy => {
  const allow = (options.allowTo ?? []).map(parseRule)
  const deny = (options.denyTo ?? []).map(parseRule)
  const self = selfSockets([...options.listen, ...(options.ownSockets ?? [])], options.interfaces)
  return {
    allow,
    deny,
    exposed: isExposed(options),
    self,
    selfPorts: new Set(self.map((s) => s.port)),
    denyByName: deny.filter((r) => r.address._tag !== "Network"),
  }
}

// ---------------------------------------------------------------------------------------------
// Verdicts

const denial = (kind: DenialKind, rule: string, where: string, reason: string, advice: string): Denial => ({
  kind,
  rule,
  message: `destination ${where} denied: ${reason} (${advice})`,
})

const ruleDenial = (rule: Rule, where: string): Denial =>
  denial("rule", rule.text, where, `rule --deny-to ${rule.text}`, "deny rules win over --allow-to rules")

/**
 * A name with an empty label (`a..test`): the core refuses it with 400, so only another driver could ask.
 * No rule judges it, since `--deny-to a.test` must not be passed by spelling it `a.test..`.
 */
const malformedName = (host: string, port: number): Denial =>
  denial("rule", "malformed name", hostPort(host, port), "a host name with an empty label", "no rule can allow it")

/**
 * The part of the verdict that needs no address: deny rules on the name, `*` deny rules. Run before
 * resolving, so that a denied name is never looked up. Undefined: nothing against it yet (call `check`
 * on every address it resolves to).
 */
export const checkName = (policy: DestinationPolicy, destination: Omit<Destination, "address">): Denial | undefined => {
  if (policy.denyByName.length === 0) return undefined
  const host = normalHost(destination.host)
  if (host === undefined) return malformedName(destination.host, destination.port)
  for (const rule of policy.denyByName) {
    if (ruleMatches(rule, host, undefined, destination.port)) return ruleDenial(rule, hostPort(host, destination.port))
  }
  return undefined
}

/**
 * The verdict on one destination: undefined if it may be dialled, else why not. Pure; the same input
 * gives the same answer. With `address` undefined (a parent proxy resolves the name), address rules and
 * ranges apply only to an IP-literal host (and `localhost` names count as 127.0.0.1).
 */
export const check = (policy: DestinationPolicy, destination: Destination): Denial | undefined => {
  const { port, kind } = destination
  // Fast path of the default set-up (loopback listener, no rules): only the proxy's own ports matter.
  if (!policy.exposed && policy.deny.length === 0 && !policy.selfPorts.has(port)) return undefined
  const host = normalHost(destination.host)
  if (host === undefined) return malformedName(destination.host, port)
  const address = destination.address === undefined ? undefined : (normalHost(destination.address) ?? destination.address)
  const dialled = address ?? host
  let bytes = addressBytes(dialled)
  if (bytes === undefined && address === undefined && isLocalhostName(host)) bytes = LOCALHOST
  const where = address !== undefined && address !== host ? `${hostPort(host, port)} (${address})` : hostPort(dialled, port)

  // 1. The proxy itself.
  if (bytes !== undefined && policy.selfPorts.has(port)) {
    for (const s of policy.self) {
      if (s.port === port && matches(s.cidr, bytes)) {
        return denial("self", "self", where, "the proxy's own listening socket", "no rule can allow it: a proxy must not connect to itself")
      }
    }
  }
  // 2. Deny rules.
  for (const rule of policy.deny) if (ruleMatches(rule, host, bytes, port)) return ruleDenial(rule, where)
  // 3. A loopback-only proxy allows the rest.
  if (!policy.exposed) return undefined
  // 4. The defaults of an exposed proxy, lifted by allow rules.
  if (bytes === undefined && destination.address !== undefined) {
    return denial("range", "unparsable", where, "not an IP address", "this is a bug: please report it")
  }
  const special = bytes === undefined ? undefined : specialRange(bytes)
  let addressAllowed = special === undefined
  let portAllowed = defaultPortOpen(kind, port)
  for (const rule of policy.allow) {
    if (!ruleMatches(rule, host, bytes, port)) continue
    portAllowed = true
    if (rule.address._tag !== "Any") addressAllowed = true
  }
  if (!addressAllowed && special !== undefined) {
    const { range: r, nat64 } = special
    // The hint names the range (the rule an operator most likely wants); a NAT64 address is not in it.
    const hint = nat64 ? ruleText(dialled, port) : ruleText(r.text, port)
    return denial("range", r.name, where, nat64 ? `${r.name} (through NAT64)` : r.name, `allow it with --allow-to ${hint}`)
  }
  if (!portAllowed) {
    const open =
      kind === "connect" ? "CONNECT is allowed to port 443 only by default" : "plain HTTP is allowed to Squid's Safe_ports only by default"
    return denial("port", "port", where, `port ${port}: ${open}`, `allow it with --allow-to ${ruleText(host, port)}`)
  }
  return undefined
}

/**
 * The addresses a name resolved to that may be dialled, in their order (for a resolver that tries several,
 * Happy Eyeballs); when none may, the denial of the first one (what the client is told).
 */
export const allowedAddresses = <A extends { readonly address: string }>(
  policy: DestinationPolicy,
  destination: Omit<Destination, "address">,
  addresses: ReadonlyArray<A>,
): { readonly allowed: ReadonlyArray<A>; readonly denial: Denial | undefined } => {
  let first: Denial | undefined
  const allowed = addresses.filter((a) => {
    const d = check(policy, { host: destination.host, address: a.address, port: destination.port, kind: destination.kind })
    first ??= d
    return d === undefined
  })
  return { allowed, denial: allowed.length === 0 ? first : undefined }
}

/**
 * The verdict when a parent proxy will resolve the name (nothing is resolved here): `check` without an
 * address. Name rules, `*` rules, ports, and address rules and ranges for IP-literal hosts apply.
 */
export const checkUnresolved = (policy: DestinationPolicy, destination: Omit<Destination, "address">): Denial | undefined =>
  check(policy, { host: destination.host, port: destination.port, kind: destination.kind })

/** The stats counter of each denial kind (see protocol.ts WorkerStats). */
export const denialCounter = {
  self: "deniedSelf",
  rule: "deniedRule",
  range: "deniedRange",
  port: "deniedPort",
} as const satisfies Record<DenialKind, string>

/** Every address of this machine's interfaces, now (a wildcard listener is reachable on all of them): `interfaces`. */
export const localAddresses = (): Array<string> => Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))
