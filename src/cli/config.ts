/**
 * hctunnel's configuration: one table of settings, a Schema for the decoded value, and the loader.
 *
 * Theory of operation: every setting is described once in `settings` (key, flag, env var, default,
 * help text, and a Schema that decodes the raw input). The loader takes the raw inputs of the four
 * layers, picks for each key the first layer that has it (CLI flag > HCTUNNEL_* env var > JSON
 * config file > default), decodes it with that key's Schema, and reports every problem at once,
 * each one naming where the bad value came from (`--port 70000`, `HCTUNNEL_PORT=70000`,
 * `hctunnel.json: "port"`). The help text, the README table and the tests all read the same table.
 *
 * This module does no IO except through its caller-supplied inputs: the caller reads argv, the
 * environment and the file. It never exits the process.
 */
import { isIP } from "node:net"
import { availableParallelism } from "node:os"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"
import { defaultLimits, type Limits } from "../core/limits.ts"
import type { ListenAddress } from "../runtime/protocol.ts"
import { parseRule, splitRules } from "../runtime/DestinationRules.ts"
import { CidrError, normalizeCidr } from "../runtime/Cidr.ts"
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_CLIENT } from "../runtime/ConnectionLimits.ts"
import type { UpstreamProxy } from "../runtime/Upstream.ts"
import { parseNoUpstream, parseUpstreamUrl, redactUrl, upstreamFor, type UpstreamUrl } from "./upstream-config.ts"

// ---------------------------------------------------------------------------------------------
// Value parsers: raw input (a string from a flag or env var, or a JSON value) -> value or message.
// ---------------------------------------------------------------------------------------------

/** Either the parsed value or a message saying what was wrong and what is allowed. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string }
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = (message: string): Parsed<never> => ({ ok: false, message })

const show = (u: unknown): string => (typeof u === "string" ? JSON.stringify(u) : String(JSON.stringify(u) ?? u))

const integer = (min: number, max: number, what: string) => (u: unknown): Parsed<number> => {
  const n = typeof u === "number" ? u : typeof u === "string" && /^\s*-?\d+\s*$/.test(u) ? Number(u) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    return bad(`${show(u)} is not a valid ${what}: expected an integer from ${min} to ${max}`)
  }
  return ok(n)
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1, milli: 1, millis: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
}

/** "10s", "10 seconds", "1.5m", "250ms", or a bare number of milliseconds ("10000" or 10000). */
export const parseDurationMs = (u: unknown): number | undefined => {
  if (typeof u === "number") return Number.isFinite(u) && u >= 0 ? Math.round(u) : undefined
  if (typeof u !== "string") return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(u)
  if (m === null) return undefined
  const unit = (m[2] ?? "").toLowerCase()
  const factor = unit === "" ? 1 : DURATION_UNITS[unit]
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor)
}

export const formatDurationMs = (ms: number): string =>
  ms % 3_600_000 === 0 && ms > 0 ? `${ms / 3_600_000}h`
  : ms % 60_000 === 0 && ms > 0 ? `${ms / 60_000}m`
  : ms % 1000 === 0 && ms > 0 ? `${ms / 1000}s`
  : `${ms}ms`

const duration = (minMs: number, maxMs: number) => (u: unknown): Parsed<number> => {
  const ms = parseDurationMs(u)
  if (ms === undefined) {
    return bad(`${show(u)} is not a duration: expected a number with a unit such as "250ms", "10s", "10 seconds", "5m", "1h", or a plain number of milliseconds`)
  }
  if (ms < minMs || ms > maxMs) {
    return bad(`${show(u)} is out of range: expected a duration from ${formatDurationMs(minMs)} to ${formatDurationMs(maxMs)}`)
  }
  return ok(ms)
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 * 1024, mb: 1024 * 1024, mib: 1024 * 1024,
}
export const formatBytes = (n: number): string =>
  n % (1024 * 1024) === 0 && n > 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 && n > 0 ? `${n / 1024} KiB` : `${n} bytes`

const size = (min: number, max: number) => (u: unknown): Parsed<number> => {
  let n: number | undefined
  if (typeof u === "number") n = u
  else if (typeof u === "string") {
    const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(u)
    const factor = m === null ? undefined : SIZE_UNITS[(m[2] ?? "").toLowerCase()]
    if (m !== null && factor !== undefined) n = Number(m[1]) * factor
  }
  if (n === undefined || !Number.isSafeInteger(n)) {
    return bad(`${show(u)} is not a size: expected a number of bytes, optionally with a KiB or MiB suffix (e.g. 65536 or "64KiB")`)
  }
  if (n < min || n > max) return bad(`${show(u)} is out of range: expected a size from ${formatBytes(min)} to ${formatBytes(max)}`)
  return ok(n)
}

