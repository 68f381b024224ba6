/**
 * The settings table: every setting described once (key, flag, env var, default, help text, and the
 * Schema that decodes its raw input), and `Settings`, the one Schema of the whole configuration.
 *
 * Theory of operation: each setting's codec decodes `unknown` raw input (a flag's or env var's string,
 * or a config file's JSON value) with its parser from parsers.ts, so a Schema issue carries the
 * parser's message. `Settings` is the Struct of those codecs: its `fields` decode one layer's value of
 * one key (the loader in config.ts needs to say which layer a bad value came from), its `Type` is the
 * typed record of every decoded setting, and `ConfigFile` is the same fields made optional. The help
 * text, the table of docs/configuration.md and the tests all read this table. No IO, no knowledge of the layers.
 */
import { availableParallelism } from "node:os"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"
import { defaultLimits, type Limits } from "../core/limits.ts"
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_CLIENT } from "../runtime/access/ConnectionLimits.ts"
import {
  bad,
  choice,
  destinationRules,
  duration,
  filePath,
  formatBytes,
  formatDurationMs,
  hostMap,
  integer,
  list,
  moduleSpecifier,
  ok,
  parseCidr,
  parseDnsServer,
  parseListen,
  type Parsed,
  show,
  size,
  viaToken,
} from "./parsers.ts"
import { parseNoUpstream, parseUpstreamUrl, redactUrl } from "./upstream-config.ts"
import { DEFAULT_HOOK_TIMEOUT_MS } from "../runtime/timers/HookCall.ts"

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
      }),
    ),
  )

export const ListenAddressSchema = Schema.Struct({ host: Schema.String, port: Schema.Number })
export const LOG_FORMATS = ["text", "json"] as const
export const LOG_LEVELS = ["debug", "info", "warn", "error", "none"] as const
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
  /** Shown in --help and docs/configuration.md. */
  readonly defaultText: string
  readonly description: string
  readonly schema: Schema.Codec<unknown, unknown>
  /** The default, already decoded; undefined when the setting has no default (port). */
  readonly defaultValue: () => unknown
  /** Shows a raw value in messages without its secrets (a password in a URL). */
  readonly redact?: (raw: string) => string
}

const setting = <T, D extends (() => T) | undefined>(
  s: Omit<Setting, "schema" | "defaultValue"> & {
    readonly parse: (u: unknown) => Parsed<T>
    readonly to: Schema.Codec<T>
    readonly defaultValue: D
  },
) => {
  const { parse, to, defaultValue, ...rest } = s
  const noDefault = (): undefined => undefined
  return {
    ...rest,
    schema: fromInput(to, parse),
    defaultValue: (defaultValue ?? noDefault) as D extends undefined ? () => undefined : () => T,
    parse,
  }
}

const limitDuration = (key: keyof Limits, flag: string, description: string, min: number, max: number) =>
  setting({
    key,
    flag,
    metavar: "<duration>",
    env: envName(key),
    to: Schema.Number,
    parse: duration(min, max),
    defaultText: formatDurationMs(defaultLimits[key]),
    defaultValue: () => defaultLimits[key],
    description,
  })
const limitSize = (key: keyof Limits, flag: string, description: string, min: number, max: number, bytes: boolean) =>
  setting({
    key,
    flag,
    metavar: bytes ? "<bytes>" : "<n>",
    env: envName(key),
    to: Schema.Number,
    parse: bytes ? size(min, max) : integer(min, max, flag.replace(/-/g, " ")),
    defaultText: bytes ? formatBytes(defaultLimits[key]) : String(defaultLimits[key]),
    defaultValue: () => defaultLimits[key],
    description,
  })

/** maxHeadBytes -> HCTUNNEL_MAX_HEAD_BYTES */
export function envName(key: string): string {
  return `HCTUNNEL_${key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}`
}

