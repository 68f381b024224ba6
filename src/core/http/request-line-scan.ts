/**
 * RequestLineScan: judges a request line byte by byte as it arrives, and refuses it at the first byte
 * that no valid request line could contain, without waiting for the head to end. It decides on the
 * bytes of the line only, so the answer, and the byte at which it comes, never depend on how the bytes
 * were split.
 *
 * Owns: the early refusals of a request line. It mirrors request-head.ts, which parses the complete
 * head: every byte this scan lets through is one the parser accepts in the same place, and every byte it
 * refuses is one the parser would refuse with the same status, so the early answer is the answer.
 * Never: decides anything after the line's LF (fields are the parser's), or a 505 (a well-formed
 * `HTTP/d.d` is only judged once the head is complete, as before).
 *
 * Rules (RFC 9112 §3; the statuses of docs/design.md §6.1):
 * - Empty lines (LF, CR LF) before the request line are skipped like HeadReader does; a CR there that is
 *   not followed by LF opens the line (and is refused as a method byte at the byte after it).
 * - method: tchar until the first SP; an empty method, or any other byte (a CR, a LF, a control, 0x80+):
 *   400 at that byte. A first byte 0x16 is a TLS handshake record: 400 with a body that says this is a
 *   plain HTTP proxy.
 * - request-target: VCHAR (isTargetChar) until the second SP; SP right after the first (a double space),
 *   a control byte, CR, LF, DEL or 0x80+: 400 at that byte.
 * - HTTP-version: a prefix of `HTTP/` DIGIT "." DIGIT, then CR LF or LF: any other byte is 400 at once.
 * - Length: a line longer than maxRequestLine is 414 as soon as its target is longer than
 *   maxRequestLine - REQUEST_LINE_OVERHEAD (the target made it long), else 400 as soon as the target has
 *   ended (second SP) or the line has (LF). Past maxHeadBytes the scan stops: HeadReader refuses first (431).
 * Each byte of the line is examined once, with table lookups only; runs of method and target bytes are
 * scanned in a tight loop and counted at once.
 */
import { REQUEST_LINE_OVERHEAD } from "./request-head.ts"
import { CR, isDigit, isTargetChar, isTchar, LF, SP } from "./syntax.ts"
import type { Rejection } from "./types.ts"

const PREAMBLE = 0
const PREAMBLE_CR = 1
const METHOD = 2
const TARGET = 3
const VERSION = 4
const VERSION_CR = 5 // CR after the version: LF must follow
const DONE = 6

/** The first byte of a TLS record carrying a handshake (ClientHello): a client that speaks TLS to us. */
const TLS_HANDSHAKE = 0x16

/** `HTTP/` DIGIT "." DIGIT: the byte expected at each position of the version (-1: a DIGIT). */
const VERSION_SHAPE = [0x48, 0x54, 0x54, 0x50, 0x2f, -1, 0x2e, -1]

export const TLS_TO_PLAIN_PROXY =
  "the client sent a TLS handshake, but this is a plain HTTP proxy: use http:// (not https://) in the proxy URL"

const hex = (b: number): string => `0x${b.toString(16).padStart(2, "0")}`

export class RequestLineScan {
  readonly #maxRequestLine: number
  readonly #maxHeadBytes: number
  #phase = PREAMBLE
  /** Bytes of the line so far, a CR not yet known to be part of the line excluded. */
  #length = 0
  #pendingCR = false
  /** Bytes of the target so far, and bytes of the version so far. */
  #target = 0
  #version = 0
  /** Every byte pushed so far, preamble included: where a refusal happened. */
  #seen = 0

  constructor(maxRequestLine: number, maxHeadBytes: number) {
    this.#maxRequestLine = maxRequestLine
    this.#maxHeadBytes = maxHeadBytes
  }

  /**
   * Bytes pushed up to and including the byte that decided a refusal (all bytes pushed when there was
   * none): the same number whatever the segmentation.
   */
  get seen(): number {
    return this.#seen
  }

  /** True once the request line ended (its LF was seen) without a refusal. */
  get lineComplete(): boolean {
    return this.#phase === DONE && this.#length > 0
  }

  /** Scan the next bytes of the head; a Rejection when the line cannot become a valid request line. */
  push(chunk: Uint8Array): Rejection | undefined {
    const n = chunk.length
    let i = 0
    while (i < n) {
      const phase = this.#phase
      if (phase === DONE) {
        this.#seen += n - i
        return undefined
      }
      if (phase === METHOD || phase === TARGET) {
        // The bulk of a line: a run of method or target bytes, one table lookup each, counted at once.
        const table = phase === METHOD ? isTchar : isTargetChar
        let j = i
        while (j < n && table[chunk[j] as number] === 1) j++
        if (j > i) {
          const verdict = this.#run(j - i, phase === TARGET)
          if (verdict !== undefined) return verdict
          i = j
          continue
        }
      }
      this.#seen++
      const b = chunk[i++] as number
      if (phase === PREAMBLE) {
        if (b === LF) continue
        if (b === CR) {
          this.#phase = PREAMBLE_CR
          continue
        }
        this.#phase = METHOD
      } else if (phase === PREAMBLE_CR) {
        if (b === LF) {
          this.#phase = PREAMBLE
          continue
        }
        // The CR was not part of an empty line: it opens the line, and no method starts with CR.
        return this.#fail(400, "bare CR before the request line")
      }
      const verdict = this.#byte(b)
      if (verdict !== undefined) return verdict
    }
    return undefined
  }

