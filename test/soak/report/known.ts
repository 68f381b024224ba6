/**
 * Product bugs the soak has found and that are not fixed yet. A deviation that matches one is counted as
 * `known` (listed in the summary and the JSON, not failing the run) instead of `unexpected`, so the soak in
 * `npm test` stays a guard against new problems while a found one waits for its fix. Each entry names the
 * finding in docs/reliability.md; remove the entry with the fix (and the regression test it comes with).
 */
export interface Known {
  readonly id: string
  readonly applies: (kind: string, detail: string) => boolean
}

export const KNOWN: ReadonlyArray<Known> = []
