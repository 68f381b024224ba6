/**
 * hctunnel's configuration: the shape the runtime gets (`HctunnelConfig`), the loader that layers the
 * inputs, and the safety rule.
 *
 * Theory of operation: every setting is described once in settings.ts (key, flag, env var, default,
 * help text, and its codec in `Settings`, the one Schema of the configuration). The loader takes the
 * raw inputs of the four layers, picks for each key the first layer that has it (CLI flag >
 * HCTUNNEL_* env var > JSON config file > default), decodes it with that key's codec, and reports every
 * problem at once, each one naming where the bad value came from (`--port 70000`,
 * `HCTUNNEL_PORT=70000`, `hctunnel.json: "port"`). It then shapes the decoded settings into
 * `HctunnelConfig`: that is a plain function of `SettingValues`, not a second Schema (the port folds
 * into the listen addresses, the limits are grouped, the parent's credentials are joined into one
 * header value), so there is nothing left to decode.
 *
 * This module does no IO except through its caller-supplied inputs: the caller reads argv, the
 * environment and the file. It never exits the process.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type { Limits } from "../core/limits.ts"
import type { ListenAddress } from "../runtime/protocol.ts"
import { isExposed, isLoopbackAddress } from "../runtime/dial/DestinationPolicy.ts"
import type { UpstreamProxy } from "../runtime/dial/Upstream.ts"
import { bad, formatListen, ok, type Parsed, show } from "./parsers.ts"
import { envName, type LogFormat, type LogLevel, type SettingValues, Settings, settings } from "./settings.ts"
import { upstreamFor } from "./upstream-config.ts"

/** The decoded configuration, as the supervisor and the workers get it. */
export interface HctunnelConfig {
  readonly listen: ReadonlyArray<ListenAddress>
  readonly workers: number
  readonly graceMs: number
  readonly logFormat: LogFormat
  readonly logLevel: LogLevel
  readonly allow: ReadonlyArray<string>
  /** True when `allow` came from a flag, env var or file rather than the default. */
  readonly allowExplicit: boolean
  readonly via: string
  readonly statsIntervalMs: number
  readonly hosts: Readonly<Record<string, string>>
  /** DNS servers for origin names; empty: the system's. */
  readonly dnsServers: ReadonlyArray<string>
  /** Destination rules as written (validated); see src/runtime/dial/DestinationPolicy.ts. */
  readonly allowTo: ReadonlyArray<string>
  readonly denyTo: ReadonlyArray<string>
  /** The admin endpoint's address; undefined when it is off. */
  readonly admin: ListenAddress | undefined
  readonly adminAllow: ReadonlyArray<string>
  /** True when `adminAllow` came from a flag, env var or file rather than the default. */
  readonly adminAllowExplicit: boolean
  /** The parent proxy, credentials made into the Proxy-Authorization value; absent: direct. */
  readonly upstream?: UpstreamProxy
  readonly noUpstream: ReadonlyArray<string>
  /** The htpasswd file of proxy authentication; absent: authentication off. */
  readonly authFile?: string
  /** The hooks module (a path or a file:/data: URL, as written); absent: no hooks. */
  readonly hooks?: string
  readonly hookTimeoutMs: number
  readonly limits: Limits
  readonly proxyProtocolFrom: ReadonlyArray<string>
  readonly maxConnections: number
  readonly maxConnectionsPerClient: number
}

// ---------------------------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------------------------

export interface ConfigInputs {
  /** Flags the user gave, by setting key. Repeated flags as arrays. */
  readonly flags: Readonly<Record<string, string | ReadonlyArray<string>>>
  readonly env: Readonly<Record<string, string | undefined>>
  /** The config file, if any: its name (for messages) and its text. */
  readonly file?: { readonly name: string; readonly text: string } | undefined
  /**
   * The same layer as an object already parsed (the library's `startProxy` options): its name for
   * messages, and the values by setting key, with the config file's value syntax. Instead of `file`.
   */
  readonly values?: { readonly name: string; readonly values: Readonly<Record<string, unknown>> } | undefined
  /** Reads a file a setting names (the parent's credentials file); default: files cannot be read. */
  readonly readFile?: (path: string) => Parsed<string>
}

/** The configuration cannot be used: a bad value (each problem names its source), or one the safety rule refuses. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  /** "invalid": a value does not decode; "unsafe": valid, but an open proxy or an open admin endpoint. */
  readonly reason: "invalid" | "unsafe"
  readonly problems: ReadonlyArray<string>
}> {
  override get message(): string {
    const problems = this.problems
    return problems.length === 1 ? `invalid configuration: ${problems[0]}` : `invalid configuration:\n  - ${problems.join("\n  - ")}`
  }
}

/** A file the configuration names cannot be used (the config file, the auth file); the message names it and says why. */
export class StartupError extends Data.TaggedError("StartupError")<{
  readonly reason: "config-file" | "auth-file"
  readonly message: string
}> {}

const decodeSetting = (s: (typeof settings)[number], raw: unknown): Parsed<unknown> => {
  const r = Schema.decodeUnknownResult(Settings.fields[s.key as keyof typeof Settings.fields] as Schema.Codec<unknown, unknown>)(raw)
  if (r._tag === "Success") return ok(r.success)
  return bad(SchemaIssue.makeFormatterDefault()(r.failure.issue))
}

/** A sentence for every key of a layer that names no setting, with the nearest one when it is a matter of spelling. */
const unknownKeys = (name: string, values: Readonly<Record<string, unknown>>): Array<string> => {
  const known = new Set(settings.map((s) => s.key))
  return Object.keys(values)
    .filter((k) => !known.has(k))
    .map((k) => {
      const near = settings.find((s) => s.key.toLowerCase() === k.toLowerCase().replace(/[-_]/g, ""))
      return `${name}: unknown key ${JSON.stringify(k)}${near ? ` (did you mean "${near.key}"?)` : ""}; known keys: ${[...known].join(", ")}`
    })
}