  /**
   * `k` more valid bytes of the method or (`inTarget`) the target: the same limits as #count byte by
   * byte, decided at the exact byte where they are passed (the head limit first, as #count checks it).
   */
  #run(k: number, inTarget: boolean): Rejection | undefined {
    const length = this.#length
    const target = this.#target
    this.#length = length + k
    if (inTarget) this.#target = target + k
    const headLimitAt = this.#maxHeadBytes + 1 - length
    const tooLongAt = inTarget
      ? Math.max(1, this.#maxRequestLine + 1 - length, this.#maxRequestLine - REQUEST_LINE_OVERHEAD + 1 - target)
      : Number.MAX_SAFE_INTEGER
    if (headLimitAt <= k && headLimitAt <= tooLongAt) {
      // Past the head limit the head reader refuses first (431): stop looking.
      this.#phase = DONE
      this.#length = 0
      this.#seen += k
      return undefined
    }
    if (tooLongAt <= k) {
      this.#seen += tooLongAt
      return this.#fail(414, `the request-target is longer than ${this.#maxRequestLine - REQUEST_LINE_OVERHEAD} bytes`)
    }
    this.#seen += k
    return undefined
  }

  #byte(b: number): Rejection | undefined {
    switch (this.#phase) {
      case METHOD:
        if (b === SP) {
          if (this.#length === 0) return this.#fail(400, "malformed request line (empty method)")
          this.#phase = TARGET
        } else if (isTchar[b] !== 1) {
          if (this.#length === 0 && b === TLS_HANDSHAKE) return this.#fail(400, TLS_TO_PLAIN_PROXY)
          return this.#fail(400, this.#describe(b, "the method"))
        }
        return this.#count()
      case TARGET:
        if (b === SP) {
          if (this.#target === 0) return this.#fail(400, "malformed request line (empty request-target or double space)")
          this.#phase = VERSION
          const long = this.#count()
          if (long !== undefined) return long
          // The target is complete and did not make the line long: an over-long line is a 400 now.
          if (this.#length > this.#maxRequestLine) return this.#tooLong()
          return undefined
        }
        if (isTargetChar[b] !== 1) return this.#fail(400, this.#describe(b, "the request-target"))
        this.#target++
        return this.#count()
      case VERSION: {
        if (this.#version === VERSION_SHAPE.length) {
          if (b === CR) {
            this.#phase = VERSION_CR
            return undefined
          }
          if (b === LF) return this.#lineEnd()
          return this.#fail(400, "malformed HTTP version in the request line")
        }
        const expected = VERSION_SHAPE[this.#version] as number
        if (expected === -1 ? isDigit[b] !== 1 : b !== expected) {
          if (b === CR || b === LF || (b !== SP && isTargetChar[b] !== 1)) return this.#fail(400, this.#describe(b, "the request line"))
          return this.#fail(400, "malformed HTTP version in the request line")
        }
        this.#version++
        return this.#count()
      }
      default: // VERSION_CR
        if (b !== LF) return this.#fail(400, "bare CR in the request line")
        return this.#lineEnd()
    }
  }

  #lineEnd(): Rejection | undefined {
    this.#phase = DONE
    if (this.#length > this.#maxRequestLine) return this.#tooLong()
    return undefined
  }

  #tooLong(): Rejection {
    return this.#fail(400, `the request line is longer than ${this.#maxRequestLine} bytes`)
  }

  #describe(b: number, where: string): string {
    if (b === CR) return `bare CR in ${where}`
    if (b === LF) return "malformed request line (it ends before its HTTP version)"
    return `invalid character ${hex(b)} in ${where}`
  }

  #fail(status: Rejection["status"], reason: string): Rejection {
    this.#phase = DONE
    this.#length = 0
    return { status, reason }
  }

  /** Count one byte of the line; the early 414 when the target made the line too long. */
  #count(): Rejection | undefined {
    this.#length++
    // Past the head limit the head reader refuses first (431), in one chunk or in many: stop looking.
    if (this.#length > this.#maxHeadBytes) {
      this.#phase = DONE
      this.#length = 0
      return undefined
    }
    if (this.#length > this.#maxRequestLine && this.#target > this.#maxRequestLine - REQUEST_LINE_OVERHEAD) {
      return this.#fail(414, `the request-target is longer than ${this.#maxRequestLine - REQUEST_LINE_OVERHEAD} bytes`)
    }
    return undefined
  }
}
