/**
 * Resolver: turns the host of a `Connect` action into the addresses to dial.
 *
 * Owns the naming rules that must hold before any query leaves the machine, in this order:
 * - IP literals (IPv6 with or without brackets) pass through;
 * - names are looked up in the core's spelling (`canonicalName`: lower-case, one trailing dot removed);
 *   a name with an empty label (`a..test`) fails at once, no query;
 * - names in the static `hosts` map (WorkerInit.hosts, `--hosts`) resolve locally, before anything else;
 * - `invalid` and `*.invalid` fail at once (RFC 6761 §6.4), no query;
 * - `localhost` and `*.localhost` are the loopback address (RFC 6761 §6.3), no query;
 * - names in /etc/hosts (read once, when the resolver is made) resolve locally;
 * - anything else is asked of DNS with c-ares (`dns.Resolver`, A and AAAA at once), never with
 *   `dns.lookup`: that one runs on libuv's four shared threads, so four names whose server never
 *   answers would make every other lookup of the worker wait.
 *
 * And the rules of asking DNS: answers are cached by their TTL (clamped, bounded in entries) and
 * failures for a short while; concurrent lookups of one name share one query; at most `maxQueries`
 * names are being asked at once per worker (the rest wait in a bounded FIFO); each question gives up
 * after `tries` × `queryTimeoutMs`, which the worker keeps below `connectTimeout`. When one family
 * answers first, the other gets RESOLUTION_DELAY_MS more (RFC 8305 §3) before the answer goes out
 * without it. Addresses come IPv6 first; HappyEyeballs.ts decides the dialling order.
 *
 * It must never: block (no sync IO after construction), query a name the rules above answer, or call
 * a callback twice. `resolve(host, cb)` may call `cb` synchronously: callers must tolerate that.
 *
 * Two faces: `makeResolve`, a plain callback function for the hot path, and the `Resolver` Effect
 * service built on it.
 */
import { Resolver as CaresResolver } from "node:dns"
import { readFileSync } from "node:fs"
import { isIP } from "node:net"
import * as Context from "effect/Context"
import { canonicalName } from "../../core/http/target.ts"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface Resolved {
  readonly address: string
  readonly family: 4 | 6
}

// Data.TaggedError rather than a Schema class: this module runs in every worker thread, and loading
// effect/Schema there costs several MB of RSS per worker for an error that never crosses a boundary.
export class ResolveError extends Data.TaggedError("ResolveError")<{
  readonly host: string
  /** "invalid": a reserved name that never resolves; "notfound": DNS says there is no address; "failed": the lookup failed (timeout, server failure, too busy). */
  readonly reason: "invalid" | "notfound" | "failed"
  readonly code: string
  readonly message: string
}> {}

/** On success `addresses` holds at least one address (IPv6 first); on failure it is empty. */
export type ResolveCallback = (error: ResolveError | undefined, addresses: ReadonlyArray<Resolved>) => void

export type ResolveFn = (host: string, cb: ResolveCallback) => void

/** DNS counters of a worker, updated in place (fields of the worker's MutableStats). */
export interface DnsCounters {
  /** Questions sent to DNS servers (A and AAAA count one each). */
  dnsQueries: number
  /** Lookups answered from the cache (positive or negative) without a question. */
  dnsCacheHits: number
  /** Lookups that ended in a DNS failure (no address, timeout, server failure, queue full). */
  dnsFailures: number
}

export interface ResolverOptions {
  /** Static name -> address map (WorkerInit.hosts). Names are matched case-insensitively. Wins over everything. */
  readonly hosts?: Readonly<Record<string, string>>
  /** The hosts file read once at construction (default /etc/hosts); `false`: none. A missing file is no error. */
  readonly hostsFile?: string | false
  /** DNS servers as "IP" or "IP:PORT" ("[v6]:PORT"); default: the system's (resolv.conf). */
  readonly servers?: ReadonlyArray<string>
  /** How long one try of one question may take (default 2 s). */
  readonly queryTimeoutMs?: number
  /** Tries per question (default 2). */
  readonly tries?: number
  /** Names asked of DNS at once; more wait in a queue (default 64). */
  readonly maxQueries?: number
  /** Names that may wait for a query slot; more fail at once (default 1024). */
  readonly maxQueued?: number
  /** Cached names at most (default 4096); the oldest entry goes first. */
  readonly cacheEntries?: number
  /** A positive answer is kept at least this long (default 1 s) ... */
  readonly minTtlMs?: number
  /** ... and at most this long (default 5 min), whatever its TTL says. */
  readonly maxTtlMs?: number
  /** How long a failure is remembered (default 2 s). */
  readonly negativeTtlMs?: number
  /** Where the counters go (the worker's stats); default: a private object. */
  readonly stats?: DnsCounters
  /** The clock of the cache, in ms (tests). Default: performance.now. */
  readonly now?: () => number
}