const choice = <const L extends string>(choices: ReadonlyArray<L>) => (u: unknown): Parsed<L> => {
  const s = typeof u === "string" ? u.trim().toLowerCase() : undefined
  const found = choices.find((c) => c === s)
  return found !== undefined ? ok(found) : bad(`${show(u)} is not allowed: expected one of ${choices.join(", ")}`)
}

/** "host:port", "[v6]:port", ":port" (all interfaces is NOT implied: ":port" means 127.0.0.1). */
export const parseListen = (u: unknown): Parsed<ListenAddress> => {
  if (typeof u !== "string") return bad(`${show(u)} is not a listen address: expected a string such as "127.0.0.1:8888" or "[::1]:8888"`)
  const s = u.trim()
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:\[\]]*):(\d+)$/.exec(s)
  if (m === null) {
    return bad(`${show(u)} is not a listen address: expected host:port such as "127.0.0.1:8888", "0.0.0.0:3128" or "[::1]:8888" (IPv6 in brackets)`)
  }
  const host = m[1] === "" || m[1] === undefined ? "127.0.0.1" : m[1]
  if (isIP(host) === 0 && host !== "localhost") {
    return bad(`${show(u)}: ${JSON.stringify(host)} is not an IP address: use a numeric IPv4/IPv6 address (or "localhost")`)
  }
  const port = integer(0, 65535, "port")(m[2])
  if (!port.ok) return bad(`${show(u)}: ${port.message}`)
  return ok({ host: host === "localhost" ? "127.0.0.1" : host, port: port.value })
}

export const formatListen = (a: ListenAddress): string => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)

/**
 * "10.0.0.0/8", "::1/128", or a single address ("192.168.1.5" -> "192.168.1.5/32"), checked by the parser the
 * worker uses (src/runtime/Cidr.ts), so a value accepted here never fails in a worker.
 */
export const parseCidr = (u: unknown): Parsed<string> => {
  if (typeof u !== "string") return bad(`${show(u)} is not a CIDR: expected a string such as "10.0.0.0/8" or "::1/128"`)
  try {
    return ok(normalizeCidr(u))
  } catch (e) {
    if (!(e instanceof CidrError)) throw e
    return bad(`${show(u)} is not a CIDR: ${e.reason}${e.suggestion === undefined ? "" : `: did you mean ${e.suggestion}?`}`)
  }
}

const VIA_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/
const via = (u: unknown): Parsed<string> =>
  typeof u === "string" && VIA_TOKEN.test(u)
    ? ok(u)
    : bad(`${show(u)} is not allowed: the Via pseudonym must be an HTTP token of 1 to 64 characters (letters, digits, and !#$%&'*+-.^_\`|~)`)

/** A file path: a non-empty string (whether the file is usable is checked when it is read). */
const path = (u: unknown): Parsed<string> =>
  typeof u === "string" && u.trim() !== "" ? ok(u.trim()) : bad(`${show(u)} is not a file path: expected a non-empty string`)

/** A list from a JSON array, or from a comma-separated string (env var / flag). */
const list = <T>(item: (u: unknown) => Parsed<T>, min: number) => (u: unknown): Parsed<ReadonlyArray<T>> => {
  const items = Array.isArray(u) ? (u as ReadonlyArray<unknown>) : typeof u === "string" ? u.split(",").map((s) => s.trim()).filter((s) => s !== "") : undefined
  if (items === undefined) return bad(`${show(u)} is not a list: expected a JSON array or comma-separated values`)
  if (items.length < min) return bad(`the list is empty: at least ${min} value${min === 1 ? " is" : "s are"} needed`)
  const out: Array<T> = []
  for (const i of items) {
    const r = item(i)
    if (!r.ok) return r
    out.push(r.value)
  }
  return ok(out)
}

/** `{ "name": "address" }` from JSON, or "name=address,name2=address2" from a flag/env var. */
const hostMap = (u: unknown): Parsed<Readonly<Record<string, string>>> => {
  const pairs: Array<readonly [unknown, unknown]> =
    typeof u === "string" ? u.split(",").map((s) => s.trim()).filter((s) => s !== "").map((p) => {
        const eq = p.indexOf("=")
        return eq === -1 ? [p, undefined] as const : [p.slice(0, eq).trim(), p.slice(eq + 1).trim()] as const
      })
    : typeof u === "object" && u !== null ? Object.entries(u)
    : [[u, undefined]]
  const out: Record<string, string> = {}
  for (const [name, addr] of pairs) {
    if (typeof name !== "string" || name === "" || typeof addr !== "string" || isIP(addr) === 0) {
      return bad(`${show(typeof name === "string" && typeof addr === "string" ? `${name}=${addr}` : u)} is not a host mapping: expected name=address with a numeric IP address, e.g. "origin.test=127.0.0.1"`)
    }
    out[name.toLowerCase()] = addr
  }
  return ok(out)
}