/**
 * Layers the inputs per key and decodes them. Fails with every problem found, each naming its source.
 * Does not apply the safety rule; see `checkSafety`.
 */
export const loadConfig = (inputs: ConfigInputs): Effect.Effect<HctunnelConfig, ConfigError> =>
  Effect.suspend(() => {
    const problems: Array<string> = []
    let fileValues: Record<string, unknown> = {}
    const file = inputs.file ?? (inputs.values === undefined ? undefined : { name: inputs.values.name, text: "" })
    if (inputs.values !== undefined) {
      fileValues = { ...inputs.values.values }
      problems.push(...unknownKeys(inputs.values.name, fileValues))
    } else if (file !== undefined) {
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
          problems.push(...unknownKeys(file.name, fileValues))
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
    const v = values as SettingValues
    const upstream = upstreamFor(
      v.upstream,
      v.upstreamCredentialsFile,
      inputs.env,
      inputs.readFile ?? ((path) => bad(`cannot read ${path} here`)),
    )
    if (!upstream.ok && problems.length === 0) problems.push(upstream.message)
    if (problems.length > 0 || !upstream.ok) return Effect.fail(new ConfigError({ reason: "invalid", problems }))
    return Effect.succeed(shape(v, explicit, upstream.value))
  })

/** The runtime's view of the decoded settings: `--port` folded into every listen address, the limits grouped. */
const shape = (v: SettingValues, explicit: ReadonlySet<string>, upstream: UpstreamProxy | undefined): HctunnelConfig => {
  const port = v.port
  return {
    listen: port === undefined ? v.listen : v.listen.map((a) => ({ host: a.host, port })),
    workers: v.workers,
    graceMs: v.shutdownGrace,
    logFormat: v.logFormat,
    logLevel: v.logLevel,
    allow: v.allow,
    allowExplicit: explicit.has("allow"),
    via: v.via,
    statsIntervalMs: v.statsInterval,
    hosts: v.hosts,
    dnsServers: v.dnsServers,
    allowTo: v.allowTo,
    denyTo: v.denyTo,
    admin: v.admin,
    adminAllow: v.adminAllow,
    adminAllowExplicit: explicit.has("adminAllow"),
    ...(upstream === undefined ? {} : { upstream }),
    noUpstream: v.noUpstream,
    ...(v.authFile === undefined ? {} : { authFile: v.authFile }),
    ...(v.hooks === undefined ? {} : { hooks: v.hooks }),
    hookTimeoutMs: v.hookTimeout,
    limits: {
      maxRequestLine: v.maxRequestLine,
      maxHeaders: v.maxHeaders,
      maxHeadBytes: v.maxHeadBytes,
      maxBufferedBytes: v.maxBufferedBytes,
      connectTimeout: v.connectTimeout,
      headTimeout: v.headTimeout,
      keepAliveTimeout: v.keepAliveTimeout,
      idleTimeout: v.idleTimeout,
    },
    proxyProtocolFrom: v.proxyProtocolFrom,
    maxConnections: v.maxConnections,
    maxConnectionsPerClient: v.maxConnectionsPerClient,
  }
}

/** Safe by default: never an open proxy by accident. */
export const checkSafety = (config: HctunnelConfig): Effect.Effect<HctunnelConfig, ConfigError> => {
  if (config.admin !== undefined && !isLoopbackAddress(config.admin.host) && !config.adminAllowExplicit) {
    return Effect.fail(
      new ConfigError({
        reason: "unsafe",
        problems: [
          `refusing to serve the admin endpoint on ${formatListen(config.admin)} (not a loopback address) without an explicit admin allow-list. ` +
            `Its figures describe your traffic, so say who may read them with --admin-allow (or ${envName("adminAllow")} / "adminAllow" in the config file), ` +
            `e.g. --admin-allow 10.0.0.5 for your Prometheus server.`,
        ],
      }),
    )
  }
  // Exposed (the one definition, DestinationPolicy.ts) with the default client list, loopback only: the
  // clients it exposes to would all be refused, and allowing everyone would make it an open proxy.
  const exposed = isExposed({ listen: config.listen, clientAllow: config.allow, proxyProtocolFrom: config.proxyProtocolFrom })
  if (!exposed || config.allowExplicit) return Effect.succeed(config)
  // Proxy authentication says who may use the proxy: every address may try, only users get through.
  if (config.authFile !== undefined) return Effect.succeed({ ...config, allow: ["0.0.0.0/0", "::/0"] })
  const publicListeners = config.listen.filter((a) => !isLoopbackAddress(a.host))
  const what =
    publicListeners.length > 0
      ? `to listen on ${publicListeners.map(formatListen).join(", ")} (not a loopback address)`
      : `to trust PROXY protocol headers from ${config.proxyProtocolFrom.join(", ")} (its clients are the ones the headers name, on other machines)`
  return Effect.fail(
    new ConfigError({
      reason: "unsafe",
      problems: [
        `refusing ${what} without an explicit client allow-list. ` +
          `By default only loopback clients (127.0.0.0/8, ::1/128) may use the proxy, which would make a public listener useless, ` +
          `and allowing everyone would make it an open proxy. Say who may connect with --allow (or ${envName("allow")} / "allow" in the config file), ` +
          `e.g. --allow 10.0.0.0/8 --allow 192.168.0.0/16; --allow 0.0.0.0/0 --allow ::/0 allows everyone; ` +
          `or require proxy authentication with --auth-file (then any address may connect, and only its users get through).`,
      ],
    }),
  )
}
