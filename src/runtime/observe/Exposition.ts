/**
 * Exposition: writes metric families in the Prometheus text format (version 0.0.4).
 *
 * Owns the syntax only: `# HELP` / `# TYPE` lines, label escaping, number formatting, and the
 * `_bucket{le=...}` / `_sum` / `_count` series of a histogram from per-bucket counts. It never decides
 * what is measured or how figures are summed (Metrics.ts and the supervisor do), and it keeps no state
 * between scrapes.
 *
 * Why not effect's `PrometheusMetrics.format`: it formats the metrics registered in Effect's registry,
 * whose histograms record one observation at a time. The figures here arrive already aggregated from the
 * workers (counters as totals, histograms as bucket counts), so they have nothing to register; and that
 * module also brings Effect's HTTP router into the main thread's bundle.
 */

export type Labels = Readonly<Record<string, string>>

export interface HistogramSeries {
  readonly labels?: Labels
  /** Observations per bucket, NOT cumulative: `counts[i]` is the number in (bounds[i-1], bounds[i]]; the last is above every bound (+Inf). */
  readonly counts: ArrayLike<number>
  readonly sum: number
}

const escapeLabel = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatLabels = (labels: Labels | undefined, extra?: readonly [string, string]): string => {
  const parts: Array<string> = []
  if (labels !== undefined) for (const k in labels) parts.push(`${k}="${escapeLabel(labels[k] as string)}"`)
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

/** A sample value as Prometheus reads it (Go's ParseFloat): JavaScript's own text, but +Inf/-Inf/NaN spelled its way. */
export const formatValue = (v: number): string => (Number.isNaN(v) ? "NaN" : v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v))

/** A bucket bound as an `le` label value. */
const formatBound = (b: number): string => (b === Infinity ? "+Inf" : String(b))

export class Exposition {
  private readonly lines: Array<string> = []

  private header(name: string, help: string, type: "counter" | "gauge" | "histogram"): void {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
  }

  counter(name: string, help: string, samples: ReadonlyArray<readonly [Labels | undefined, number]>): this {
    this.header(name, help, "counter")
    for (const [labels, v] of samples) this.lines.push(`${name}${formatLabels(labels)} ${formatValue(v)}`)
    return this
  }

  gauge(name: string, help: string, samples: ReadonlyArray<readonly [Labels | undefined, number]>): this {
    this.header(name, help, "gauge")
    for (const [labels, v] of samples) this.lines.push(`${name}${formatLabels(labels)} ${formatValue(v)}`)
    return this
  }

  /** `bounds` are the upper bounds, ascending, without +Inf (added here). */
  histogram(name: string, help: string, bounds: ReadonlyArray<number>, series: ReadonlyArray<HistogramSeries>): this {
    this.header(name, help, "histogram")
    for (const s of series) {
      let cumulative = 0
      for (let i = 0; i <= bounds.length; i++) {
        cumulative += s.counts[i] ?? 0
        this.lines.push(`${name}_bucket${formatLabels(s.labels, ["le", formatBound(bounds[i] ?? Infinity)])} ${formatValue(cumulative)}`)
      }
      this.lines.push(`${name}_sum${formatLabels(s.labels)} ${formatValue(s.sum)}`)
      this.lines.push(`${name}_count${formatLabels(s.labels)} ${formatValue(cumulative)}`)
    }
    return this
  }

  text(): string {
    return this.lines.length === 0 ? "" : this.lines.join("\n") + "\n"
  }
}