/**
 * A DNS server: "IP", "IP:PORT" or "[v6]:PORT" (a bare IPv6 address has no port). Only IP literals:
 * a name would need DNS to find DNS. Normalised to what `dns.Resolver#setServers` takes.
 */
export const parseDnsServer = (u: unknown): Parsed<string> => {
  const expected = `expected an IP address with an optional port, such as "127.0.0.1", "127.0.0.1:5353" or "[::1]:5353"`
  if (typeof u !== "string") return bad(`${show(u)} is not a DNS server: ${expected}`)
  const s = u.trim()
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:\[\]]+)(?::(\d+))?$/.exec(s)
  const host = m === null ? s : m[1]!
  const portText = m === null ? undefined : m[2]
  if (isIP(host) === 0) return bad(`${show(u)} is not a DNS server: ${expected} (a name is not allowed)`)
  if (portText === undefined) return ok(host)
  const port = integer(1, 65535, "port")(portText)
  if (!port.ok) return bad(`${show(u)}: ${port.message}`)
  return ok(isIP(host) === 6 ? `[${host}]:${port.value}` : `${host}:${port.value}`)
}

/**
 * Destination rules (`--allow-to`, `--deny-to`): a JSON array holds one rule per item; a string (an env
 * var, or repeated flags joined with commas) is split where a new rule starts, since port lists have
 * commas too (`10.0.0.0/8:80,443,*:25` is two rules). Each rule is checked by DestinationPolicy's parser.
 */
const destinationRules = (u: unknown): Parsed<ReadonlyArray<string>> => {
  const items = Array.isArray(u) ? (u as ReadonlyArray<unknown>) : typeof u === "string" ? splitRules(u) : undefined
  if (items === undefined) return bad(`${show(u)} is not a list of rules: expected a JSON array or comma-separated rules such as "*:25"`)
  const out: Array<string> = []
  for (const item of items) {
    if (typeof item !== "string") return bad(`${show(item)} is not a destination rule: expected a string such as "10.0.0.0/8:22"`)
    try {
      out.push(parseRule(item).text)
    } catch (e) {
      return bad(e instanceof Error ? e.message : String(e))
    }
  }
  return ok(out)
}

// ---------------------------------------------------------------------------------------------
// Schemas: each setting decodes `unknown` raw input into its typed value via its parser, so that
// Schema errors carry the parser's message.
// ---------------------------------------------------------------------------------------------

const fromInput = <T>(to: Schema.Codec<T>, parse: (u: unknown) => Parsed<T>) =>
  Schema.Unknown.pipe(
    Schema.decodeTo(
      to,
      SchemaTransformation.transformEffect<T, unknown>({
        decode: (u, options) => {
          const r = parse(u)
          return r.ok ? Effect.succeed(r.value) : Effect.fail(new SchemaIssue.InvalidValue({ message: r.message }, u, options))
        },
        encode: (t) => Effect.succeed(t),
      })
    )
  )

const ListenAddressSchema = Schema.Struct({ host: Schema.String, port: Schema.Number })
const LOG_FORMATS = ["text", "json"] as const
const LOG_LEVELS = ["debug", "info", "warn", "error", "none"] as const
export type LogFormat = (typeof LOG_FORMATS)[number]
export type LogLevel = (typeof LOG_LEVELS)[number]

export const MAX_WORKERS = 64
export const defaultWorkers = (): number => Math.max(1, Math.min(MAX_WORKERS, availableParallelism()))

/** The most --max-connections / --max-connections-per-client may say (the shared count table grows with it). */
export const MAX_CONNECTIONS = 1_000_000
/** ...and per client (the shared table keeps a 16-bit count per worker and address). */
export const MAX_CONNECTIONS_PER_CLIENT = 65_535

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** How a setting is given on each layer, and what it means. */
export interface Setting {
  readonly key: string
  /** Long flag name without dashes; repeated flags are joined with "," before decoding. */
  readonly flag: string
  readonly alias?: string
  readonly repeated?: boolean
  readonly metavar: string
  readonly env: string
  /** Shown in --help and the README. */
  readonly defaultText: string
  readonly description: string
  readonly schema: Schema.Codec<unknown, unknown>
  /** The default, already decoded; undefined when the setting has no default (port). */
  readonly defaultValue: () => unknown
  /** Shows a raw value in messages without its secrets (a password in a URL). */
  readonly redact?: (raw: string) => string
}

const setting = <T>(s: Omit<Setting, "schema" | "defaultValue"> & {
  readonly parse: (u: unknown) => Parsed<T>
  readonly to: Schema.Codec<T>
  readonly defaultValue: (() => T) | undefined
}) => {
  const { parse, to, defaultValue, ...rest } = s
  return { ...rest, schema: fromInput(to, parse), defaultValue: defaultValue ?? (() => undefined), parse }
}

