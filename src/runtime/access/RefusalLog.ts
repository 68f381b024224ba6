/**
 * RefusalLog: the warnings about clients refused because they are not in `allow`, bounded.
 *
 * Owns which refusals get a log line. A client outside the allow-list that reconnects in a loop (or many
 * such clients) must not turn the log into a flood, yet the first sign of each one must be seen at once.
 * Never: decides a refusal (Allow.ts does) or touches a socket.
 *
 * Rules, per window of `intervalMs` that opens at the first refusal after a quiet window:
 * - the first refusal of each address in the window is written at once (`refused client a:p: ...`);
 * - every later refusal in the window, and the refusals of addresses beyond `maxAddresses` distinct ones,
 *   are only counted; when the window closes, one line gives that count and the number of addresses;
 * - a window without any counted refusal closes silently; the next refusal opens a new window.
 * So each refused address costs at most one line per interval, plus one summary line per interval.
 */
import type { Timed } from "../timers/Deadlines.ts"

export interface RefusalLogOptions {
  /** Writes one warn line. */
  readonly write: (line: string) => void
  /** Arms the end of the window (the worker's Deadlines: `(entry, at) => deadlines.set(entry, at)`). */
  readonly arm: (entry: Timed, at: number) => void
  readonly intervalMs: number
  /** Distinct addresses with a line of their own per window (memory bound). */
  readonly maxAddresses?: number
}

export class RefusalLog implements Timed {
  deadlineIndex = -1
  deadlineAt = 0
  readonly #options: RefusalLogOptions
  readonly #maxAddresses: number
  /** Addresses written in the current window, with how many of their refusals were counted since. */
  #seen = new Map<string, number>()
  /** Refusals counted (not written) in the current window, and from how many addresses. */
  #counted = 0
  #countedAddresses = 0
  #open = false

  constructor(options: RefusalLogOptions) {
    this.#options = options
    this.#maxAddresses = options.maxAddresses ?? 1000
  }

  /** A client at `address:port` was refused at `now`. */
  refused(address: string, port: number, now: number): void {
    if (!this.#open) {
      this.#open = true
      this.#options.arm(this, now + this.#options.intervalMs)
    }
    const earlier = this.#seen.get(address)
    if (earlier !== undefined) {
      if (earlier === 0) this.#countedAddresses++
      this.#seen.set(address, earlier + 1)
      this.#counted++
      return
    }
    if (this.#seen.size >= this.#maxAddresses) {
      // Past the bound every new address is only counted (as one more address each time: an upper bound).
      this.#counted++
      this.#countedAddresses++
      return
    }
    this.#seen.set(address, 0)
    this.#options.write(`refused client ${address}:${port}: not in the allow-list`)
  }

  /** The window closes: write the count of the refusals that were not written, if any. */
  onDeadline(): void {
    if (this.#counted > 0) {
      const seconds = Math.round(this.#options.intervalMs / 100) / 10
      const from = this.#countedAddresses === 1 ? "1 address" : `${this.#countedAddresses} addresses`
      this.#options.write(
        `refused ${this.#counted} more connection${this.#counted === 1 ? "" : "s"} from ${from} not in the allow-list in the last ${seconds}s`,
      )
    }
    this.#seen = new Map()
    this.#counted = 0
    this.#countedAddresses = 0
    this.#open = false
  }
}
