/**
 * When the faults happen, in seconds from the start of the load, on 15 s cycles so that no two of them
 * have to be told apart: a reload at +0, the users file every other cycle at +5, a broken reload every
 * fourth cycle at +7.5, a worker ended at +10. The faults that change what many answers may be (DNS
 * silence, fd pressure, the worker ended) run one after another on a track of their own, never
 * overlapping: each one's window then explains only its own effects. One round of them per 300 s, at
 * least one per run, and at least one worker ended even if the load has just stopped.
 */
import type { Faults } from "./Faults.ts"

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export interface Timeline {
  /** The faults under way or done (the caller waits for them before the settle). */
  readonly running: Array<Promise<void>>
  /** Cancels the faults not started yet. */
  readonly cancel: () => void
}

export const scheduleFaults = (faults: Faults, seconds: number, loadStart: number, stopping: () => boolean): Timeline => {
  const S = seconds
  const timeline: Array<readonly [number, () => Promise<void>]> = []
  for (let t = 15, k = 0; t < S - 5; t += 15, k++) {
    timeline.push([t, () => faults.reload()])
    if (k % 4 === 1 && t + 7.5 < S - 5) timeline.push([t + 7.5, () => faults.brokenReload()])
  }
  for (let t = 20; t < S - 5; t += 30) timeline.push([t, () => faults.changeUsers()])
  const phase = S >= 150 ? 20_000 : 10_000
  const rounds = Math.max(1, Math.floor(S / 300))
  const gap = S >= 150 ? 5000 : 3000
  const sinceStart = (): number => performance.now() - loadStart
  const exclusive = async (): Promise<void> => {
    for (let round = 0; round < rounds && !stopping(); round++) {
      await sleep(Math.max(0, ((round + (S >= 150 ? 0.2 : 0.1)) * S * 1000) / rounds - sinceStart()))
      await faults.dnsSilence(phase)
      await sleep(gap)
      if (!stopping()) await faults.fdPressure(phase)
      await sleep(gap)
      // The next +10 s of a 15 s cycle: 10 s after a reload, 5 s before the next.
      await sleep((((25_000 - (sinceStart() % 15_000)) % 15_000) + 15_000) % 15_000)
      if (!stopping() || faults.killed === 0) await faults.killWorker()
    }
  }
  const running: Array<Promise<void>> = []
  const timers = timeline.map(([t, f]) => setTimeout(() => running.push(f()), t * 1000 - sinceStart()))
  running.push(exclusive())
  return { running, cancel: () => timers.forEach(clearTimeout) }
}