const limitDuration = (key: keyof Limits, flag: string, description: string, min: number, max: number) =>
  setting({
    key, flag, metavar: "<duration>", env: envName(key), to: Schema.Number, parse: duration(min, max),
    defaultText: formatDurationMs(defaultLimits[key]), defaultValue: () => defaultLimits[key], description,
  })
const limitSize = (key: keyof Limits, flag: string, description: string, min: number, max: number, bytes: boolean) =>
  setting({
    key, flag, metavar: bytes ? "<bytes>" : "<n>", env: envName(key), to: Schema.Number,
    parse: bytes ? size(min, max) : integer(min, max, flag.replace(/-/g, " ")),
    defaultText: bytes ? formatBytes(defaultLimits[key]) : String(defaultLimits[key]), defaultValue: () => defaultLimits[key], description,
  })

/** maxHeadBytes -> HCTUNNEL_MAX_HEAD_BYTES */
export function envName(key: string): string {
  return `HCTUNNEL_${key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}`
}

const S = {
  listen: setting({
    key: "listen", flag: "listen", alias: "l", repeated: true, metavar: "<host:port>", env: envName("listen"),
    to: Schema.Array(ListenAddressSchema), parse: list(parseListen, 1),
    defaultText: "127.0.0.1:8888", defaultValue: () => [{ host: "127.0.0.1", port: 8888 }],
    description: "Address to listen on: host:port or [v6]:port; repeat the flag for several (env/file: comma-separated list / array)",
  }),
  port: setting({
    key: "port", flag: "port", alias: "p", metavar: "<port>", env: envName("port"), to: Schema.Number,
    parse: integer(0, 65535, "port"), defaultText: "the port of --listen", defaultValue: undefined,
    description: "Shorthand: use this port for every listen address (0 picks a free port)",
  }),
  workers: setting({
    key: "workers", flag: "workers", alias: "w", metavar: "<n>", env: envName("workers"), to: Schema.Number,
    parse: integer(1, MAX_WORKERS, "number of workers"), defaultText: "number of CPUs", defaultValue: defaultWorkers,
    description: `Worker threads, each accepting connections on the same port (1-${MAX_WORKERS})`,
  }),
  shutdownGrace: setting({
    key: "shutdownGrace", flag: "shutdown-grace", metavar: "<duration>", env: envName("shutdownGrace"), to: Schema.Number,
    parse: duration(0, HOUR), defaultText: "10s", defaultValue: () => 10_000,
    description: "On SIGINT/SIGTERM, how long live connections may take to finish before they are closed",
  }),
  logFormat: setting({
    key: "logFormat", flag: "log-format", metavar: "<text|json>", env: envName("logFormat"), to: Schema.Literals(LOG_FORMATS),
    parse: choice(LOG_FORMATS), defaultText: "text", defaultValue: (): LogFormat => "text",
    description: "Log line format: text (one readable line per event) or json (one JSON object per line)",
  }),
  logLevel: setting({
    key: "logLevel", flag: "log-level", metavar: "<debug|info|warn|error|none>", env: envName("logLevel"), to: Schema.Literals(LOG_LEVELS),
    parse: choice(LOG_LEVELS), defaultText: "info", defaultValue: (): LogLevel => "info",
    description: "Least severe log level printed: info includes the access log (one line per request or tunnel), debug adds the periodic stats line, none prints only the start-up line",
  }),
  allow: setting({
    key: "allow", flag: "allow", alias: "a", repeated: true, metavar: "<cidr>", env: envName("allow"),
    to: Schema.Array(Schema.String), parse: list(parseCidr, 1),
    defaultText: "127.0.0.0/8,::1/128", defaultValue: () => ["127.0.0.0/8", "::1/128"],
    description: "Client networks allowed to use the proxy; repeat for several. Required when listening on a non-loopback address",
  }),
  via: setting({
    key: "via", flag: "via", metavar: "<token>", env: envName("via"), to: Schema.String, parse: via,
    defaultText: "hctunnel", defaultValue: () => "hctunnel",
    description: "Pseudonym this proxy adds to the Via header (loop detection)",
  }),
  statsInterval: setting({
    key: "statsInterval", flag: "stats-interval", metavar: "<duration>", env: envName("statsInterval"), to: Schema.Number,
    parse: duration(100, DAY), defaultText: "10s", defaultValue: () => 10_000,
    description: "How often workers report counters and stats are logged (at debug level)",
  }),
  hosts: setting({
    key: "hosts", flag: "hosts", repeated: true, metavar: "<name=address>", env: envName("hosts"),
    to: Schema.Record(Schema.String, Schema.String), parse: hostMap, defaultText: "none", defaultValue: () => ({}),
    description: "Static name -> address entries used instead of DNS (for tests); repeat for several",
  }),
  maxRequestLine: limitSize("maxRequestLine", "max-request-line", "Longest request line (method, target, version); longer gets 414/400", 64, 1024 * 1024, true),
  maxHeaders: limitSize("maxHeaders", "max-headers", "Most header fields in a request or response head; more gets 431", 1, 10_000, false),
  maxHeadBytes: limitSize("maxHeadBytes", "max-head-bytes", "Largest request/response head in bytes; larger gets 431 (request) or 502 (response)", 1024, 16 * 1024 * 1024, true),
  maxBufferedBytes: limitSize("maxBufferedBytes", "max-buffered-bytes", "Bytes buffered per direction before reading from the other side pauses", 1024, 64 * 1024 * 1024, true),
  connectTimeout: limitDuration("connectTimeout", "connect-timeout", "Time to open the connection to the origin; expired gets 504", 1, HOUR),
  headTimeout: limitDuration("headTimeout", "head-timeout", "Time for a client to send a complete request head (slowloris guard); expired gets 408", 1, HOUR),
  keepAliveTimeout: limitDuration("keepAliveTimeout", "keep-alive-timeout", "Idle time allowed between requests on a kept-alive client connection", 1, DAY),
  idleTimeout: limitDuration("idleTimeout", "idle-timeout", "Inactivity allowed while a request or tunnel is in flight; expired gets 504 or a close", 1, DAY),
  dnsServers: setting({
    key: "dnsServers", flag: "dns-server", repeated: true, metavar: "<ip[:port]>", env: "HCTUNNEL_DNS_SERVER",
    to: Schema.Array(Schema.String), parse: list(parseDnsServer, 1), defaultText: "the system's (resolv.conf)", defaultValue: (): ReadonlyArray<string> => [],
    description: "DNS server asked for origin names: an IP address with an optional port (127.0.0.1:5353, [::1]:53); repeat for several (env: comma-separated)",
  }),
  allowTo: setting({
    key: "allowTo", flag: "allow-to", repeated: true, metavar: "<address[:ports]>", env: envName("allowTo"),
    to: Schema.Array(Schema.String), parse: destinationRules, defaultText: "none", defaultValue: () => [],
    description: "Destinations to allow: a CIDR, IP, host name, *.suffix or *, with optional ports (N, N-M, comma list); e.g. 10.0.0.0/8:22 or '[fd00::/8]:443'. Needed on a non-loopback listener for private, loopback and link-local addresses and for ports other than 443 (CONNECT) or Squid's Safe_ports (HTTP)",
  }),
  denyTo: setting({
    key: "denyTo", flag: "deny-to", repeated: true, metavar: "<address[:ports]>", env: envName("denyTo"),
    to: Schema.Array(Schema.String), parse: destinationRules, defaultText: "none", defaultValue: () => [],
    description: "Destinations to deny, same syntax as --allow-to (e.g. '*:25'); deny rules win over allow rules. The proxy's own listening sockets are always denied",
  }),
  admin: setting({
    key: "admin", flag: "admin", metavar: "<host:port>", env: envName("admin"), to: ListenAddressSchema,
    parse: parseListen, defaultText: "off", defaultValue: undefined,
    description: "Serve GET /metrics (Prometheus), /healthz and /stats on this address, from the main thread (port 0 picks a free port, shown in the start-up line)",
  }),
  adminAllow: setting({
    key: "adminAllow", flag: "admin-allow", repeated: true, metavar: "<cidr>", env: envName("adminAllow"),
    to: Schema.Array(Schema.String), parse: list(parseCidr, 1),
    defaultText: "127.0.0.0/8,::1/128", defaultValue: () => ["127.0.0.0/8", "::1/128"],
    description: "Client networks allowed to use the admin endpoint; repeat for several. Required when --admin is a non-loopback address",
  }),
  proxyProtocolFrom: setting({
    key: "proxyProtocolFrom", flag: "proxy-protocol-from", repeated: true, metavar: "<cidr>", env: envName("proxyProtocolFrom"),
    to: Schema.Array(Schema.String), parse: list(parseCidr, 1), defaultText: "none", defaultValue: (): ReadonlyArray<string> => [],
    description: "Load balancers (e.g. HAProxy with send-proxy / send-proxy-v2) whose connections start with a PROXY protocol v1 or v2 header; its client address is then used for --allow and the log. Connections from other sources are closed; repeat for several",
  }),
  maxConnections: setting({
    key: "maxConnections", flag: "max-connections", metavar: "<n>", env: envName("maxConnections"), to: Schema.Number,
    parse: integer(1, MAX_CONNECTIONS, "number of connections"), defaultText: String(DEFAULT_MAX_CONNECTIONS), defaultValue: () => DEFAULT_MAX_CONNECTIONS,
    description: "Client connections open at once in the whole process (all workers); a new one over it is closed at once",
  }),
  maxConnectionsPerClient: setting({
    key: "maxConnectionsPerClient", flag: "max-connections-per-client", metavar: "<n>", env: envName("maxConnectionsPerClient"), to: Schema.Number,
    parse: integer(1, MAX_CONNECTIONS_PER_CLIENT, "number of connections"), defaultText: String(DEFAULT_MAX_CONNECTIONS_PER_CLIENT), defaultValue: () => DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    description: "Client connections open at once from one client address (all workers); a new one over it is closed at once",
  }),
  upstream: setting({
    key: "upstream", flag: "upstream", metavar: "<http://[user:password@]host:port>", env: envName("upstream"),
    to: Schema.Struct({ host: Schema.String, port: Schema.Number, user: Schema.optionalKey(Schema.String), password: Schema.optionalKey(Schema.String) }),
    parse: parseUpstreamUrl, redact: redactUrl, defaultText: "none (direct)", defaultValue: undefined,
    description: "Parent proxy to send every request and tunnel through (except --no-upstream destinations). Better keep its password off the command line: use --upstream-credentials-file or HCTUNNEL_UPSTREAM_CREDENTIALS (user:password)",
  }),
  noUpstream: setting({
    key: "noUpstream", flag: "no-upstream", repeated: true, metavar: "<name|.domain|address|cidr|host:port|*>", env: envName("noUpstream"),
    to: Schema.Array(Schema.String), parse: list(parseNoUpstream, 1), defaultText: "none", defaultValue: () => [],
    description: "Destinations that go direct, not through --upstream (NO_PROXY syntax: example.com also matches its subdomains; CIDRs match addresses only; * is everything); repeat for several",
  }),
  upstreamCredentialsFile: setting({
    key: "upstreamCredentialsFile", flag: "upstream-credentials-file", metavar: "<file>", env: envName("upstreamCredentialsFile"),
    to: Schema.String, parse: (u) => (typeof u === "string" && u.trim() !== "" ? ok(u.trim()) : bad(`${show(u)} is not a file name`)),
    defaultText: "none", defaultValue: undefined,
    description: "File holding the parent proxy's credentials as one line user:password (instead of the URL; or set HCTUNNEL_UPSTREAM_CREDENTIALS)",
  }),
  authFile: setting({
    key: "authFile", flag: "auth-file", metavar: "<path>", env: envName("authFile"), to: Schema.String, parse: path,
    defaultText: "none (no authentication)", defaultValue: undefined,
    description: "Require proxy authentication (Basic) against this htpasswd file of bcrypt entries (htpasswd -B -c FILE USER); reloaded when it changes. With it, a non-loopback listener needs no --allow",
  }),
}

