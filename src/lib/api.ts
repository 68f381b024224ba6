/**
 * The public API of `import { startProxy } from "hctunnel"` (package.json `exports["."]`): its types, and
 * the declarations of its functions, which src/index.ts implements (checked: each is `typeof` its
 * declaration here). `npm run build` turns this file into dist/types/api.d.ts (tsconfig.lib.json). It
 * imports nothing, not even Node's types, so a program type-checks against it without @types/node.
 * docs/library.md is the guide; every setting is described in docs/configuration.md.
 */

/** A duration: milliseconds as a number, or text with a unit: "250ms", "10s", "1.5m", "1h". */
export type Duration = number | string
/** A size: bytes as a number, or text: "64KiB", "1MiB". */
export type Size = number | string
/** Several values: an array, or one text of comma-separated values. */
export type List = string | ReadonlyArray<string>

/**
 * The settings of a proxy: the keys of the config file, with the same values (docs/configuration.md).
 * Every one is optional (undefined is the same as absent). Two defaults differ from the command's: `listen` is "127.0.0.1:0" (a free port,
 * read it from `proxy.url`) and `logLevel` is "warn" (no access log line per request on your stdout).
 */
export interface ProxySettings {
  /** Addresses to listen on, "host:port" or "[v6]:port"; the first one is `proxy.url`. Default "127.0.0.1:0". */
  readonly listen?: List | undefined
  /** The port of every listen address (0: a free one). */
  readonly port?: number | string | undefined
  /** Worker threads (1-64), each accepting on the same port. Default: the number of CPUs. */
  readonly workers?: number | string | undefined
  /** How long live connections get to finish when the proxy closes. Default "10s". */
  readonly shutdownGrace?: Duration | undefined
  readonly logFormat?: "text" | "json" | undefined
  /** "info" adds the access log (one line per request or tunnel). Default "warn". */
  readonly logLevel?: "debug" | "info" | "warn" | "error" | "none" | undefined
  /** Client networks allowed to use the proxy (CIDRs). Default loopback only. */
  readonly allow?: List | undefined
  /** The pseudonym added to Via. Default "hctunnel". */
  readonly via?: string | undefined
  /** How often workers report their counters. Default "10s". */
  readonly statsInterval?: Duration | undefined
  /** Static name -> address entries used instead of DNS: {"origin.test": "127.0.0.1"} or "name=address,...". */
  readonly hosts?: List | Readonly<Record<string, string>> | undefined
  readonly maxRequestLine?: Size | undefined
  readonly maxHeaders?: number | string | undefined
  readonly maxHeadBytes?: Size | undefined
  readonly maxBufferedBytes?: Size | undefined
  readonly connectTimeout?: Duration | undefined
  readonly headTimeout?: Duration | undefined
  readonly keepAliveTimeout?: Duration | undefined
  readonly idleTimeout?: Duration | undefined
  /** DNS servers asked for origin names ("127.0.0.1:5353"). Default: the system's. */
  readonly dnsServers?: List | undefined
  /** Destinations to allow / deny: a CIDR, IP, name, *.suffix or *, with optional ports ("10.0.0.0/8:22", "*:25"). */
  readonly allowTo?: List | undefined
  readonly denyTo?: List | undefined
  /** Serve /metrics, /healthz and /stats on this address ("127.0.0.1:9090"). */
  readonly admin?: string | undefined
  readonly adminAllow?: List | undefined
  /** Load balancers whose connections start with a PROXY protocol header (CIDRs). */
  readonly proxyProtocolFrom?: List | undefined
  readonly maxConnections?: number | string | undefined
  readonly maxConnectionsPerClient?: number | string | undefined
  /** The parent proxy of every request and tunnel: "http://[user:password@]host:port". */
  readonly upstream?: string | undefined
  /** Destinations that skip the parent (NO_PROXY syntax). */
  readonly noUpstream?: List | undefined
  /** A file holding the parent's credentials as one line user:password. */
  readonly upstreamCredentialsFile?: string | undefined
  /** Require proxy authentication against this htpasswd file of bcrypt entries. */
  readonly authFile?: string | undefined
  /**
   * The hooks module (see `ProxyOptions.hooks`), as the config file names it: a path or a file: URL.
   * `ProxyOptions.hooks` also takes a URL object.
   */
  readonly hooks?: string | undefined
  /** How long one call of a hook may take before its request fails with 503. Default "5s". */
  readonly hookTimeout?: Duration | undefined
}

/** `startProxy`'s options: any setting, and the hooks module. */
export interface ProxyOptions extends Omit<ProxySettings, "hooks"> {
  /**
   * A module every worker thread imports, exporting `authenticate` and/or `route` (see `Hooks`), e.g.
   * `new URL("./hooks.js", import.meta.url)`. A relative path is resolved against the working directory.
   */
  readonly hooks?: string | { readonly href: string } | undefined
}

/** What `authenticate` is told: the Basic credentials of `Proxy-Authorization`, and the client's address. */
export interface AuthenticateRequest {
  readonly user: string
  readonly password: string
  /** The client's IP address (the PROXY protocol header's, when there is one). */
  readonly client: string
}

/** `true`: let it in as `user`; `{ user }`: let it in under that name (the access log's); `false`: 407. */
export type AuthenticateAnswer = boolean | { readonly user: string }

