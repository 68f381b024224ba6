/**
 * Upstream: which destinations go through the parent proxy (`--upstream`), and which go direct
 * (`--no-upstream`, NO_PROXY syntax).
 *
 * Owns the parent's description as the workers get it, the parsing of no-upstream entries (shared with
 * the CLI, so a bad entry is a config error, never a surprise in a worker) and the per-`Connect` decision.
 * It never dials, never resolves a name and never reads the configuration itself: the destination is
 * matched as the client wrote it (the parent resolves names), like curl's NO_PROXY.
 *
 * Entry syntax (case-insensitive; a list is comma-separated):
 * - `*`                   every destination goes direct (the parent is not used at all);
 * - `example.com`, `.example.com`, `*.example.com`
 *                         that name and every name under it (`api.example.com`), as curl does;
 * - `10.0.0.7`, `::1`     that address, written as an address by the client (no name is resolved);
 * - `10.0.0.0/8`, `fd00::/8`  addresses in that network, written as addresses by the client;
 * - any of the names or addresses with `:port` (`[v6]:port` for IPv6): only that port.
 */
import { isIP } from "node:net"
import type { UpstreamHop } from "../../core/events.ts"
import { canonicalName } from "../../core/http/target.ts"
import { AllowList, CidrError, parseCidr } from "../access/Allow.ts"
import { hostPort } from "../access/Peer.ts"

/** The parent proxy as WorkerInit carries it (plain data). */
export interface UpstreamProxy {
  readonly host: string
  readonly port: number
  /** The whole Proxy-Authorization value ("Basic ..."), when the parent needs credentials. */
  readonly authorization?: string
}

/** The parent of one `Connect`, as the Connection uses it. */
export interface Parent {
  readonly host: string
  readonly port: number
  /** "host:port" ([v6]:port) for messages: never the credentials. */
  readonly name: string
  readonly authorization: string | undefined
  /** Where the worker's pool keeps idle connections to the parent (never equal to an origin's "host:port"). */
  readonly poolKey: string
  /** What the core gets in `Connected.upstream` for a plain request (made once, not per request). */
  readonly hop: UpstreamHop
}

/**
 * The `Parent` of a parent proxy. Its pool key holds the credentials too: connections opened with one
 * user's credentials are never lent to a request that a route hook sends with another's.
 */
export const parentOf = (proxy: UpstreamProxy): Parent => {
  const name = hostPort(proxy.host, proxy.port)
  const hop: UpstreamHop = proxy.authorization === undefined ? { proxy: name } : { proxy: name, authorization: proxy.authorization }
  const poolKey = proxy.authorization === undefined ? `upstream ${name}` : `upstream ${name} ${proxy.authorization}`
  return { host: proxy.host, port: proxy.port, name, authorization: proxy.authorization, poolKey, hop }
}

/** One parsed `--no-upstream` entry. */
export type NoUpstreamEntry =
  | { readonly kind: "all" }
  | { readonly kind: "name"; readonly name: string; readonly port: number | undefined }
  | { readonly kind: "network"; readonly cidr: string; readonly port: number | undefined }

export type ParsedEntry = { readonly ok: true; readonly value: NoUpstreamEntry } | { readonly ok: false; readonly message: string }

const NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/
const expected =
  'expected "*", a name ("example.com", ".example.com"), an address ("10.0.0.7", "::1"), a network ("10.0.0.0/8") or any of those with ":port"'

const portOf = (text: string): number | undefined => {
  if (!/^\d{1,5}$/.test(text)) return undefined
  const n = Number(text)
  return n >= 1 && n <= 65535 ? n : undefined
}

/** Parse one no-upstream entry (see the module comment). */
export const parseNoUpstreamEntry = (input: string): ParsedEntry => {
  const bad = (why: string): ParsedEntry => ({ ok: false, message: `${JSON.stringify(input)} is not a no-upstream entry: ${why}` })
  let text = input.trim().toLowerCase()
  if (text === "*") return { ok: true, value: { kind: "all" } }
  let port: number | undefined
  // "[v6]" or "[v6]:port"
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text)
  if (bracket !== null) {
    if (bracket[2] !== undefined) {
      port = portOf(bracket[2])
      if (port === undefined) return bad("the port must be 1-65535")
    }
    text = bracket[1] ?? ""
    if (isIP(text) !== 6) return bad("brackets hold an IPv6 address")
  } else if (isIP(text.split("/")[0] ?? "") !== 6) {
    // Not a bare IPv6 address or network: a trailing ":port" is a port.
    const colon = text.lastIndexOf(":")
    if (colon >= 0) {
      port = portOf(text.slice(colon + 1))
      if (port === undefined) return bad("the port must be 1-65535")
      text = text.slice(0, colon)
    }
  }
  if (text.includes("/") || isIP(text) !== 0) {
    try {
      parseCidr(text)
    } catch (e) {
      return bad(e instanceof CidrError ? e.message.replace(/^invalid CIDR "[^"]*": /, "") : String(e))
    }
    return { ok: true, value: { kind: "network", cidr: text, port } }
  }
  const name = canonicalName(text.replace(/^\*?\./, "")) ?? ""
  if (!NAME.test(name)) return bad(expected)
  return { ok: true, value: { kind: "name", name, port } }
}

/** A no-upstream entry with its matcher built once. */
interface Rule {
  readonly port: number | undefined
  readonly matches: (host: string) => boolean
}

const ruleOf = (entry: NoUpstreamEntry): Rule => {
  switch (entry.kind) {
    case "all":
      return { port: undefined, matches: () => true }
    case "name": {
      const suffix = `.${entry.name}`
      return { port: entry.port, matches: (host) => host === entry.name || host.endsWith(suffix) }
    }
    case "network": {
      const network = AllowList.parse([entry.cidr])
      return { port: entry.port, matches: (host) => isIP(host) !== 0 && network.allows(host) }
    }
  }
}

/** The worker's routing decision for every `Connect`. */
export class UpstreamRoutes {
  private readonly parent: Parent
  private readonly rules: ReadonlyArray<Rule>

  /** Throws on an entry that does not parse (the CLI has checked them already). */
  constructor(proxy: UpstreamProxy, noUpstream: ReadonlyArray<string>) {
    this.parent = parentOf(proxy)
    this.rules = noUpstream.map((text) => {
      const parsed = parseNoUpstreamEntry(text)
      if (!parsed.ok) throw new Error(parsed.message)
      return ruleOf(parsed.value)
    })
  }

  /** The parent to go through for `host`:`port` (as the core asked for it), or undefined to go direct. */
  parentFor(host: string, port: number): Parent | undefined {
    // The core's spelling (one trailing dot removed, lower-case); a name with an empty label, which the
    // core refuses, matches no entry and goes to the parent, where the policy has denied it already.
    const bare = host.includes(":") ? host.toLowerCase() : (canonicalName(host) ?? host)
    for (const rule of this.rules) {
      if ((rule.port === undefined || rule.port === port) && rule.matches(bare)) return undefined
    }
    return this.parent
  }
}