const S = {
  listen: setting({
    key: "listen",
    flag: "listen",
    alias: "l",
    repeated: true,
    metavar: "<host:port>",
    env: envName("listen"),
    to: Schema.Array(ListenAddressSchema),
    parse: list(parseListen, 1),
    defaultText: "127.0.0.1:8888",
    defaultValue: () => [{ host: "127.0.0.1", port: 8888 }],
    description: "Address to listen on: host:port or [v6]:port; repeat the flag for several (env/file: comma-separated list / array)",
  }),
  port: setting({
    key: "port",
    flag: "port",
    alias: "p",
    metavar: "<port>",
    env: envName("port"),
    to: Schema.Number,
    parse: integer(0, 65535, "port"),
    defaultText: "the port of --listen",
    defaultValue: undefined,
    description: "Shorthand: use this port for every listen address (0 picks a free port)",
  }),
  workers: setting({
    key: "workers",
    flag: "workers",
    alias: "w",
    metavar: "<n>",
    env: envName("workers"),
    to: Schema.Number,
    parse: integer(1, MAX_WORKERS, "number of workers"),
    defaultText: "number of CPUs",
    defaultValue: defaultWorkers,
    description: `Worker threads, each accepting connections on the same port (1-${MAX_WORKERS})`,
  }),
  shutdownGrace: setting({
    key: "shutdownGrace",
    flag: "shutdown-grace",
    metavar: "<duration>",
    env: envName("shutdownGrace"),
    to: Schema.Number,
    parse: duration(0, HOUR),
    defaultText: "10s",
    defaultValue: () => 10_000,
    description: "On SIGINT/SIGTERM, how long live connections may take to finish before they are closed",
  }),
  logFormat: setting({
    key: "logFormat",
    flag: "log-format",
    metavar: "<text|json>",
    env: envName("logFormat"),
    to: Schema.Literals(LOG_FORMATS),
    parse: choice(LOG_FORMATS),
    defaultText: "text",
    defaultValue: (): LogFormat => "text",
    description: "Log line format: text (one readable line per event) or json (one JSON object per line)",
  }),
  logLevel: setting({
    key: "logLevel",
    flag: "log-level",
    metavar: "<debug|info|warn|error|none>",
    env: envName("logLevel"),
    to: Schema.Literals(LOG_LEVELS),
    parse: choice(LOG_LEVELS),
    defaultText: "info",
    defaultValue: (): LogLevel => "info",
    description:
      "Least severe log level printed: info includes the access log (one line per request or tunnel), debug adds the periodic stats line, none prints only the start-up line",
  }),
  allow: setting({
    key: "allow",
    flag: "allow",
    alias: "a",
    repeated: true,
    metavar: "<cidr>",
    env: envName("allow"),
    to: Schema.Array(Schema.String),
    parse: list(parseCidr, 1),
    defaultText: "127.0.0.0/8,::1/128",
    defaultValue: () => ["127.0.0.0/8", "::1/128"],
    description:
      "Client networks allowed to use the proxy; repeat for several. Required when listening on a non-loopback address or trusting PROXY protocol, unless --auth-file is set",
  }),
  via: setting({
    key: "via",
    flag: "via",
    metavar: "<token>",
    env: envName("via"),
    to: Schema.String,
    parse: viaToken,
    defaultText: "hctunnel",
    defaultValue: () => "hctunnel",
    description: "Pseudonym this proxy adds to the Via header (loop detection)",
  }),
  statsInterval: setting({
    key: "statsInterval",
    flag: "stats-interval",
    metavar: "<duration>",
    env: envName("statsInterval"),
    to: Schema.Number,
    parse: duration(100, DAY),
    defaultText: "10s",
    defaultValue: () => 10_000,
    description: "How often workers report counters and stats are logged (at debug level)",
  }),
  hosts: setting({
    key: "hosts",
    flag: "hosts",
    repeated: true,
    metavar: "<name=address>",
    env: envName("hosts"),
    to: Schema.Record(Schema.String, Schema.String),
    parse: hostMap,
    defaultText: "none",
    defaultValue: () => ({}),
    description: "Static name -> address entries used instead of DNS (for tests); repeat for several",
  }),
  maxRequestLine: limitSize(
    "maxRequestLine",
    "max-request-line",
    "Longest request line (method, target, version); longer gets 414/400",
    64,
    1024 * 1024,
    true,
  ),
  maxHeaders: limitSize("maxHeaders", "max-headers", "Most header fields in a request or response head; more gets 431", 1, 10_000, false),
  maxHeadBytes: limitSize(
    "maxHeadBytes",
    "max-head-bytes",
    "Largest request/response head in bytes; larger gets 431 (request) or 502 (response)",
    1024,
    16 * 1024 * 1024,
    true,
  ),
  maxBufferedBytes: limitSize(
    "maxBufferedBytes",
    "max-buffered-bytes",
    "Bytes buffered per direction before reading from the other side pauses",
    1024,
    64 * 1024 * 1024,
    true,
  ),
  connectTimeout: limitDuration(
    "connectTimeout",
    "connect-timeout",
    "Time to open the connection to the origin; expired gets 504",
    1,
    HOUR,
  ),
  headTimeout: limitDuration(
    "headTimeout",
    "head-timeout",
    "Time for a client to send a complete request head (slowloris guard); expired gets 408",
    1,
    HOUR,
  ),
  keepAliveTimeout: limitDuration(
    "keepAliveTimeout",
    "keep-alive-timeout",
    "Idle time allowed between requests on a kept-alive client connection",
    1,
    DAY,
  ),
  idleTimeout: limitDuration(
    "idleTimeout",
    "idle-timeout",
    "Inactivity allowed while a request or tunnel is in flight; expired gets 504 or a close",
    1,
    DAY,
  ),
  dnsServers: setting({
    key: "dnsServers",
    flag: "dns-server",
    repeated: true,
    metavar: "<ip[:port]>",
    env: "HCTUNNEL_DNS_SERVER",
    to: Schema.Array(Schema.String),
    parse: list(parseDnsServer, 1),
    defaultText: "the system's (resolv.conf)",
    defaultValue: (): ReadonlyArray<string> => [],
    description:
      "DNS server asked for origin names: an IP address with an optional port (127.0.0.1:5353, [::1]:53); repeat for several (env: comma-separated)",
  }),
  allowTo: setting({
    key: "allowTo",
    flag: "allow-to",
    repeated: true,
    metavar: "<address[:ports]>",
    env: envName("allowTo"),
    to: Schema.Array(Schema.String),
    parse: destinationRules,
    defaultText: "none",
    defaultValue: () => [],
    description:
      "Destinations to allow: a CIDR, IP, host name, *.suffix or *, with optional ports (N, N-M, comma list); e.g. 10.0.0.0/8:22 or '[fd00::/8]:443'. Needed on a non-loopback listener for private, loopback and link-local addresses and for ports other than 443 (CONNECT) or Squid's Safe_ports (HTTP)",
  }),
  denyTo: setting({
    key: "denyTo",
    flag: "deny-to",
    repeated: true,
    metavar: "<address[:ports]>",
    env: envName("denyTo"),
    to: Schema.Array(Schema.String),
    parse: destinationRules,
    defaultText: "none",
    defaultValue: () => [],
    description:
      "Destinations to deny, same syntax as --allow-to (e.g. '*:25'); deny rules win over allow rules. The proxy's own listening sockets are always denied",
  }),
  admin: setting({
    key: "admin",
    flag: "admin",
    metavar: "<host:port>",
    env: envName("admin"),
    to: ListenAddressSchema,
    parse: parseListen,
    defaultText: "off",
    defaultValue: undefined,
    description:
      "Serve GET /metrics (Prometheus), /healthz and /stats on this address, from the main thread (port 0 picks a free port, shown in the start-up line)",
  }),
  adminAllow: setting({
    key: "adminAllow",
    flag: "admin-allow",
    repeated: true,
    metavar: "<cidr>",
    env: envName("adminAllow"),
    to: Schema.Array(Schema.String),
    parse: list(parseCidr, 1),
    defaultText: "127.0.0.0/8,::1/128",
    defaultValue: () => ["127.0.0.0/8", "::1/128"],
    description: "Client networks allowed to use the admin endpoint; repeat for several. Required when --admin is a non-loopback address",
  }),
  proxyProtocolFrom: setting({
    key: "proxyProtocolFrom",
    flag: "proxy-protocol-from",
    repeated: true,
    metavar: "<cidr>",
    env: envName("proxyProtocolFrom"),
    to: Schema.Array(Schema.String),
    parse: list(parseCidr, 1),
    defaultText: "none",
    defaultValue: (): ReadonlyArray<string> => [],
    description:
      "Load balancers (e.g. HAProxy with send-proxy / send-proxy-v2) whose connections start with a PROXY protocol v1 or v2 header; its client address is then used for --allow and the log. Connections from other sources are closed; repeat for several",
  }),
  maxConnections: setting({
    key: "maxConnections",
    flag: "max-connections",
    metavar: "<n>",
    env: envName("maxConnections"),
    to: Schema.Number,
    parse: integer(1, MAX_CONNECTIONS, "number of connections"),
    defaultText: String(DEFAULT_MAX_CONNECTIONS),
    defaultValue: () => DEFAULT_MAX_CONNECTIONS,
    description: "Client connections open at once in the whole process (all workers); a new one over it is closed at once",
  }),
  maxConnectionsPerClient: setting({
    key: "maxConnectionsPerClient",
    flag: "max-connections-per-client",
    metavar: "<n>",
    env: envName("maxConnectionsPerClient"),
    to: Schema.Number,
    parse: integer(1, MAX_CONNECTIONS_PER_CLIENT, "number of connections"),
    defaultText: String(DEFAULT_MAX_CONNECTIONS_PER_CLIENT),
    defaultValue: () => DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    description: "Client connections open at once from one client address (all workers); a new one over it is closed at once",
  }),
  upstream: setting({
    key: "upstream",
    flag: "upstream",
    metavar: "<http://[user:password@]host:port>",
    env: envName("upstream"),
    to: Schema.Struct({
      host: Schema.String,
      port: Schema.Number,
      user: Schema.optionalKey(Schema.String),
      password: Schema.optionalKey(Schema.String),
    }),
    parse: parseUpstreamUrl,
    redact: redactUrl,
    defaultText: "none (direct)",
    defaultValue: undefined,
    description:
      "Parent proxy to send every request and tunnel through (except --no-upstream destinations). Better keep its password off the command line: use --upstream-credentials-file or HCTUNNEL_UPSTREAM_CREDENTIALS (user:password)",
  }),
  noUpstream: setting({
    key: "noUpstream",
    flag: "no-upstream",
    repeated: true,
    metavar: "<name|.domain|address|cidr|host:port|*>",
    env: envName("noUpstream"),
    to: Schema.Array(Schema.String),
    parse: list(parseNoUpstream, 1),
    defaultText: "none",
    defaultValue: () => [],
    description:
      "Destinations that go direct, not through --upstream (NO_PROXY syntax: example.com also matches its subdomains; CIDRs match addresses only; * is everything); repeat for several",
  }),
  upstreamCredentialsFile: setting({
    key: "upstreamCredentialsFile",
    flag: "upstream-credentials-file",
    metavar: "<file>",
    env: envName("upstreamCredentialsFile"),
    to: Schema.String,
    parse: (u) => (typeof u === "string" && u.trim() !== "" ? ok(u.trim()) : bad(`${show(u)} is not a file name`)),
    defaultText: "none",
    defaultValue: undefined,
    description:
      "File holding the parent proxy's credentials as one line user:password (instead of the URL; or set HCTUNNEL_UPSTREAM_CREDENTIALS)",
  }),
  authFile: setting({
    key: "authFile",
    flag: "auth-file",
    metavar: "<path>",
    env: envName("authFile"),
    to: Schema.String,
    parse: filePath,
    defaultText: "none (no authentication)",
    defaultValue: undefined,
    description:
      "Require proxy authentication (Basic) against this htpasswd file of bcrypt entries (htpasswd -B -c FILE USER); reloaded when it changes. With it, a non-loopback listener needs no --allow",
  }),
  hooks: setting({
    key: "hooks",
    flag: "hooks",
    metavar: "<module>",
    env: envName("hooks"),
    to: Schema.String,
    parse: moduleSpecifier,
    defaultText: "none",
    defaultValue: undefined,
    description:
      "A JavaScript module every worker imports, exporting authenticate({ user, password, client }) and/or route({ method, host, port, tunnel, user, client }): per-request authentication and parent proxies (docs/library.md); a file path or a file: URL",
  }),
  hookTimeout: setting({
    key: "hookTimeout",
    flag: "hook-timeout",
    metavar: "<duration>",
    env: envName("hookTimeout"),
    to: Schema.Number,
    parse: duration(1, HOUR),
    defaultText: formatDurationMs(DEFAULT_HOOK_TIMEOUT_MS),
    defaultValue: () => DEFAULT_HOOK_TIMEOUT_MS,
    description: "How long a call of a hook may take; a hook that takes longer fails its request with 503",
  }),
}