/** What `route` is told of one request or tunnel. */
export interface RouteRequest {
  /** The request's method; "CONNECT" for a tunnel. */
  readonly method: string
  /** The destination, as the client wrote it (lower-cased; an IPv6 address without brackets). */
  readonly host: string
  readonly port: number
  /** A CONNECT tunnel (HTTPS, WebSocket...), or a plain HTTP request. */
  readonly tunnel: boolean
  /** Who `authenticate` (or the users file) let in; undefined without proxy authentication. */
  readonly user: string | undefined
  /** The client's IP address. */
  readonly client: string
}

/**
 * `undefined`: as configured (`upstream`, `noUpstream`); `{ deny: "why" }`: 403 with that text;
 * `{ upstream: "http://[user:password@]host:port" }`: through that parent proxy; `{ upstream: null }`: direct.
 */
export type RouteAnswer = undefined | null | { readonly deny: string } | { readonly upstream: string | null }

/** Decides who may use the proxy; replaces `authFile` when present. May be async. */
export type AuthenticateHook = (request: AuthenticateRequest) => AuthenticateAnswer | PromiseLike<AuthenticateAnswer>
/**
 * Decides, once per request or tunnel and before anything is dialled, whether it may pass and through
 * which parent proxy. The destination policy (`allowTo`, `denyTo`) still applies after it. May be async.
 */
export type RouteHook = (request: RouteRequest) => RouteAnswer | PromiseLike<RouteAnswer>

/**
 * The exports of a hooks module. A hook that throws, rejects, answers something else or takes longer
 * than `hookTimeout` fails its one request with 503 (the error is logged, the client is not told it).
 */
export interface Hooks {
  readonly authenticate?: AuthenticateHook
  readonly route?: RouteHook
}

/** The figures of GET /stats: the whole process, and the sums of every worker's counters. */
export interface ProxyStats {
  readonly pid: number
  readonly uptimeMs: number
  /** CPU time and memory of the whole process (your program's included). */
  readonly cpuUserMs: number
  readonly cpuSystemMs: number
  readonly rssBytes: number
  readonly workers: number
  readonly workersRunning: number
  readonly restarts: number
  readonly connectionsAccepted: number
  readonly connectionsLive: number
  readonly requests: number
  readonly tunnels: number
  readonly bytesFromClients: number
  readonly bytesFromOrigins: number
  readonly errors: number
  readonly dnsQueries: number
  readonly dnsCacheHits: number
  readonly dnsFailures: number
  readonly deniedSelf: number
  readonly deniedRule: number
  readonly deniedRange: number
  readonly deniedPort: number
  readonly authOk: number
  readonly authCached: number
  readonly authFailed: number
  readonly authRateLimited: number
  readonly authVerifications: number
}

/** A proxy `startProxy` started. It keeps the program alive until `close()`. */
export interface RunningProxy {
  /** "http://127.0.0.1:PORT": the first listen address, its port resolved (a wildcard address as loopback). */
  readonly url: string
  /** Every address it listens on, ports resolved. */
  readonly addresses: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** Worker threads running. */
  readonly workers: number
  /** Fresh figures from every worker. */
  stats(): Promise<ProxyStats>
  /**
   * New settings for new connections (open ones finish under the old), like SIGHUP for the command:
   * `settings` are merged into the current ones (a key set to undefined goes back to its default),
   * checked as a whole, and applied to every worker. Rejects, changing nothing, when a value is invalid
   * or when it changes a setting only a restart can (listen, port, workers, hooks... the error names them).
   */
  reload(settings: ProxySettings): Promise<void>
  /**
   * Stop accepting, let live connections finish for `grace` (default `shutdownGrace`; 0 closes them at
   * once), stop the workers and free the port. Resolves when all of that is done; nothing of the proxy is
   * left to keep the program alive. Calling it again returns the same promise.
   */
  close(grace?: Duration): Promise<void>
  /** Resolves when the proxy has closed. */
  readonly closed: Promise<void>
}

/** Why a call failed: `code` says which kind of failure, the message says what to do. */
export declare class ProxyError extends Error {
  /** ERR_HCTUNNEL_CONFIG: invalid or unsafe settings; ERR_HCTUNNEL_START: cannot listen, or a worker or the hooks module cannot start; ERR_HCTUNNEL_RELOAD: a reload that needs a restart; ERR_HCTUNNEL_CLOSED: the proxy is closed. */
  readonly code: "ERR_HCTUNNEL_CONFIG" | "ERR_HCTUNNEL_START" | "ERR_HCTUNNEL_RELOAD" | "ERR_HCTUNNEL_CLOSED"
  constructor(code: ProxyError["code"], message: string)
}

/** Start a proxy; resolves once every worker listens. Rejects with a `ProxyError`. */
export declare function startProxy(options?: ProxyOptions): Promise<RunningProxy>

/**
 * A local proxy without credentials in front of `parent` ("http://user:password@host:port"), for a
 * client that cannot send proxy credentials (Chromium's --proxy-server): one worker on 127.0.0.1, a free
 * port unless `port` is given. Resolves to its URL, "http://127.0.0.1:PORT".
 */
export declare function anonymizeProxy(parent: string | { readonly url: string; readonly port?: number }): Promise<string>

/**
 * Close a proxy `anonymizeProxy` started; `closeConnections`: cut open connections now (else they get
 * `shutdownGrace` to finish). Resolves to false when no such proxy runs.
 */
export declare function closeAnonymizedProxy(url: string, closeConnections: boolean): Promise<boolean>