/** RFC 8305 §3: after one family answered, how long the other may still take. */
export const RESOLUTION_DELAY_MS = 50

const NO_ADDRESSES: ReadonlyArray<Resolved> = []

const literal = (address: string): Resolved | undefined => {
  const family = isIP(address)
  return family === 4 || family === 6 ? { address, family } : undefined
}

/** Parse hosts-file text: `ADDRESS NAME [ALIAS...]` lines, `#` comments. A name keeps every address listed for it, in order. */
export const parseHostsFile = (text: string): Map<string, ReadonlyArray<Resolved>> => {
  const out = new Map<string, Array<Resolved>>()
  for (const raw of text.split("\n")) {
    const hash = raw.indexOf("#")
    const fields = (hash === -1 ? raw : raw.slice(0, hash)).trim().split(/\s+/)
    const ip = literal(fields[0] ?? "")
    if (ip === undefined) continue
    for (const name of fields.slice(1)) {
      const key = canonicalName(name)
      if (key === undefined) continue
      const list = out.get(key)
      if (list === undefined) out.set(key, [ip])
      else if (!list.some((r) => r.address === ip.address)) list.push(ip)
    }
  }
  return out
}

const readHostsFile = (path: string): Map<string, ReadonlyArray<Resolved>> => {
  try {
    return parseHostsFile(readFileSync(path, "utf8"))
  } catch {
    return new Map() // no hosts file: DNS answers everything
  }
}

/** What the cache keeps for a name. */
interface Entry {
  readonly addresses: ReadonlyArray<Resolved>
  readonly error: ResolveError | undefined
  readonly expiresAt: number
}

/** The answer of one family: addresses (possibly none) with their smallest TTL, or an error code. */
interface FamilyAnswer {
  readonly addresses: ReadonlyArray<Resolved>
  readonly ttlMs: number
  readonly code: string | undefined
}

/** One name being asked of DNS (or waiting for a slot), with everyone waiting for it. */
interface Lookup {
  readonly name: string
  readonly waiters: Array<ResolveCallback>
  v6: FamilyAnswer | undefined
  v4: FamilyAnswer | undefined
  /** The answer went out (both families in, or the resolution delay ran out). */
  delivered: boolean
  delay: ReturnType<typeof setTimeout> | undefined
}

const NOT_FOUND = new Set(["ENOTFOUND", "ENODATA", "ENONAME"])

