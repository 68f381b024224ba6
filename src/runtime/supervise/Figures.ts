/**
 * Figures: the supervisor's counters. Each worker pushes `Stats` every statsInterval; the latest per
 * slot is kept, plus the totals of threads that ended, so the sums never go backwards when a worker is
 * replaced. The SIGUSR1 stats line, the periodic debug line, /stats and /metrics all read them here, and
 * the on-demand ones first ask every worker for fresh figures (`ReportStats`), waiting at most
 * FRESH_STATS_MS.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import { addMetricsInto, COUNTER_OFFSETS, type WorkerMetricsSnapshot, zeroMetrics } from "../observe/Metrics.ts"
import type { MetricsInput } from "../observe/MetricsText.ts"
import { addStats, type StatsSnapshot, type WorkerStats, zeroStats } from "../observe/Stats.ts"
import type { FromWorker } from "../protocol.ts"
import { isListening, type Roster, type Slot } from "./Roster.ts"

/** How long a scrape of /metrics or /stats waits for the workers' fresh counters before using the last ones. */
const FRESH_STATS_MS = 250

export class Figures {
  private readonly startedAt = Date.now()
  /** The counters of worker threads that ended, their live connections forgotten. */
  private retired: WorkerStats = zeroStats
  /** The counters and histograms of worker threads that ended (so /metrics never goes backwards). */
  private readonly retiredMetrics = zeroMetrics()

  private readonly roster: Roster

  constructor(roster: Roster) {
    this.roster = roster
  }

  /** A worker's `Stats` message: its latest figures, and wakes the scrapes waiting for them. */
  record(slot: Slot, msg: Extract<FromWorker, { _tag: "Stats" }>): void {
    slot.stats = msg.stats
    if (msg.metrics !== undefined) slot.metrics = msg.metrics
    for (const wake of slot.statsWaiters.splice(0)) wake()
  }

  /** A slot's thread is gone: keep what it counted, forget its live connections. */
  retire(slot: Slot): void {
    this.retired = addStats(this.retired, { ...slot.stats, connectionsLive: 0 })
    slot.stats = zeroStats
    if (slot.metrics !== undefined) {
      addMetricsInto(this.retiredMetrics, slot.metrics)
      // Its tunnels ended with it: counted as closed, so that opened = closed + open stays monotonic.
      const closedAt = COUNTER_OFFSETS.tunnelsClosed
      this.retiredMetrics.counters[closedAt] = (this.retiredMetrics.counters[closedAt] as number) + slot.metrics.tunnelsOpen
      slot.metrics = undefined
    }
  }

  /** The whole process now: the stats line, /stats, and the final figures. */
  snapshot(): StatsSnapshot {
    const cpu = process.cpuUsage()
    const slots = this.roster.slots
    let totals = this.retired
    for (const s of slots) totals = addStats(totals, s.stats)
    return {
      pid: process.pid,
      uptimeMs: Date.now() - this.startedAt,
      cpuUserMs: Math.round(cpu.user / 1000),
      cpuSystemMs: Math.round(cpu.system / 1000),
      rssBytes: process.memoryUsage.rss(),
      workers: slots.length,
      workersRunning: slots.filter((s) => s.listening).length,
      restarts: this.roster.restarts,
      totals,
    }
  }

  /** What /metrics shows (observe/MetricsText.ts): every thread's counters summed, the running ones' own figures. */
  metricsInput(): MetricsInput {
    const totals = zeroMetrics()
    addMetricsInto(totals, this.retiredMetrics)
    let tunnelsOpen = 0
    const workers: Array<{ id: number; metrics: WorkerMetricsSnapshot }> = []
    for (const s of this.roster.slots) {
      if (s.metrics === undefined) continue
      addMetricsInto(totals, s.metrics)
      tunnelsOpen += s.metrics.tunnelsOpen
      if (s.listening) workers.push({ id: s.id, metrics: s.metrics })
    }
    return { stats: this.snapshot(), totals: { ...totals, tunnelsOpen }, workers }
  }

  /** Asks every listening worker for its counters; waits for the answers, at most `FRESH_STATS_MS`. */
  refresh(): Effect.Effect<void> {
    const roster = this.roster
    return Effect.gen(function* () {
      const answers: Array<Deferred.Deferred<void>> = []
      const waiting: Array<readonly [Slot, () => void]> = []
      for (const s of roster.slots) {
        if (!isListening(s)) continue
        const answered = Deferred.makeUnsafe<void>()
        const wake = () => Deferred.doneUnsafe(answered, Exit.void)
        s.statsWaiters.push(wake)
        waiting.push([s, wake])
        answers.push(answered)
        yield* s.handle.send({ _tag: "ReportStats" }).pipe(Effect.ignore)
      }
      yield* Effect.forEach(answers, Deferred.await, { discard: true }).pipe(Effect.timeoutOption(FRESH_STATS_MS))
      // A worker that did not answer in time keeps no waiter of ours (scrapes must not pile up on a stuck one).
      for (const [s, wake] of waiting) {
        const i = s.statsWaiters.indexOf(wake)
        if (i >= 0) s.statsWaiters.splice(i, 1)
      }
    })
  }
}

/** SIGUSR1: fresh figures, printed as the stats line. */
export const printStats = (figures: Figures, print: (stats: StatsSnapshot) => Effect.Effect<void>): Effect.Effect<void> =>
  Effect.gen(function* () {
    yield* figures.refresh()
    yield* print(figures.snapshot())
  })

/** Every `intervalMs`, the current figures to `onTick` (the CLI logs them at debug level), until the scope closes. */
export const tickStats = (
  figures: Figures,
  intervalMs: number,
  onTick: (stats: StatsSnapshot) => Effect.Effect<void>,
  scope: Scope.Scope,
): Effect.Effect<void> =>
  Effect.suspend(() => onTick(figures.snapshot())).pipe(Effect.delay(intervalMs), Effect.forever, Effect.forkIn(scope), Effect.asVoid)