/** Every setting, in --help order. `config` itself is a flag/env var only (see CONFIG_FLAG). */
export const settings: ReadonlyArray<Setting & { readonly parse: (u: unknown) => Parsed<unknown> }> = Object.values(S)

type SettingsFields = { readonly [K in keyof typeof S]: (typeof S)[K]["schema"] }

/**
 * The one Schema of the configuration: every setting's key -> its codec. A layer's raw value of one key
 * decodes with `Settings.fields[key]`; `SettingValues` is what the layering yields, a setting without a
 * default (port, admin, upstream...) being undefined when no layer gave it.
 */
export const Settings = Schema.Struct(Object.fromEntries(settings.map((s) => [s.key, s.schema])) as unknown as SettingsFields)
export type SettingValues = {
  readonly [K in keyof typeof S]: (typeof Settings.Type)[K] | ReturnType<(typeof S)[K]["defaultValue"]>
}

export const CONFIG_FLAG = {
  flag: "config",
  alias: "c",
  metavar: "<file.json>",
  env: "HCTUNNEL_CONFIG",
  description:
    'JSON config file: an object whose keys are the settings\' names in camelCase (listen, workers, allow, idleTimeout...), e.g. {"listen": ["0.0.0.0:3128"], "allow": ["10.0.0.0/8"], "idleTimeout": "2m"}',
} as const
