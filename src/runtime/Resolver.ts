/**
 * Resolver: turns the host of a `Connect` action into an address to dial.
 *
 * Owns the naming rules that must hold before any query leaves the machine:
 * - IP literals (IPv6 with or without brackets) pass through;
 * - `invalid` and `*.invalid` fail at once (RFC 6761 §6.4), no query;
 * - `localhost` and `*.localhost` are the loopback address (RFC 6761 §6.3), no query;
 * - names in the static `hosts` map (WorkerInit.hosts; tests use it) resolve locally;
 * - anything else goes to `dns.lookup` (the system resolver, /etc/hosts included).
 *
 * Two faces: `resolve(host, cb)`, a plain callback function for the hot path (it may call `cb`
 * synchronously: callers must tolerate that), and the `Resolver` Effect service built on it.
 */
import { lookup } from "node:dns"
import { isIP } from "node:net"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Data from "effect/Data"

export interface Resolved {
  readonly address: string
  readonly family: 4 | 6
}

// Data.TaggedError rather than a Schema class: this module runs in every worker thread, and loading
// effect/Schema there costs several MB of RSS per worker for an error that never crosses a boundary.
export class ResolveError extends Data.TaggedError("ResolveError")<{
  readonly host: string
  /** "invalid": a reserved name that never resolves; "notfound": the resolver found nothing; "failed": the lookup failed. */
  readonly reason: "invalid" | "notfound" | "failed"
  readonly code: string
  readonly message: string
}> {}

export type ResolveCallback = (error: ResolveError | undefined, result: Resolved | undefined) => void

export type ResolveFn = (host: string, cb: ResolveCallback) => void

export interface ResolverOptions {
  /** Static name -> address map (WorkerInit.hosts). Names are matched case-insensitively. */
  readonly hosts?: Readonly<Record<string, string>>
  /** The system lookup; replaceable in tests. Default: `dns.lookup`. */
  readonly lookup?: (host: string, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void) => void
}

const systemLookup = (host: string, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void) =>
  lookup(host, { all: false }, cb)

const literal = (address: string): Resolved | undefined => {
  const family = isIP(address)
  return family === 4 || family === 6 ? { address, family } : undefined
}

/** Build the hot-path resolve function. */
export const makeResolve = (options: ResolverOptions = {}): ResolveFn => {
  const hosts = new Map<string, Resolved>()
  for (const [name, address] of Object.entries(options.hosts ?? {})) {
    const ip = literal(address)
    if (ip === undefined) throw new Error(`hosts: ${JSON.stringify(name)} maps to ${JSON.stringify(address)}, not an IP address`)
    hosts.set(name.toLowerCase().replace(/\.$/, ""), ip)
  }
  const doLookup = options.lookup ?? systemLookup
  return (host, cb) => {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
    const ip = literal(bare)
    if (ip !== undefined) return cb(undefined, ip)
    const name = bare.toLowerCase().replace(/\.$/, "")
    const mapped = hosts.get(name)
    if (mapped !== undefined) return cb(undefined, mapped)
    if (name === "" || name === "invalid" || name.endsWith(".invalid")) {
      return cb(
        new ResolveError({ host, reason: "invalid", code: "ENOTFOUND", message: `${host}: reserved name, never resolves` }),
        undefined,
      )
    }
    if (name === "localhost" || name.endsWith(".localhost")) return cb(undefined, { address: "127.0.0.1", family: 4 })
    doLookup(name, (err, address, family) => {
      if (err !== null) {
        const code = err.code ?? "EUNKNOWN"
        const reason = code === "ENOTFOUND" || code === "ENODATA" ? "notfound" : "failed"
        return cb(new ResolveError({ host, reason, code, message: `${host}: ${code}` }), undefined)
      }
      cb(undefined, { address, family: family === 6 ? 6 : 4 })
    })
  }
}

/** DNS as an Effect service (for code outside the hot path). */
export class Resolver extends Context.Service<Resolver, {
  readonly resolve: (host: string) => Effect.Effect<Resolved, ResolveError>
  /** The same rules as a callback function, for the socket adapter. */
  readonly resolveCallback: ResolveFn
}>()("hctunnel/Resolver") {
  static readonly make = (options: ResolverOptions = {}): Resolver["Service"] => {
    const resolveCallback = makeResolve(options)
    return Resolver.of({
      resolveCallback,
      resolve: (host) =>
        Effect.callback<Resolved, ResolveError>((resume) => {
          resolveCallback(host, (error, result) => {
            resume(error !== undefined ? Effect.fail(error) : Effect.succeed(result as Resolved))
          })
        }),
    })
  }

  static readonly layer = (options: ResolverOptions = {}): Layer.Layer<Resolver> =>
    Layer.sync(Resolver, () => Resolver.make(options))
}
