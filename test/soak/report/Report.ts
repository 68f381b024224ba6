/**
 * What the soak prints: a progress line every 10 s, the final summary, and the JSON report whose keys the
 * issue fixes (seconds, requests, tunnels, bytesVerified, corrupted, unexpected, faults, reloads, fdsStart,
 * fdsEnd, liveEnd, rssStartMb, rssEndMb, rssSlopeMbPerMin), with a few more.
 */
import type { Ledger } from "./Ledger.ts"

export interface Sample {
  /** Seconds since the soak began. */
  readonly t: number
  readonly rssMb: number
  readonly fds: number
}

/** Least-squares slope of RSS (MB per minute) over the samples taken after `fromSeconds`. */
export const rssSlope = (samples: ReadonlyArray<Sample>, fromSeconds: number): number => {
  const s = samples.filter((x) => x.t >= fromSeconds)
  if (s.length < 3) return 0
  const mt = s.reduce((a, x) => a + x.t, 0) / s.length
  const mr = s.reduce((a, x) => a + x.rssMb, 0) / s.length
  let num = 0
  let den = 0
  for (const x of s) {
    num += (x.t - mt) * (x.rssMb - mr)
    den += (x.t - mt) ** 2
  }
  return den === 0 ? 0 : (num / den) * 60
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`

export const progressLine = (
  ledger: Ledger,
  last: { ops: number; t: number },
  sample: Sample | undefined,
  live: number | undefined,
): string => {
  const t = ledger.elapsed() / 1000
  const ops = ledger.requests + ledger.tunnels
  const rate = (ops - last.ops) / Math.max(0.001, t - last.t)
  last.ops = ops
  last.t = t
  const kinds = [...ledger.kinds.entries()].filter(([, v]) => v.unexpected + v.corrupted + v.excused > 0)
  const errors =
    kinds.length === 0
      ? "none"
      : kinds.map(([k, v]) => `${k} ${v.unexpected + v.corrupted}${v.excused > 0 ? `(+${v.excused} excused)` : ""}`).join(", ")
  return (
    `[${t.toFixed(0).padStart(4)} s] ${rate.toFixed(0)} ops/s, requests ${ledger.requests}, tunnels ${ledger.tunnels}, verified ${mb(ledger.bytesVerified)}` +
    ` | corrupted ${ledger.corrupted}, unexpected ${ledger.unexpected}, excused ${ledger.excused} | errors by kind: ${errors}` +
    ` | rss ${sample?.rssMb.toFixed(1) ?? "?"} MB, fds ${sample?.fds ?? "?"}, live ${live ?? "?"} | faults ${ledger.faults}, reloads ${ledger.reloads}`
  )
}

export interface Final {
  readonly seed: number
  /** The command that runs the same choices again. */
  readonly replay: string
  readonly seconds: number
  readonly fdsStart: number
  readonly fdsEnd: number
  readonly fdSlack: number
  readonly liveEnd: number
  readonly originSocketsEnd: number
  readonly rssStartMb: number
  readonly rssEndMb: number
  readonly rssSlopeMbPerMin: number
  readonly rssSlopeFromSeconds: number
  readonly rssSlopeLimit: number | undefined
  readonly fdPeak: number
  readonly idleClients: number
  readonly openFilesLimit: number
  readonly restarts: number
  /** CPU time of the proxy process (all threads) over the whole run, seconds. */
  readonly proxyCpuSeconds: number
  readonly closedOnReuse: number
  readonly dnsQuestions: number
  readonly proxyExit: string
  readonly leaks: ReadonlyArray<string>
  readonly users: string
  readonly samples: ReadonlyArray<Sample>
}

export const jsonReport = (ledger: Ledger, f: Final): Record<string, unknown> => ({
  seconds: f.seconds,
  requests: ledger.requests,
  tunnels: ledger.tunnels,
  bytesVerified: ledger.bytesVerified,
  corrupted: ledger.corrupted,
  unexpected: ledger.unexpected,
  faults: ledger.faults,
  reloads: ledger.reloads,
  fdsStart: f.fdsStart,
  fdsEnd: f.fdsEnd,
  liveEnd: f.liveEnd,
  rssStartMb: round(f.rssStartMb),
  rssEndMb: round(f.rssEndMb),
  rssSlopeMbPerMin: round(f.rssSlopeMbPerMin),
  // More than the issue asks:
  seed: f.seed,
  clean: isClean(ledger, f),
  excused: ledger.excused,
  known: ledger.known,
  rejectedReloads: ledger.rejectedReloads,
  fdSlack: f.fdSlack,
  fdPeak: f.fdPeak,
  idleClients: f.idleClients,
  openFilesLimit: f.openFilesLimit,
  originSocketsEnd: f.originSocketsEnd,
  workerRestarts: f.restarts,
  proxyCpuSeconds: f.proxyCpuSeconds,
  originClosesOnReuse: f.closedOnReuse,
  dnsQuestions: f.dnsQuestions,
  dnsMisses: ledger.dnsMisses,
  proxyExit: f.proxyExit,
  leaks: f.leaks,
  users: f.users,
  kinds: Object.fromEntries(ledger.kinds),
  problems: ledger.problems.slice(0, 50).map((p) => ({ ...p, at: Math.round(p.at) })),
  events: ledger.events.map((e) => ({ ...e, at: Math.round(e.at) })),
  samples: f.samples,
})

const round = (x: number): number => Math.round(x * 100) / 100

export const isClean = (ledger: Ledger, f: Final): boolean => ledger.corrupted === 0 && ledger.unexpected === 0 && f.leaks.length === 0

export const summary = (ledger: Ledger, f: Final): string => {
  const lines = [
    "",
    `soak: ${isClean(ledger, f) ? "CLEAN" : "NOT CLEAN"} after ${f.seconds} s (seed ${f.seed})`,
    `  corrupted ${ledger.corrupted}, unexpected ${ledger.unexpected}` +
      (ledger.excused > 0 ? ` (excused: ${ledger.excused} connections lost while a worker was ended)` : "") +
      (ledger.known > 0 ? `; known product bugs seen ${ledger.known} times (report/known.ts)` : ""),
    `  requests ${ledger.requests}, tunnels ${ledger.tunnels}, verified ${mb(ledger.bytesVerified)}`,
    `  faults ${ledger.faults}: reloads ${ledger.reloads} applied, ${ledger.rejectedReloads} broken configs rejected; worker restarts ${f.restarts}; origin closes on reuse ${f.closedOnReuse}`,
    `  fd phase: ${f.idleClients} idle clients, proxy fds peaked at ${f.fdPeak} of ${f.openFilesLimit}; DNS: ${f.dnsQuestions} questions, ${ledger.dnsMisses} lookups of known names answered 502 while the server was silent`,
    `  fds ${f.fdsStart} at start, ${f.fdsEnd} at the end (slack ±${f.fdSlack}); live connections at the end ${f.liveEnd}; origin sockets still open ${f.originSocketsEnd}`,
    `  rss ${f.rssStartMb.toFixed(1)} MB at start, ${f.rssEndMb.toFixed(1)} MB at the end; slope after ${f.rssSlopeFromSeconds} s: ${f.rssSlopeMbPerMin.toFixed(2)} MB/min` +
      (f.rssSlopeLimit === undefined ? " (not judged: run too short)" : ` (limit ${f.rssSlopeLimit})`),
    `  proxy exit: ${f.proxyExit}; proxy CPU ${f.proxyCpuSeconds.toFixed(1)} s; users file by ${f.users}`,
  ]
  if (f.leaks.length > 0) lines.push(`  leaks: ${f.leaks.join("; ")}`)
  const bad = [...ledger.kinds.entries()].filter(([, v]) => v.unexpected + v.corrupted + v.excused + v.known > 0)
  if (bad.length > 0)
    lines.push(
      `  by kind: ${bad.map(([k, v]) => `${k}: ${v.corrupted} corrupted, ${v.unexpected} unexpected, ${v.excused} excused, ${v.known} known`).join("; ")}`,
    )
  for (const p of ledger.problems.slice(0, 20)) lines.push(`  ${(p.at / 1000).toFixed(1)} s ${p.verdict} ${p.kind}: ${p.detail}`)
  if (!isClean(ledger, f)) lines.push(`  replay: ${f.replay}`)
  return lines.join("\n")
}