/** Every setting, in --help order. `config` itself is a flag/env var only (see CONFIG_FLAG). */
export const settings: ReadonlyArray<Setting & { readonly parse: (u: unknown) => Parsed<unknown> }> = Object.values(S)

export const CONFIG_FLAG = {
  flag: "config", alias: "c", metavar: "<file.json>", env: "HCTUNNEL_CONFIG",
  description: "JSON config file: an object whose keys are the settings' names in camelCase (listen, workers, allow, idleTimeout...), e.g. {\"listen\": [\"0.0.0.0:3128\"], \"allow\": [\"10.0.0.0/8\"], \"idleTimeout\": \"2m\"}",
} as const

/** The decoded configuration (the Schema of the whole thing). */
export const HctunnelConfig = Schema.Struct({
  listen: Schema.Array(ListenAddressSchema),
  workers: Schema.Number,
  graceMs: Schema.Number,
  logFormat: Schema.Literals(LOG_FORMATS),
  logLevel: Schema.Literals(LOG_LEVELS),
  allow: Schema.Array(Schema.String),
  /** True when `allow` came from a flag, env var or file rather than the default. */
  allowExplicit: Schema.Boolean,
  via: Schema.String,
  statsIntervalMs: Schema.Number,
  hosts: Schema.Record(Schema.String, Schema.String),
  /** DNS servers for origin names; empty: the system's. */
  dnsServers: Schema.Array(Schema.String),
  /** Destination rules as written (validated); see src/runtime/DestinationPolicy.ts. */
  allowTo: Schema.Array(Schema.String),
  denyTo: Schema.Array(Schema.String),
  /** The admin endpoint's address; undefined when it is off. */
  admin: Schema.UndefinedOr(ListenAddressSchema),
  adminAllow: Schema.Array(Schema.String),
  /** True when `adminAllow` came from a flag, env var or file rather than the default. */
  adminAllowExplicit: Schema.Boolean,
  /** The parent proxy, credentials made into the Proxy-Authorization value; absent: direct. */
  upstream: Schema.optionalKey(Schema.Struct({ host: Schema.String, port: Schema.Number, authorization: Schema.optionalKey(Schema.String) })),
  noUpstream: Schema.Array(Schema.String),
  /** The htpasswd file of proxy authentication; absent: authentication off. */
  authFile: Schema.optionalKey(Schema.String),
  limits: Schema.Struct({
    maxRequestLine: Schema.Number,
    maxHeaders: Schema.Number,
    maxHeadBytes: Schema.Number,
    maxBufferedBytes: Schema.Number,
    connectTimeout: Schema.Number,
    headTimeout: Schema.Number,
    keepAliveTimeout: Schema.Number,
    idleTimeout: Schema.Number,
  }),
  proxyProtocolFrom: Schema.Array(Schema.String),
  maxConnections: Schema.Number,
  maxConnectionsPerClient: Schema.Number,
})
export type HctunnelConfig = typeof HctunnelConfig.Type