/** Build the hot-path resolve function. */
export const makeResolve = (options: ResolverOptions = {}): ResolveFn => {
  const hosts = new Map<string, ReadonlyArray<Resolved>>()
  for (const [name, address] of Object.entries(options.hosts ?? {})) {
    const ip = literal(address)
    if (ip === undefined) throw new Error(`hosts: ${JSON.stringify(name)} maps to ${JSON.stringify(address)}, not an IP address`)
    const key = canonicalName(name)
    if (key === undefined) throw new Error(`hosts: ${JSON.stringify(name)} is not a host name (it has an empty label)`)
    hosts.set(key, [ip])
  }
  const hostsFile =
    options.hostsFile === false ? new Map<string, ReadonlyArray<Resolved>>() : readHostsFile(options.hostsFile ?? "/etc/hosts")
  const loopback: ReadonlyArray<Resolved> = [{ address: "127.0.0.1", family: 4 }]

  const queryTimeoutMs = Math.max(1, Math.round(options.queryTimeoutMs ?? 2_000))
  const cares = new CaresResolver({ timeout: queryTimeoutMs, maxTimeout: queryTimeoutMs, tries: Math.max(1, options.tries ?? 2) })
  if (options.servers !== undefined && options.servers.length > 0) cares.setServers([...options.servers])

  const maxQueries = Math.max(1, options.maxQueries ?? 64)
  const maxQueued = Math.max(0, options.maxQueued ?? 1024)
  const cacheEntries = Math.max(1, options.cacheEntries ?? 4096)
  const minTtlMs = options.minTtlMs ?? 1_000
  const maxTtlMs = Math.max(minTtlMs, options.maxTtlMs ?? 300_000)
  const negativeTtlMs = options.negativeTtlMs ?? 2_000
  const stats: DnsCounters = options.stats ?? { dnsQueries: 0, dnsCacheHits: 0, dnsFailures: 0 }
  const now = options.now ?? (() => performance.now())

  const cache = new Map<string, Entry>()
  const inFlight = new Map<string, Lookup>()
  const queue: Array<Lookup> = []
  let asking = 0

  const remember = (name: string, entry: Entry): void => {
    cache.delete(name) // re-inserted: now the newest
    if (cache.size >= cacheEntries) cache.delete(cache.keys().next().value!)
    cache.set(name, entry)
  }

  const finish = (lookup: Lookup): void => {
    lookup.delivered = true
    if (inFlight.get(lookup.name) === lookup) inFlight.delete(lookup.name) // from now on the cache answers
    if (lookup.delay !== undefined) clearTimeout(lookup.delay)
    const v6 = lookup.v6
    const v4 = lookup.v4
    const addresses = [...(v6?.addresses ?? NO_ADDRESSES), ...(v4?.addresses ?? NO_ADDRESSES)]
    let error: ResolveError | undefined
    let ttlMs = negativeTtlMs
    if (addresses.length > 0) {
      const ttls = [v6, v4].filter((a) => a !== undefined && a.addresses.length > 0).map((a) => a!.ttlMs)
      ttlMs = Math.min(maxTtlMs, Math.max(minTtlMs, Math.min(...ttls)))
    } else {
      stats.dnsFailures++
      // "No such name" only when every family said so; a timeout or server failure is a failure.
      const codes = [v6?.code ?? "ENODATA", v4?.code ?? "ENODATA"]
      const failed = codes.find((c) => !NOT_FOUND.has(c))
      const code = failed ?? (codes.includes("ENOTFOUND") ? "ENOTFOUND" : "ENODATA")
      const reason = failed === undefined ? "notfound" : "failed"
      error = new ResolveError({ host: lookup.name, reason, code, message: `${lookup.name}: ${describe(code)}` })
    }
    remember(lookup.name, { addresses, error, expiresAt: now() + ttlMs })
    for (const cb of lookup.waiters.splice(0)) cb(error, error === undefined ? addresses : NO_ADDRESSES)
  }

  /** A family answered (`family`: which one); decide whether the lookup is done. */
  const answered = (lookup: Lookup, family: 4 | 6, answer: FamilyAnswer): void => {
    if (family === 6) lookup.v6 = answer
    else lookup.v4 = answer
    const done = lookup.v6 !== undefined && lookup.v4 !== undefined
    if (done) {
      asking--
      if (!lookup.delivered) finish(lookup)
      else if (answer.addresses.length > 0) {
        // The late family came after the answer went out: later lookups get both.
        const cached = cache.get(lookup.name)
        if (cached !== undefined && cached.error === undefined) {
          const both = family === 6 ? [...answer.addresses, ...cached.addresses] : [...cached.addresses, ...answer.addresses]
          remember(lookup.name, { addresses: both, error: undefined, expiresAt: cached.expiresAt })
        }
      }
      startQueued()
      return
    }
    if (answer.addresses.length > 0 && lookup.delay === undefined && !lookup.delivered) {
      lookup.delay = setTimeout(() => {
        lookup.delay = undefined
        if (!lookup.delivered) finish(lookup)
      }, RESOLUTION_DELAY_MS)
    }
  }

  const ask = (lookup: Lookup): void => {
    asking++
    stats.dnsQueries += 2
    cares.resolve6(lookup.name, { ttl: true }, (err, records) => {
      answered(
        lookup,
        6,
        err !== null
          ? { addresses: NO_ADDRESSES, ttlMs: 0, code: err.code ?? "EUNKNOWN" }
          : { addresses: records.map((r) => ({ address: r.address, family: 6 as const })), ttlMs: minTtl(records), code: undefined },
      )
    })
    cares.resolve4(lookup.name, { ttl: true }, (err, records) => {
      answered(
        lookup,
        4,
        err !== null
          ? { addresses: NO_ADDRESSES, ttlMs: 0, code: err.code ?? "EUNKNOWN" }
          : { addresses: records.map((r) => ({ address: r.address, family: 4 as const })), ttlMs: minTtl(records), code: undefined },
      )
    })
  }

  const startQueued = (): void => {
    while (asking < maxQueries && queue.length > 0) ask(queue.shift()!)
  }

  const fail = (host: string, reason: ResolveError["reason"], code: string, message: string, cb: ResolveCallback): void =>
    cb(new ResolveError({ host, reason, code, message }), NO_ADDRESSES)

  return (host, cb) => {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
    const ip = literal(bare)
    if (ip !== undefined) return cb(undefined, [ip])
    // The core's spelling (one trailing dot removed, lower-case), as the destination rules compare it.
    const name = canonicalName(bare)
    if (name === undefined) return fail(host, "invalid", "ENOTFOUND", `${host}: a host name with an empty label never resolves`, cb)
    const mapped = hosts.get(name)
    if (mapped !== undefined) return cb(undefined, mapped)
    if (name === "invalid" || name.endsWith(".invalid")) {
      return fail(host, "invalid", "ENOTFOUND", `${host}: reserved name, never resolves`, cb)
    }
    if (name === "localhost" || name.endsWith(".localhost")) return cb(undefined, loopback)
    const listed = hostsFile.get(name)
    if (listed !== undefined) return cb(undefined, listed)

    const cached = cache.get(name)
    if (cached !== undefined) {
      if (cached.expiresAt > now()) {
        stats.dnsCacheHits++
        return cb(cached.error, cached.addresses)
      }
      cache.delete(name)
    }
    const pending = inFlight.get(name)
    if (pending !== undefined) {
      pending.waiters.push(cb)
      return
    }
    if (asking >= maxQueries && queue.length >= maxQueued) {
      stats.dnsFailures++
      return fail(host, "failed", "EBUSY", `${host}: too many DNS lookups waiting`, cb)
    }
    const lookup: Lookup = { name, waiters: [cb], v6: undefined, v4: undefined, delivered: false, delay: undefined }
    inFlight.set(name, lookup)
    if (asking < maxQueries) ask(lookup)
    else queue.push(lookup)
  }
}

