/**
 * startProxy: a proxy inside a Node program (docs/library.md). The options are the config file's layer,
 * decoded by the command's own code (src/cli/config.ts: the same names, values and messages, then the
 * same safety rule and users-file check), then run by `launch` like the command's, but with no signal
 * handler: the program drives the proxy through its handle, made of the supervisor's control. Each
 * proxy has its own supervisor, workers, settings and port, so a program may run several.
 *
 * Every failure is a `ProxyError` with a code and the command's sentence; nothing is printed for it.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Cause from "effect/Cause"
import { checkSafety, type HctunnelConfig, loadConfig } from "../cli/config.ts"
import { checkAuthFile, readSecretFile } from "../cli/files.ts"
import { parseDurationMs } from "../cli/parsers.ts"
import { planReload, restartOnly } from "../cli/reload-plan.ts"
import { settings } from "../cli/settings.ts"
import { describeListenFailure, statsFigures } from "../cli/wording.ts"
import type { ListenAddress } from "../runtime/protocol.ts"
import type { SupervisorControl } from "../runtime/supervisor.ts"
import type * as Api from "./api.ts"
import { launch } from "./launch.ts"

/** What the messages call the options (`startProxy options: "port": 70000: ...`). */
const LAYER_NAME = "startProxy options"

/** Where the library's defaults differ from the command's (api.ts `ProxySettings`). */
const LIBRARY_DEFAULTS: Readonly<Record<string, unknown>> = { listen: ["127.0.0.1:0"], logLevel: "warn" }

type Code = Api.ProxyError["code"]

export class ProxyError extends Error implements Api.ProxyError {
  readonly code: Code
  constructor(code: Code, message: string) {
    super(message)
    this.name = "ProxyError"
    this.code = code
  }
}

/** The options as a config file's layer: no undefined values, the hooks module as text. */
const layerOf = (options: Api.ProxyOptions | Api.ProxySettings): Record<string, unknown> => {
  const values: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue
    values[key] = key === "hooks" && typeof value === "object" && value !== null && "href" in value ? String(value.href) : value
  }
  return values
}

const messageOf = (error: unknown): string =>
  error instanceof Error
    ? error.message
    : typeof error === "object" && error !== null && "message" in error
      ? String(error.message)
      : String(error)

/**
 * Decode a layer into the configuration, or reject with the command's words. At start-up the safety rule
 * judges it here (`safety`); a reload's is judged by planReload, like SIGHUP's.
 */
const decode = async (values: Readonly<Record<string, unknown>>, safety = true): Promise<HctunnelConfig> => {
  const exit = await Effect.runPromiseExit(
    loadConfig({
      flags: {},
      env: {},
      values: { name: LAYER_NAME, values: { ...LIBRARY_DEFAULTS, ...values } },
      readFile: readSecretFile,
    }).pipe(
      Effect.flatMap((config) => (safety ? checkSafety(config) : Effect.succeed(config))),
      Effect.tap((config) => (config.authFile === undefined ? Effect.void : checkAuthFile(config.authFile))),
    ),
  )
  if (Exit.isSuccess(exit)) return exit.value
  throw new ProxyError("ERR_HCTUNNEL_CONFIG", messageOf(Cause.squash(exit.cause)))
}

/** A URL for a listen address: a wildcard is reached through loopback, IPv6 in brackets. */
const urlOf = (a: ListenAddress): string => {
  const host = a.host === "0.0.0.0" ? "127.0.0.1" : a.host === "::" ? "::1" : a.host
  return `http://${host.includes(":") ? `[${host}]` : host}:${a.port}`
}

/** A restart-only setting's flag name ("--max-connections") as the option's key ("maxConnections"). */
const keyOfFlag = (names: string): string =>
  names
    .split("/")
    .map((flag) => settings.find((s) => `--${s.flag}` === flag)?.key ?? flag)
    .join("/")

class Handle implements Api.RunningProxy {
  readonly url: string
  readonly addresses: ReadonlyArray<ListenAddress>
  readonly workers: number
  readonly closed: Promise<void>
  private readonly control: SupervisorControl
  /** The configuration that runs: the start-up one, then each one a reload applied. */
  private running: HctunnelConfig
  /** The options as given, with every reload merged in. */
  private layer: Record<string, unknown>
  private closing: Promise<void> | undefined = undefined
  private isClosed = false

