/**
 * DestinationRules: the language of `--allow-to` / `--deny-to`, and how a rule meets a destination.
 *
 * Owns the rule syntax, `ADDRESS[:PORTS]`: ADDRESS is `*`, a CIDR, an IP, a host name or `*.suffix`
 * (names match the host as asked, in the core's one spelling: lower-case, one trailing dot removed; `*.example.com` matches its
 * subdomains, not `example.com`); PORTS is `*`, `N`, `N-M` or a comma list of those (none: every port);
 * IPv6 takes brackets when ports follow. Also the one spelling addresses are compared in: 16 bytes, IPv4
 * as IPv4-mapped (as Allow.ts holds it, whose CIDR parser it reuses), the IPv4-compatible form as the
 * IPv4 address it embeds. It decides nothing: DestinationPolicy.ts says which rules apply when.
 */
import * as Data from "effect/Data"
import { canonicalName } from "../../core/http/target.ts"
import { type Cidr, matches, parseAddress, parseCidr } from "../access/Allow.ts"

/** Port ranges, inclusive; undefined is every port. */
export type Ports = ReadonlyArray<readonly [number, number]> | undefined

export type RuleAddress =
  | { readonly _tag: "Any" }
  | { readonly _tag: "Network"; readonly cidr: Cidr }
  | { readonly _tag: "Name"; readonly name: string }
  | { readonly _tag: "Suffix"; readonly suffix: string } // with its leading dot: ".example.com"

export interface Rule {
  /** As written (trimmed): quoted back in messages. */
  readonly text: string
  readonly address: RuleAddress
  readonly ports: Ports
}

export class RuleError extends Data.TaggedError("RuleError")<{
  readonly input: string
  /** What is wrong with it, in words. */
  readonly reason: string
}> {
  override get message(): string {
    return `${JSON.stringify(this.input)} is not a destination rule: ${this.reason}`
  }
}

const RULE_HELP =
  "expected ADDRESS[:PORTS] such as '*:25', '10.0.0.0/8', '127.0.0.1:8080-8090', 'example.com:80,443', '*.example.com' or '[fd00::/8]:443'"

/** A DNS name: letters, digits, '-' and '_' in dot-separated labels of 1..63 characters. */
const NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/
/** A last label that makes a host a number to URL parsers (`127.1`, `0x7f.1`): not a name we accept. */
const NUMERIC_LABEL = /(?:^|\.)(?:\d+|0x[0-9a-f]*)$/

const parsePorts = (input: string, text: string): Ports => {
  if (text === "*") return undefined
  const out: Array<readonly [number, number]> = []
  for (const part of text.split(",")) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part.trim())
    const lo = m === null ? NaN : Number(m[1])
    const hi = m === null ? NaN : m[2] === undefined ? lo : Number(m[2])
    if (!(lo >= 1 && hi <= 65535 && lo <= hi)) {
      throw new RuleError({ input, reason: `${JSON.stringify(part)} is not a port: use N, N-M (1..65535) or a comma list of them, or *` })
    }
    out.push([lo, hi])
  }
  return out
}

const parseRuleAddress = (input: string, text: string): RuleAddress => {
  if (text === "*") return { _tag: "Any" }
  if (text.includes("/") || parseAddress(text) !== undefined) {
    try {
      return { _tag: "Network", cidr: canonicalCidr(parseCidr(text)) }
    } catch (e) {
      throw new RuleError({ input, reason: e instanceof Error ? e.message : String(e) })
    }
  }
  const wildcard = text.startsWith("*.")
  // The spelling the core gives hosts (one trailing dot removed, lower-case), so that they can be equal.
  const bare = canonicalName(wildcard ? text.slice(2) : text) ?? ""
  if (!NAME.test(bare))
    throw new RuleError({ input, reason: `${JSON.stringify(text)} is not an IP, a CIDR, a host name, *.suffix or *; ${RULE_HELP}` })
  if (!wildcard && NUMERIC_LABEL.test(bare)) {
    throw new RuleError({ input, reason: `${JSON.stringify(text)} reads as a number, not a name: write an IPv4 address in full (a.b.c.d)` })
  }
  return wildcard ? { _tag: "Suffix", suffix: `.${bare}` } : { _tag: "Name", name: bare }
}