const minTtl = (records: ReadonlyArray<{ readonly ttl: number }>): number => {
  let ttl = Number.POSITIVE_INFINITY
  for (const r of records) ttl = Math.min(ttl, r.ttl)
  return records.length === 0 ? 0 : ttl * 1000
}

const describe = (code: string): string => {
  switch (code) {
    case "ENOTFOUND":
      return "no such name (NXDOMAIN)"
    case "ENODATA":
      return "no address for this name"
    case "ETIMEOUT":
      return "the DNS server did not answer in time"
    case "ESERVFAIL":
      return "the DNS server failed (SERVFAIL)"
    case "EREFUSED":
      return "the DNS server refused the query"
    case "ECONNREFUSED":
      return "could not reach the DNS server"
    default:
      return `DNS lookup failed (${code})`
  }
}

/** The worker's settings the resolver reads (a part of protocol.ts WorkerInit). */
export interface ResolverSettings {
  readonly hosts: Readonly<Record<string, string>>
  readonly dnsServers?: ReadonlyArray<string>
  readonly limits: { readonly connectTimeout: number }
}

/**
 * The resolver of a worker: its hosts map and DNS servers, and a query timeout below `connectTimeout`
 * (two tries of a third of it each, at most 2 s a try), so a name whose server never answers fails as
 * "unresolved" (502) before the connect deadline (504) and frees its query slot.
 */
export const resolverOptionsFor = (init: ResolverSettings, stats?: DnsCounters): ResolverOptions => ({
  hosts: init.hosts,
  ...(init.dnsServers === undefined ? {} : { servers: init.dnsServers }),
  queryTimeoutMs: Math.max(1, Math.min(2_000, Math.floor(init.limits.connectTimeout / 3))),
  tries: 2,
  ...(stats === undefined ? {} : { stats }),
})

/** DNS as an Effect service (for code outside the hot path). */
export class Resolver extends Context.Service<
  Resolver,
  {
    readonly resolve: (host: string) => Effect.Effect<ReadonlyArray<Resolved>, ResolveError>
    /** The same rules as a callback function, for the socket adapter. */
    readonly resolveCallback: ResolveFn
  }
>()("hctunnel/Resolver") {
  static readonly make = (options: ResolverOptions = {}): Resolver["Service"] => {
    const resolveCallback = makeResolve(options)
    return Resolver.of({
      resolveCallback,
      resolve: (host) =>
        Effect.callback<ReadonlyArray<Resolved>, ResolveError>((resume) => {
          resolveCallback(host, (error, addresses) => {
            resume(error !== undefined ? Effect.fail(error) : Effect.succeed(addresses))
          })
        }),
    })
  }

  static readonly layer = (options: ResolverOptions = {}): Layer.Layer<Resolver> => Layer.sync(Resolver, () => Resolver.make(options))
}
