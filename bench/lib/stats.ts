/** Small statistics over round results. */

export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly samples: ReadonlyArray<number>
}

export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export const summarize = (xs: ReadonlyArray<number>): Summary => ({
  median: median(xs),
  min: xs.length === 0 ? NaN : Math.min(...xs),
  max: xs.length === 0 ? NaN : Math.max(...xs),
  samples: xs,
})

/** Human number: 3 significant digits, thousands grouped. */
export const fmt = (x: number | undefined, digits = 3): string => {
  if (x === undefined || !Number.isFinite(x)) return "-"
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US")
  return Number(x.toPrecision(digits)).toString()
}