/** The schema a JSON config file must match: every key optional, nothing else allowed. */
export const ConfigFile = Schema.Struct(
  Object.fromEntries(settings.map((s) => [s.key, Schema.optionalKey(s.schema)]))
)

// ---------------------------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------------------------

export interface ConfigInputs {
  /** Flags the user gave, by setting key. Repeated flags as arrays. */
  readonly flags: Readonly<Record<string, string | ReadonlyArray<string>>>
  readonly env: Readonly<Record<string, string | undefined>>
  /** The config file, if any: its name (for messages) and its text. */
  readonly file?: { readonly name: string; readonly text: string } | undefined
  /** Reads a file a setting names (the parent's credentials file); default: files cannot be read. */
  readonly readFile?: (path: string) => Parsed<string>
}

export class ConfigError extends Error {
  readonly _tag = "ConfigError"
  readonly problems: ReadonlyArray<string>
  constructor(problems: ReadonlyArray<string>) {
    super(problems.length === 1 ? `invalid configuration: ${problems[0]}` : `invalid configuration:\n  - ${problems.join("\n  - ")}`)
    this.problems = problems
  }
}

const LOOPBACK_V4 = /^127\./
export const isLoopback = (host: string): boolean =>
  LOOPBACK_V4.test(host) || host === "::1" || host === "0:0:0:0:0:0:0:1" || /^::ffff:127\./i.test(host) || host === "localhost"

