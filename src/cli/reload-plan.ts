/**
 * What SIGHUP changes: the whole new configuration, or nothing.
 *
 * A reload must never apply part of a file: the settings of one file justify each other (`authFile` is
 * what lets a public listener go without `allow`), so applying some and not others can open the proxy.
 * So a file that changes a setting only a restart can apply is refused as a whole, and the configuration
 * that would run after the reload (which is then exactly the new one) is judged by the same safety rule
 * as a start-up (`checkSafety`).
 */
import * as Effect from "effect/Effect"
import { resolve as resolvePath } from "node:path"
import type { ReloadPlan } from "../runtime/supervisor.ts"
import { checkSafety, type HctunnelConfig } from "./config.ts"

/**
 * Settings that a running proxy cannot switch to (the sockets and threads exist already, or only the
 * start-up reads them), by flag name. Everything else takes effect on SIGHUP.
 */
export const restartOnly: ReadonlyArray<readonly [string, (c: HctunnelConfig) => unknown]> = [
  ["--listen/--port", (c) => c.listen],
  ["--workers", (c) => c.workers],
  ["--hosts", (c) => c.hosts],
  ["--dns-server", (c) => c.dnsServers],
  ["--stats-interval", (c) => c.statsIntervalMs],
  ["--admin", (c) => c.admin],
  ["--admin-allow", (c) => c.adminAllow],
  ["--proxy-protocol-from", (c) => c.proxyProtocolFrom],
  ["--max-connections", (c) => c.maxConnections],
  ["--max-connections-per-client", (c) => c.maxConnectionsPerClient],
  ["--hooks", (c) => c.hooks],
  ["--hook-timeout", (c) => c.hookTimeoutMs],
  ["--upstream", (c) => c.upstream],
  ["--no-upstream", (c) => c.noUpstream],
]

/** Why a reload changed nothing, in one sentence for the log. */
export interface ReloadRefused {
  readonly message: string
}

/** The settings a running worker switches to, from a configuration that passed the safety rule. */
export const liveSettings = (config: HctunnelConfig): ReloadPlan["settings"] => ({
  limits: config.limits,
  via: config.via,
  allow: config.allow,
  logFormat: config.logFormat,
  logLevel: config.logLevel,
  allowTo: config.allowTo,
  denyTo: config.denyTo,
  // Absolute: the workers read and watch it whatever their working directory. Present even when off, so
  // that a reload which removes it turns authentication off (and a restarted worker starts without it).
  authFile: config.authFile === undefined ? undefined : resolvePath(config.authFile),
})

/**
 * The reload from `running` to `next` (built again from the same sources, not yet judged by the safety
 * rule): the plan for the workers and the configuration that runs after it, or why nothing changes.
 */
export const planReload = (
  running: HctunnelConfig,
  next: HctunnelConfig,
): Effect.Effect<{ readonly plan: ReloadPlan; readonly config: HctunnelConfig }, ReloadRefused> => {
  const changed = restartOnly.filter(([, get]) => JSON.stringify(get(running)) !== JSON.stringify(get(next))).map(([name]) => name)
  if (changed.length > 0) {
    const names = changed.length === 1 ? changed[0] : `${changed.slice(0, -1).join(", ")} and ${changed.at(-1)}`
    return Effect.fail({
      message: `${names} changed, and only a restart applies ${changed.length === 1 ? "it" : "them"}: nothing was applied (restart hctunnel to use the new file, or undo that change and reload again)`,
    })
  }
  // Nothing restart-only differs, so what runs after the reload is `next` as a whole: judge it like a start-up.
  return checkSafety(next).pipe(
    Effect.map((config) => ({ config, plan: { settings: liveSettings(config), graceMs: config.graceMs } })),
    Effect.mapError((e) => ({ message: e.message })),
  )
}