/** Parse one `ADDRESS[:PORTS]` rule. Throws RuleError. */
export const parseRule = (input: string): Rule => {
  const text = input.trim()
  if (text === "") throw new RuleError({ input, reason: `the rule is empty; ${RULE_HELP}` })
  let address = text
  let ports: string | undefined
  const colons = text.split(":").length - 1
  if (text.startsWith("[")) {
    const close = text.indexOf("]")
    if (close < 0) throw new RuleError({ input, reason: "unterminated [ (IPv6 addresses go in brackets: [fd00::/8]:443)" })
    address = text.slice(1, close)
    const rest = text.slice(close + 1)
    if (rest !== "" && !rest.startsWith(":"))
      throw new RuleError({ input, reason: `unexpected ${JSON.stringify(rest)} after ]; ${RULE_HELP}` })
    if (rest !== "") ports = rest.slice(1)
    if (!address.includes(":")) throw new RuleError({ input, reason: "only IPv6 addresses go in brackets" })
  } else if (colons === 1) {
    address = text.slice(0, text.indexOf(":"))
    ports = text.slice(text.indexOf(":") + 1)
  } else if (colons > 1 && parseAddress(address.split("/")[0] ?? "") === undefined) {
    throw new RuleError({ input, reason: `${RULE_HELP} (an IPv6 address with ports goes in brackets)` })
  }
  let parsed: RuleAddress
  try {
    parsed = parseRuleAddress(input, address)
  } catch (e) {
    if (colons > 1 && !text.startsWith("[") && e instanceof RuleError) {
      throw new RuleError({ input, reason: `${e.reason} (an IPv6 address with ports goes in brackets: [fd00::/8]:443)` })
    }
    throw e
  }
  return { text, address: parsed, ports: ports === undefined ? undefined : parsePorts(input, ports) }
}

/**
 * Split a comma-separated list of rules (an env var, or repeated flags joined with commas). Port lists
 * have commas too: a piece that is only ports (`443`, `8000-8080`) continues the rule before it, so
 * `10.0.0.0/8:80,443,*:25` is two rules. A bare number is never a rule of its own (not a valid address).
 */
export const splitRules = (text: string): Array<string> => {
  const out: Array<string> = []
  for (const raw of text.split(",")) {
    const piece = raw.trim()
    if (piece === "") continue
    const last = out[out.length - 1]
    if (/^\d+(?:-\d+)?$/.test(piece) && last !== undefined && /:[\d*,-]+$/.test(last)) out[out.length - 1] = `${last},${piece}`
    else out.push(piece)
  }
  return out
}

/** Whether `port` is in `ports` (undefined: every port). */
export const inPorts = (ports: Ports, port: number): boolean => {
  if (ports === undefined) return true
  for (const [lo, hi] of ports) if (port >= lo && port <= hi) return true
  return false
}

/** True if bytes `from` to `to` (exclusive) of `b` are all zero. */
export const isZero = (b: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false
  return true
}

/** 16 bytes of the IPv4 address in the last 4 bytes of `b`, in the mapped form every IPv4 takes here. */
export const mappedV4 = (b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  out.set(b.subarray(12, 16), 12)
  return out
}

/**
 * An address as 16 bytes, IPv4 in its mapped form (::ffff:a.b.c.d, as Allow.ts holds it). The
 * deprecated IPv4-compatible form (::a.b.c.d, but not :: or ::1) is the IPv4 address it embeds.
 */
export const addressBytes = (text: string): Uint8Array | undefined => {
  let t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text
  const zone = t.indexOf("%")
  if (zone >= 0) t = t.slice(0, zone)
  const b = parseAddress(t)
  if (b === undefined) return undefined
  // ::a.b.c.d, except :: and ::1 themselves
  if (isZero(b, 0, 12) && !(isZero(b, 12, 15) && (b[15] as number) <= 1)) return mappedV4(b)
  return b
}

/** A network written in the IPv4-compatible form (::127.0.0.0/104) as the IPv4 network it means, like addresses. */
const canonicalCidr = (cidr: Cidr): Cidr =>
  cidr.prefix >= 96 && isZero(cidr.bytes, 0, 12) && !(isZero(cidr.bytes, 12, 15) && (cidr.bytes[15] as number) <= 1)
    ? { bytes: mappedV4(cidr.bytes), prefix: cidr.prefix }
    : cidr

/**
 * Host as rules compare it: no brackets, an IPv6 literal lower-cased, a name as the core spells it
 * (canonicalName: lower-case, one trailing dot removed). Undefined for a name with an empty label
 * (`a..test`), which the core refuses with 400 and no rule may judge by another spelling.
 */
export const normalHost = (host: string): string | undefined => {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  return h.includes(":") ? h.toLowerCase() : canonicalName(h)
}

/** Whether `rule` matches the destination: its host as asked (normalHost), its address bytes if known, its port. */
export const ruleMatches = (rule: Rule, host: string, bytes: Uint8Array | undefined, port: number): boolean => {
  if (!inPorts(rule.ports, port)) return false
  const a = rule.address
  switch (a._tag) {
    case "Any":
      return true
    case "Network":
      return bytes !== undefined && matches(a.cidr, bytes)
    case "Name":
      return host === a.name
    case "Suffix":
      return host.length > a.suffix.length && host.endsWith(a.suffix)
  }
}
