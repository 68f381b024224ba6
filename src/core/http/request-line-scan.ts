/**
 * RequestLineScan: refuses an endless request line early (414) without waiting for the head to end,
 * and decides on the bytes of the line only, so the answer never depends on how they were split.
 *
 * Owns: the early 414. It mirrors request-head.ts: a line longer than maxRequestLine is a 414 when its
 * target is longer than maxRequestLine - REQUEST_LINE_OVERHEAD (the target made it long); the scan says
 * so as soon as both hold, whatever chunk the bytes came in (the LF may be in the same chunk). Any other
 * over-long line is left to the parser (400) or, past maxHeadBytes, to the head reader (431).
 *
 * Rules: empty lines before the request line (LF, CR LF) are skipped like HeadReader does; a CR just
 * before the LF is the terminator, not a byte of the line. Each byte of the line is examined once.
 */
import { REQUEST_LINE_OVERHEAD } from "./request-head.ts"
import { CR, LF, SP } from "./syntax.ts"

type Phase = "preamble" | "preambleCR" | "line" | "done"

export class RequestLineScan {
  readonly #maxRequestLine: number
  readonly #maxHeadBytes: number
  #phase: Phase = "preamble"
  /** Bytes of the line so far, a CR not yet known to be part of the line excluded. */
  #length = 0
  #pendingCR = false
  #spaces = 0
  /** Bytes between the first and the second SP (or after the first SP, while there is no second). */
  #target = 0

  constructor(maxRequestLine: number, maxHeadBytes: number) {
    this.#maxRequestLine = maxRequestLine
    this.#maxHeadBytes = maxHeadBytes
  }

  /** Scan the next bytes of the head; true when the request line is too long because of its target (414). */
  push(chunk: Uint8Array): boolean {
    for (let i = 0; i < chunk.length && this.#phase !== "done"; i++) {
      const b = chunk[i] as number
      if (this.#phase === "preamble") {
        if (b === LF) continue
        if (b === CR) {
          this.#phase = "preambleCR"
          continue
        }
        this.#phase = "line"
      } else if (this.#phase === "preambleCR") {
        if (b === LF) {
          this.#phase = "preamble"
          continue
        }
        // The CR was not part of an empty line: it opens the line (HeadReader keeps it too).
        this.#phase = "line"
        this.#pendingCR = true
      }
      if (b === LF) {
        this.#phase = "done"
        return false
      }
      if (this.#pendingCR) {
        this.#pendingCR = false
        if (this.#count(CR)) return true
      }
      if (b === CR) {
        this.#pendingCR = true
        continue
      }
      if (this.#count(b)) return true
    }
    return false
  }

  #count(b: number): boolean {
    this.#length++
    if (b === SP) this.#spaces++
    else if (this.#spaces === 1) this.#target++
    // Past the head limit the head reader refuses first (431), in one chunk or in many: stop looking.
    if (this.#length > this.#maxHeadBytes) {
      this.#phase = "done"
      return false
    }
    return this.#length > this.#maxRequestLine && this.#target > this.#maxRequestLine - REQUEST_LINE_OVERHEAD
  }
}
