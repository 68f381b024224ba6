/**
 * launch: a decoded configuration (src/cli/config.ts) run by the supervisor. The one way a proxy starts:
 * the `hctunnel` command (src/cli/main.ts) and the library's `startProxy` (startProxy.ts) both call it,
 * and differ only in what they add: the command installs the signal handlers and prints its lines, a
 * library proxy installs nothing process-wide and is driven through the supervisor's control.
 *
 * The src/lib folder is the library (package.json `exports["."]`, src/index.ts): this file, startProxy.ts
 * and anonymize.ts, with its public types in api.ts. It may import src/runtime and the configuration
 * modules of src/cli (settings, parsers, config, logging, wording); src/cli/main.ts imports this file.
 */
import * as Effect from "effect/Effect"
import { resolve as resolvePath } from "node:path"
import { pathToFileURL } from "node:url"
import { makeConnectionLimits } from "../runtime/access/ConnectionLimits.ts"
import { type DrainTimeout, type ListenError, type SupervisorOptions, supervise } from "../runtime/supervisor.ts"
import type { HctunnelConfig } from "../cli/config.ts"
import { type LogSettings, loggerLayer } from "../cli/logging.ts"
import { liveSettings, planReload } from "../cli/reload-plan.ts"
import { statsFigures } from "../cli/wording.ts"

/** What the caller adds to the configuration: its output, its signals, its reload. */
export interface LaunchOptions {
  /** Install the process's signal handlers (the command); a library proxy never does. */
  readonly signals: boolean
  readonly onReady: SupervisorOptions["onReady"]
  /** The SIGUSR1 line (only with `signals`). */
  readonly printStats?: SupervisorOptions["printStats"]
  readonly onStatsTick?: SupervisorOptions["onStatsTick"]
  readonly onStopping?: SupervisorOptions["onStopping"]
  readonly onStopped?: SupervisorOptions["onStopped"]
  /** Connections closed at once, at a second signal or at the end of the grace period. */
  readonly onCut?: SupervisorOptions["onCut"]
  /** SIGHUP: the configuration built again from the same sources, not yet judged (planReload applies it whole or refuses it). */
  readonly reload?: () => Effect.Effect<HctunnelConfig, { readonly message: string }>
  /**
   * The main thread's log format and level, which each applied reload updates in place, so the caller's own
   * lines (the start-up line, the stats line) follow them as the workers' lines do. Default: a fresh one.
   */
  readonly log?: LogSettings
}

/** The hooks setting as the workers import it: a URL as written, a path made absolute (against the working directory now). */
export const hooksUrl = (hooks: string): string => (/^[a-z][a-z0-9+.-]+:/i.test(hooks) ? hooks : pathToFileURL(resolvePath(hooks)).href)

/** Runs the proxy `config` describes until it is stopped (a signal, or the control's `stop`); see supervise(). */
export const launch = (config: HctunnelConfig, options: LaunchOptions): Effect.Effect<void, ListenError | DrainTimeout> => {
  // What runs now: the start-up configuration, then each one a reload applied.
  let running = config
  const log: LogSettings = options.log ?? { format: config.logFormat, level: config.logLevel }
  const reload = options.reload
  const replan =
    reload === undefined
      ? undefined
      : () =>
          reload().pipe(
            Effect.flatMap((next) => planReload(running, next)),
            Effect.map(({ plan, config: applied }) => {
              running = applied
              log.format = applied.logFormat
              log.level = applied.logLevel
              return plan
            }),
          )
  return supervise({
    init: {
      ...liveSettings(config),
      listen: config.listen,
      hosts: config.hosts,
      statsIntervalMs: config.statsIntervalMs,
      dnsServers: config.dnsServers,
      proxyProtocolFrom: config.proxyProtocolFrom,
      eventLoopDelay: config.admin !== undefined,
      connectionLimits: makeConnectionLimits(config.maxConnections, config.maxConnectionsPerClient, config.workers),
      ...(config.upstream === undefined ? {} : { upstream: config.upstream }),
      noUpstream: config.noUpstream,
      ...(config.hooks === undefined ? {} : { hooks: hooksUrl(config.hooks) }),
      hookTimeoutMs: config.hookTimeoutMs,
    },
    workers: config.workers,
    graceMs: config.graceMs,
    signals: options.signals,
    onReady: options.onReady,
    printStats: options.printStats ?? (() => Effect.void),
    ...(options.onStatsTick === undefined ? {} : { onStatsTick: options.onStatsTick }),
    ...(options.onStopping === undefined ? {} : { onStopping: options.onStopping }),
    ...(options.onStopped === undefined ? {} : { onStopped: options.onStopped }),
    ...(options.onCut === undefined ? {} : { onCut: options.onCut }),
    ...(replan === undefined ? {} : { reload: replan }),
    admin: config.admin === undefined ? undefined : { address: config.admin, allow: config.adminAllow, statsFigures },
  }).pipe(Effect.provide(loggerLayer(log)))
}
