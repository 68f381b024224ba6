/**
 * HeadReader: finds the end of a message head in a byte stream, whatever the segmentation.
 *
 * Owns: where a head ends, and the bytes retained until it does (and, for the log of a head refused as
 * too large or too slow, its first line). Not the syntax of the lines inside (request-head.ts /
 * response-head.ts judge those, bare CRs included).
 *
 * Rules (RFC 9112 §2.2):
 * - The head ends at the first empty line. LF is the line terminator and a CR just before it is part of
 *   the terminator, so "\r\n\r\n", "\n\n", "\r\n\n" and "\n\r\n" all end a head.
 * - Empty lines (CRLF or LF) before the first line are skipped and neither retained nor counted.
 *   A CR there that is not followed by LF starts the head, so the parser sees (and rejects) the bare CR.
 * - `TooLarge` as soon as more than `maxHeadBytes` head bytes would be retained without a head end; a
 *   head of exactly `maxHeadBytes` bytes (final empty line included) is accepted. After TooLarge every
 *   push answers TooLarge until `reset()`.
 * - After `Head` the reader is idle again; `rest` (bytes after the head, maybe the next pipelined head
 *   or a body) is handed back, not retained.
 *
 * Performance: each byte is examined once (the scan state survives between pushes; no rescans), line
 * ends are found with the native `indexOf`, and when a head arrives in a single chunk `head` and `rest`
 * are views of that chunk: no copy. Bytes are copied only when a head spans several chunks.
 */

export type HeadReaderResult =
  | { readonly _tag: "NeedMore" }
  | { readonly _tag: "Head"; readonly head: Uint8Array; readonly rest: Uint8Array }
  | { readonly _tag: "TooLarge" }

const LF = 0x0a
const CR = 0x0d

const needMore: HeadReaderResult = { _tag: "NeedMore" }
const tooLarge: HeadReaderResult = { _tag: "TooLarge" }
const empty = new Uint8Array(0)

/** Where the scan is: before the first line, after a CR there, inside the head, or refused. */
type Phase = "preamble" | "preambleCR" | "head" | "tooLarge"

export class HeadReader {
  readonly #maxHeadBytes: number
  #phase: Phase = "preamble"
  /** Retained head bytes of earlier pushes, in buf[0, #length). Grown by doubling up to the limit. */
  #buf: Uint8Array = empty
  #length = 0
  /** Bytes of the current line seen so far (0 right after an LF), and whether its first byte is CR. */
  #lineBytes = 0
  #lineStartsWithCR = false
  /** The first line of a head refused as TooLarge, kept for the log (the rest is dropped). */
  #refusedFirstLine: Uint8Array | undefined = undefined

  constructor(maxHeadBytes: number) {
    this.#maxHeadBytes = maxHeadBytes
  }

  /** Bytes retained so far (0 when idle). */
  get buffered(): number {
    return this.#length
  }

  /** Forget everything, including a TooLarge verdict. */
  reset(): void {
    this.#phase = "preamble"
    this.#buf = empty
    this.#length = 0
    this.#lineBytes = 0
    this.#lineStartsWithCR = false
    this.#refusedFirstLine = undefined
  }

  /**
   * The first line of the head being read (without its line end), if it is complete: from the retained
   * bytes, or after TooLarge the one kept then. For logging what a refused head asked for; never parsed here.
   */
  firstLine(): Uint8Array | undefined {
    if (this.#phase === "tooLarge") return this.#refusedFirstLine
    return firstLineIn(this.#buf.subarray(0, this.#length), empty)
  }

  push(chunk: Uint8Array): HeadReaderResult {
    if (this.#phase === "tooLarge") return tooLarge
    let start = 0
    const n = chunk.length
    // Skip the empty lines before the head (rare: byte by byte is fine here).
    while (this.#phase !== "head") {
      if (start === n) return needMore
      const b = chunk[start]
      if (this.#phase === "preambleCR") {
        if (b === LF) {
          this.#phase = "preamble"
          start++
        } else {
          // The CR was not part of an empty line: it opens the head (and the parser will refuse it).
          this.#phase = "head"
          this.#append(Uint8Array.of(CR), 0, 1)
          this.#lineBytes = 1
          this.#lineStartsWithCR = true
        }
      } else if (b === LF) {
        start++
      } else if (b === CR) {
        this.#phase = "preambleCR"
        start++
      } else {
        this.#phase = "head"
      }
    }
    // Scan from `start`, one line end at a time. `i` is where the current line (or its remainder) begins.
    let i = start
    while (i < n) {
      if (this.#lineBytes === 0) this.#lineStartsWithCR = chunk[i] === CR
      const lf = chunk.indexOf(LF, i)
      const lineEnd = lf === -1 ? n : lf
      const lineBytes = this.#lineBytes + (lineEnd - i)
      if (lf === -1) {
        this.#lineBytes = lineBytes
        break
      }
      if (lineBytes === 0 || (lineBytes === 1 && this.#lineStartsWithCR)) {
        return this.#complete(chunk, start, lf + 1)
      }
      this.#lineBytes = 0
      i = lf + 1
      // A long head made of many short lines: stop as soon as the limit is passed, not at the chunk's end.
      if (this.#length + (i - start) > this.#maxHeadBytes) return this.#refuse(chunk, start)
    }
    if (this.#length + (n - start) > this.#maxHeadBytes) return this.#refuse(chunk, start)
    this.#append(chunk, start, n)
    return needMore
  }

  /** The head ends at chunk[end - 1]. */
  #complete(chunk: Uint8Array, start: number, end: number): HeadReaderResult {
    if (this.#length + (end - start) > this.#maxHeadBytes) return this.#refuse(chunk, start)
    let head: Uint8Array
    if (this.#length === 0) {
      head = chunk.subarray(start, end)
    } else {
      head = new Uint8Array(this.#length + (end - start))
      head.set(this.#buf.subarray(0, this.#length), 0)
      head.set(chunk.subarray(start, end), this.#length)
    }
    const rest = end === chunk.length ? empty : chunk.subarray(end)
    this.reset()
    return { _tag: "Head", head, rest }
  }

  #refuse(chunk: Uint8Array, start: number): HeadReaderResult {
    const line = firstLineIn(this.#buf.subarray(0, this.#length), chunk.subarray(start))
    this.reset()
    this.#phase = "tooLarge"
    this.#refusedFirstLine = line === undefined ? undefined : line.slice()
    return tooLarge
  }

  #append(chunk: Uint8Array, start: number, end: number): void {
    const needed = this.#length + (end - start)
    if (needed > this.#buf.length) {
      const grown = new Uint8Array(Math.min(Math.max(needed, this.#buf.length * 2, 256), Math.max(needed, this.#maxHeadBytes)))
      grown.set(this.#buf.subarray(0, this.#length), 0)
      this.#buf = grown
    }
    this.#buf.set(chunk.subarray(start, end), this.#length)
    this.#length = needed
  }
}

/** The first line of `retained` followed by `more`, without CR LF / LF; undefined if no LF is there. */
const firstLineIn = (retained: Uint8Array, more: Uint8Array): Uint8Array | undefined => {
  let line: Uint8Array
  const lf = retained.indexOf(LF)
  if (lf !== -1) {
    line = retained.subarray(0, lf)
  } else {
    const lf2 = more.indexOf(LF)
    if (lf2 === -1) return undefined
    line = new Uint8Array(retained.length + lf2)
    line.set(retained, 0)
    line.set(more.subarray(0, lf2), retained.length)
  }
  return line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line
}