const decodeSetting = (s: (typeof settings)[number], raw: unknown): Parsed<unknown> => {
  const r = Schema.decodeUnknownResult(s.schema)(raw)
  if (r._tag === "Success") return ok(r.success)
  return bad(SchemaIssue.makeFormatterDefault()(r.failure.issue))
}

/**
 * Layers the inputs per key and decodes them. Fails with every problem found, each naming its source.
 * Does not apply the safety rule; see `checkSafety`.
 */
export const loadConfig = (inputs: ConfigInputs): Effect.Effect<HctunnelConfig, ConfigError> =>
  Effect.suspend(() => {
    const problems: Array<string> = []
    let fileValues: Record<string, unknown> = {}
    const file = inputs.file
    if (file !== undefined) {
      let parsed: unknown
      try {
        parsed = JSON.parse(file.text)
      } catch (e) {
        problems.push(`${file.name} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`)
      }
      if (parsed !== undefined) {
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
          problems.push(`${file.name} must hold a JSON object such as {"listen": ["127.0.0.1:8888"]}`)
        } else {
          fileValues = parsed as Record<string, unknown>
          const known = new Set(settings.map((s) => s.key))
          for (const k of Object.keys(fileValues)) {
            if (!known.has(k)) {
              const near = settings.find((s) => s.key.toLowerCase() === k.toLowerCase().replace(/[-_]/g, ""))
              problems.push(`${file.name}: unknown key ${JSON.stringify(k)}${near ? ` (did you mean "${near.key}"?)` : ""}; known keys: ${[...known].join(", ")}`)
            }
          }
        }
      }
    }
    const values: Record<string, unknown> = {}
    const explicit = new Set<string>()
    for (const s of settings) {
      const flag = inputs.flags[s.key]
      const env = inputs.env[s.env]
      let raw: unknown
      let where: string
      const shown = (v: unknown): string => (typeof v === "string" ? (s.redact?.(v) ?? v) : show(v))
      if (flag !== undefined && (typeof flag === "string" || flag.length > 0)) {
        raw = typeof flag === "string" ? flag : s.repeated ? flag.join(",") : flag[flag.length - 1]
        where = `--${s.flag} ${shown(raw)}`
      } else if (env !== undefined && env !== "") {
        raw = env
        where = `${s.env}=${shown(env)}`
      } else if (Object.hasOwn(fileValues, s.key)) {
        raw = fileValues[s.key]
        where = `${file?.name ?? "config file"}: "${s.key}": ${typeof raw === "string" ? JSON.stringify(shown(raw)) : show(raw)}`
      } else {
        values[s.key] = s.defaultValue()
        continue
      }
      explicit.add(s.key)
      const r = decodeSetting(s, raw)
      if (r.ok) values[s.key] = r.value
      else problems.push(`${where}: ${r.message.replace(/^"[^"]*": /, "")}`)
    }
    const upstream = upstreamFor(
      values["upstream"] as UpstreamUrl | undefined,
      values["upstreamCredentialsFile"] as string | undefined,
      inputs.env,
      inputs.readFile ?? ((path) => bad(`cannot read ${path} here`)),
    )
    if (!upstream.ok && problems.length === 0) problems.push(upstream.message)
    if (problems.length > 0 || !upstream.ok) return Effect.fail(new ConfigError(problems))

    let listen = values["listen"] as ReadonlyArray<ListenAddress>
    const port = values["port"] as number | undefined
    if (port !== undefined) listen = listen.map((a) => ({ host: a.host, port }))
    const config: HctunnelConfig = {
      listen,
      workers: values["workers"] as number,
      graceMs: values["shutdownGrace"] as number,
      logFormat: values["logFormat"] as LogFormat,
      logLevel: values["logLevel"] as LogLevel,
      allow: values["allow"] as ReadonlyArray<string>,
      allowExplicit: explicit.has("allow"),
      via: values["via"] as string,
      statsIntervalMs: values["statsInterval"] as number,
      hosts: values["hosts"] as Readonly<Record<string, string>>,
      dnsServers: values["dnsServers"] as ReadonlyArray<string>,
      allowTo: values["allowTo"] as ReadonlyArray<string>,
      denyTo: values["denyTo"] as ReadonlyArray<string>,
      admin: values["admin"] as ListenAddress | undefined,
      adminAllow: values["adminAllow"] as ReadonlyArray<string>,
      adminAllowExplicit: explicit.has("adminAllow"),
      ...(upstream.value === undefined ? {} : { upstream: upstream.value satisfies UpstreamProxy }),
      noUpstream: values["noUpstream"] as ReadonlyArray<string>,
      ...(values["authFile"] === undefined ? {} : { authFile: values["authFile"] as string }),
      limits: {
        maxRequestLine: values["maxRequestLine"] as number,
        maxHeaders: values["maxHeaders"] as number,
        maxHeadBytes: values["maxHeadBytes"] as number,
        maxBufferedBytes: values["maxBufferedBytes"] as number,
        connectTimeout: values["connectTimeout"] as number,
        headTimeout: values["headTimeout"] as number,
        keepAliveTimeout: values["keepAliveTimeout"] as number,
        idleTimeout: values["idleTimeout"] as number,
      },
      proxyProtocolFrom: values["proxyProtocolFrom"] as ReadonlyArray<string>,
      maxConnections: values["maxConnections"] as number,
      maxConnectionsPerClient: values["maxConnectionsPerClient"] as number,
    }
    return Effect.succeed(config)
  })

