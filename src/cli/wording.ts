/**
 * What the `hctunnel` command says about the running proxy: the start-up line, the stats line, the
 * shutdown lines, and a listen failure or an overrun drain in words a person can act on.
 *
 * The supervisor (src/runtime/supervisor.ts) reports data (addresses, `StatsSnapshot`s, tagged errors
 * with a reason); this module turns them into text. It owns no state and does no IO: its hooks return
 * log effects, and the caller decides where lines go.
 */
import * as Effect from "effect/Effect"
import type { ListenAddress } from "../runtime/protocol.ts"
import type { StatsSnapshot } from "../runtime/observe/Stats.ts"
import type { DrainTimeout, ListenError, SupervisorOptions } from "../runtime/supervisor.ts"
import { START_FAILED } from "../runtime/protocol.ts"
import { formatListen } from "./parsers.ts"

/** The address to show in the "try: curl -x ..." hint: a wildcard address is reached through loopback. */
const reachable = (a: ListenAddress): string =>
  a.host === "0.0.0.0" ? `127.0.0.1:${a.port}` : a.host === "::" ? `[::1]:${a.port}` : formatListen(a)

export const startupLine = (version: string, addresses: ReadonlyArray<ListenAddress>, workers: number, admin?: ListenAddress): string => {
  const first = addresses[0]
  const hint = first === undefined ? "" : ` — try: curl -x http://${reachable(first)} http://example.com`
  const adminText = admin === undefined ? "" : `; admin endpoint on http://${formatListen(admin)}/metrics`
  return `hctunnel ${version} listening on ${addresses.map(formatListen).join(", ")} with ${workers} worker${workers === 1 ? "" : "s"}${adminText}${hint}`
}

/** A listen failure (of the proxy's listeners or of the admin endpoint) in words a person can act on. */
export const describeListenFailure = (error: ListenError): string => {
  const where = error.addresses.map(formatListen).join(", ")
  if (error.endpoint === "admin") {
    switch (error.reason) {
      case "EADDRINUSE":
        return `cannot serve the admin endpoint on ${where}: the address is already in use. Choose another port with --admin.`
      case "EACCES":
      case "EPERM":
        return `cannot serve the admin endpoint on ${where}: permission denied. Ports below 1024 need root; use a port such as 9090 with --admin.`
      case "EADDRNOTAVAIL":
        return `cannot serve the admin endpoint on ${where}: that address does not belong to this machine. Use 127.0.0.1, ::1 or one of this machine's addresses with --admin.`
      default:
        return `cannot serve the admin endpoint on ${where} (--admin): ${error.detail} (${error.reason})`
    }
  }
  switch (error.reason) {
    case "EADDRINUSE":
      return `cannot listen on ${where}: the address is already in use (is another hctunnel or proxy running?). Stop it, or choose another port with --port or --listen.`
    case "EACCES":
    case "EPERM":
      return `cannot listen on ${where}: permission denied. Ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port such as 8888.`
    case "EADDRNOTAVAIL":
      return `cannot listen on ${where}: that address does not belong to this machine. Use 127.0.0.1, 0.0.0.0, ::1, :: or one of this machine's addresses.`
    case START_FAILED:
      return `a worker could not start: ${error.detail}`
    case "EXITED":
      return `a worker stopped before it could listen on ${where}: ${error.detail}`
    default:
      return `cannot listen on ${where}: ${error.detail} (${error.reason})`
  }
}

export const describeDrainTimeout = (error: DrainTimeout): string =>
  error.afterSecondSignal
    ? `the workers did not close their connections within ${error.marginMs} ms of the second signal; they were stopped with them`
    : `the workers did not finish within the grace period of ${error.graceMs} ms plus ${error.marginMs} ms; they were stopped with their connections`

const connections = (n: number): string => `${n} connection${n === 1 ? "" : "s"}`

/** What the workers closed at the end of a shutdown (SupervisorOptions.onCut). */
export const describeCut = (cut: number, signal: boolean): string =>
  signal ? `second signal: closed ${connections(cut)} at once` : `grace period over: closed ${connections(cut)} still open`

const mib = (n: number): string =>
  n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)}MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)}KiB` : `${n}B`

export const formatUptime = (ms: number): string => {
  const s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  return d > 0 ? `${d}d${h}h${m}m` : h > 0 ? `${h}h${m}m${s % 60}s` : m > 0 ? `${m}m${s % 60}s` : `${s}s`
}

/** One line: `stats pid=... uptime=... cpu=...` */
export const formatStatsText = (s: StatsSnapshot): string =>
  `stats pid=${s.pid} uptime=${formatUptime(s.uptimeMs)} cpu=${((s.cpuUserMs + s.cpuSystemMs) / 1000).toFixed(2)}s` +
  ` (user ${(s.cpuUserMs / 1000).toFixed(2)}s sys ${(s.cpuSystemMs / 1000).toFixed(2)}s) rss=${mib(s.rssBytes)}` +
  ` workers=${s.workersRunning}/${s.workers} restarts=${s.restarts} live=${s.totals.connectionsLive}` +
  ` accepted=${s.totals.connectionsAccepted} requests=${s.totals.requests} tunnels=${s.totals.tunnels}` +
  ` from_clients=${mib(s.totals.bytesFromClients)} from_origins=${mib(s.totals.bytesFromOrigins)} errors=${s.totals.errors}` +
  ` denied=${s.totals.deniedSelf + s.totals.deniedRule + s.totals.deniedRange + s.totals.deniedPort}` +
  (s.totals.authOk + s.totals.authFailed === 0
    ? ""
    : ` auth_ok=${s.totals.authOk} auth_cached=${s.totals.authCached} auth_failed=${s.totals.authFailed} auth_rate_limited=${s.totals.authRateLimited} auth_verifications=${s.totals.authVerifications}`)

/** The stats line's figures as one flat JSON-able object (GET /stats, and the JSON stats line). */
export const statsFigures = (s: StatsSnapshot): Record<string, number> => {
  const { totals, ...process } = s
  return { ...process, ...totals }
}

/** The supervisor's lifecycle, in the log: the periodic stats (debug), the start and the end of a shutdown. */
export const lifecycleLog: Pick<SupervisorOptions, "onStatsTick" | "onStopping" | "onCut" | "onStopped"> = {
  onStatsTick: (s) => Effect.logDebug(formatStatsText(s)),
  onStopping: (graceMs) =>
    Effect.logInfo(`shutting down: letting live connections finish for up to ${graceMs} ms (a second signal closes them at once)`),
  onCut: (cut, signal) => Effect.logWarning(describeCut(cut, signal)),
  onStopped: (s) => Effect.logInfo(`stopped: ${formatStatsText(s)}`),
}
