/**
 * What SIGHUP changes: the settings workers switch to, and the changed settings that only a restart
 * can apply (the sockets and threads exist already, or only the start-up reads them).
 */
import type { ReloadPlan } from "../runtime/supervisor.ts"
import type { HctunnelConfig } from "./config.ts"

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
  ["--auth-file", (c) => c.authFile],
  ["--hooks", (c) => c.hooks],
  ["--hook-timeout", (c) => c.hookTimeoutMs],
  ["--upstream", (c) => c.upstream],
  ["--no-upstream", (c) => c.noUpstream],
]

/** What SIGHUP does: build the configuration again from the same sources, and say what it changes. */
export const reloadPlan = (running: HctunnelConfig, next: HctunnelConfig): ReloadPlan => ({
  settings: {
    limits: next.limits,
    via: next.via,
    allow: next.allow,
    logFormat: next.logFormat,
    logLevel: next.logLevel,
    allowTo: next.allowTo,
    denyTo: next.denyTo,
  },
  graceMs: next.graceMs,
  needsRestart: restartOnly.filter(([, get]) => JSON.stringify(get(running)) !== JSON.stringify(get(next))).map(([name]) => name),
})