  constructor(
    ready: { addresses: ReadonlyArray<ListenAddress>; workers: number; control: SupervisorControl },
    started: HctunnelConfig,
    layer: Record<string, unknown>,
    closed: Promise<void>,
  ) {
    this.addresses = ready.addresses
    this.workers = ready.workers
    this.url = urlOf(ready.addresses[0] as ListenAddress)
    this.control = ready.control
    this.running = started
    this.layer = layer
    this.closed = closed.finally(() => {
      this.isClosed = true
    })
  }

  private ensureOpen(what: string): void {
    if (this.isClosed || this.closing !== undefined)
      throw new ProxyError("ERR_HCTUNNEL_CLOSED", `cannot ${what}: the proxy at ${this.url} is closed`)
  }

  async stats(): Promise<Api.ProxyStats> {
    this.ensureOpen("read its stats")
    return statsFigures(await Effect.runPromise(this.control.stats)) as unknown as Api.ProxyStats
  }

  async reload(changes: Api.ProxySettings): Promise<void> {
    this.ensureOpen("reload it")
    const layer = { ...this.layer }
    for (const [key, value] of Object.entries(layerOf(changes))) layer[key] = value
    for (const [key, value] of Object.entries(changes)) if (value === undefined) delete layer[key]
    const next = await decode(layer, false)
    const changed = restartOnly.filter(([, get]) => JSON.stringify(get(this.running)) !== JSON.stringify(get(next))).map(([name]) => name)
    if (changed.length > 0) {
      throw new ProxyError(
        "ERR_HCTUNNEL_RELOAD",
        `cannot change ${changed.map(keyOfFlag).join(", ")} while the proxy runs (nothing was changed): close it and start another`,
      )
    }
    // As SIGHUP: the new configuration as a whole, judged by the safety rule, or nothing.
    const planned = await Effect.runPromiseExit(planReload(this.running, next))
    if (Exit.isFailure(planned)) throw new ProxyError("ERR_HCTUNNEL_CONFIG", messageOf(Cause.squash(planned.cause)))
    this.ensureOpen("reload it")
    const outcome = await Effect.runPromise(this.control.reload(planned.value.plan))
    this.layer = layer
    this.running = planned.value.config
    if (outcome.errors.length > 0) {
      throw new ProxyError("ERR_HCTUNNEL_RELOAD", `the reload reached ${outcome.applied} worker(s) only: ${outcome.errors.join("; ")}`)
    }
  }

  close(grace?: Api.Duration): Promise<void> {
    if (this.closing !== undefined) return this.closing
    let graceMs: number | undefined
    if (grace !== undefined) {
      graceMs = parseDurationMs(grace)
      if (graceMs === undefined)
        return Promise.reject(new ProxyError("ERR_HCTUNNEL_CONFIG", `close(${JSON.stringify(grace)}): not a duration`))
    }
    if (!this.isClosed) Effect.runSync(this.control.stop(graceMs))
    this.closing = this.closed
    return this.closing
  }
}

export const startProxy: typeof Api.startProxy = async (options = {}) => {
  const layer = layerOf(options)
  const config = await decode(layer)
  return new Promise<Api.RunningProxy>((resolve, reject) => {
    let settle: (() => void) | undefined
    const closed = new Promise<void>((res) => {
      settle = res
    })
    let ready = false
    const fiber = Effect.runFork(
      launch(config, {
        signals: false,
        onReady: (addresses, workers, _admin, control) =>
          Effect.sync(() => {
            ready = true
            resolve(new Handle({ addresses, workers, control }, config, layer, closed))
          }),
      }),
    )
    fiber.addObserver((exit) => {
      if (!ready) reject(startFailure(exit))
      // Whatever the end (a drain that overran cut the connections left), the workers are closed now.
      else settle?.()
    })
  })
}

/** Why the proxy did not start, as a ProxyError. */
const startFailure = (exit: Exit.Exit<unknown, unknown>): ProxyError => {
  const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : new Error("the proxy stopped before it listened")
  if ((error as { _tag?: unknown })._tag === "ListenError") {
    return new ProxyError("ERR_HCTUNNEL_START", describeListenFailure(error as Parameters<typeof describeListenFailure>[0]))
  }
  return new ProxyError("ERR_HCTUNNEL_START", error instanceof Error ? error.message : String(error))
}