/** Safe by default: never an open proxy by accident. */
export const checkSafety = (config: HctunnelConfig): Effect.Effect<HctunnelConfig, ConfigError> => {
  const exposed = config.listen.filter((a) => !isLoopback(a.host))
  if (config.admin !== undefined && !isLoopback(config.admin.host) && !config.adminAllowExplicit) {
    return Effect.fail(
      new ConfigError([
        `refusing to serve the admin endpoint on ${formatListen(config.admin)} (not a loopback address) without an explicit admin allow-list. ` +
          `Its figures describe your traffic, so say who may read them with --admin-allow (or ${envName("adminAllow")} / "adminAllow" in the config file), ` +
          `e.g. --admin-allow 10.0.0.5 for your Prometheus server.`,
      ]),
    )
  }
  if (exposed.length === 0 || config.allowExplicit) return Effect.succeed(config)
  // Proxy authentication says who may use the proxy: every address may try, only users get through.
  if (config.authFile !== undefined) return Effect.succeed({ ...config, allow: ["0.0.0.0/0", "::/0"] })
  return Effect.fail(
    new ConfigError([
      `refusing to listen on ${exposed.map(formatListen).join(", ")} (not a loopback address) without an explicit client allow-list. ` +
        `By default only loopback clients (127.0.0.0/8, ::1/128) may use the proxy, which would make a public listener useless, ` +
        `and allowing everyone would make it an open proxy. Say who may connect with --allow (or ${envName("allow")} / "allow" in the config file), ` +
        `e.g. --allow 10.0.0.0/8 --allow 192.168.0.0/16; --allow 0.0.0.0/0 --allow ::/0 allows everyone; ` +
        `or require proxy authentication with --auth-file (then any address may connect, and only its users get through).`,
    ])
  )
}
