/**
 * FailureLimit: how many password attempts one client may start per window, whatever they turn out to be.
 *
 * An attempt counts as a failure from the moment it STARTS and is given back only once it proved right
 * (or could not be judged at all). Counting when bcrypt has finished, as before issue 17, let a client
 * start forty guesses at once and have all forty checked before the first failure was counted; counting at
 * the start bounds the guesses checked per window to the limit, however many are sent at once.
 *
 * Keyed by whatever the caller passes: the client's rate key (access/RateKey.ts: an IPv4 address, an IPv6
 * /64). A fixed window per key: the first attempt opens it, and it ends FAILURE_WINDOW_MS later. At most
 * FAILURE_KEYS_MAX keys are tracked (the oldest dropped first), so memory stays bounded whoever knocks.
 *
 * Used twice: by each worker's Authenticator (so a client over the limit is refused without a message to
 * the verifier) and by the FairVerifier in front of the process's one verifier thread (so the limit holds
 * for the whole process, however the client's connections are spread over the workers). Plain data and
 * a clock; no IO.
 */

/** Attempts one client may start per window (the ones that proved right are given back). */
export const FAILURE_LIMIT = 10
export const FAILURE_WINDOW_MS = 60_000
/** Clients tracked (oldest dropped first). */
export const FAILURE_KEYS_MAX = 10_000

interface Window {
  count: number
  readonly start: number
}

export class FailureLimit {
  private readonly windows = new Map<string, Window>()
  private readonly now: () => number
  private readonly limit: number
  private readonly windowMs: number

  constructor(now: () => number, limit = FAILURE_LIMIT, windowMs = FAILURE_WINDOW_MS) {
    this.now = now
    this.limit = limit
    this.windowMs = windowMs
  }

  /** Whether `key` has used up its attempts for now (nothing is counted). */
  reached(key: string): boolean {
    const w = this.current(key)
    return w !== undefined && w.count >= this.limit
  }

  /** Start an attempt of `key`: counted and true, or false (nothing counted) when the limit is reached. */
  take(key: string): boolean {
    const w = this.current(key)
    if (w !== undefined) {
      if (w.count >= this.limit) return false
      w.count++
      return true
    }
    if (this.windows.size >= FAILURE_KEYS_MAX) {
      const oldest = this.windows.keys().next()
      if (oldest.done !== true) this.windows.delete(oldest.value)
    }
    this.windows.set(key, { count: 1, start: this.now() })
    return true
  }

  /** An attempt of `key` proved right, or was not judged: it does not count. */
  giveBack(key: string): void {
    const w = this.windows.get(key)
    if (w !== undefined && w.count > 0) w.count--
  }

  /** The window of `key` if one is open now (an ended one is dropped). */
  private current(key: string): Window | undefined {
    const w = this.windows.get(key)
    if (w === undefined) return undefined
    if (this.now() >= w.start + this.windowMs) {
      this.windows.delete(key)
      return undefined
    }
    return w
  }
}
