/**
 * body: body framers. Each one says how many of the bytes that follow a head belong to its body and
 * when the body is complete, whatever the segmentation, and what to forward of them: the bytes as
 * received, without a copy, except where chunked framing is rewritten (below).
 *
 * Owns: where a body ends (RFC 9112 §6, §7.1), and the chunked framing that reaches the next hop.
 * Never: decodes or changes chunk data, or buffers more than one framing line.
 *
 * Rules:
 * - none: done at once, consumes nothing. length: consumes up to the remaining count.
 *   until-close: consumes everything, is never done; only the end of the stream ends it.
 * - chunked (RFC 9112 §7.1), as a byte-at-a-time state machine (chunk data is skipped in bulk):
 *     chunk-size   1*HEXDIG, at most Number.MAX_SAFE_INTEGER (2^53-1); empty or non-hex: error
 *     chunk-ext    by the grammar of RFC 9112 §7.1.1, validated as it streams:
 *                    *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-name a token, ext-val a
 *                    token or a quoted-string (qdtext / quoted-pair); an empty name or value, an
 *                    unterminated quote, bytes >= 0x80 or controls outside a quoted-string, and
 *                    whitespace before the line end are errors. The whole size line is bounded by
 *                    maxChunkLine.
 *     line end     CRLF only. A bare LF that we accepted and a strict origin refused (or the reverse)
 *                  would let the two disagree on where the body ends, which is request smuggling.
 *     chunk-data   then exactly CRLF after the data: anything else is an error
 *     last-chunk   size 0, then trailer field lines (same rules as head fields: token name, colon
 *                  without whitespace before it, no obs-fold, field-value bytes) up to an empty line;
 *                  the trailer section is bounded by maxTrailerBytes.
 * - What is forwarded of chunked framing:
 *     size lines   held until their CRLF is validated, so no byte of a malformed size line is ever
 *                  forwarded; then forwarded as the size digits as received and CRLF. Chunk
 *                  extensions (and the BWS before them) are dropped: no origin or client needs them,
 *                  and a field the next hop never sees cannot be read differently by it.
 *     trailers     each field line is held until its CRLF, then forwarded as received, or dropped when
 *                  its name is one RFC 9110 §6.5.1 forbids in trailers (isForbiddenTrailer).
 *     the rest     chunk data, the CRLF after it and the final empty line go as received.
 *   A held line that began in an earlier read is retained (copied: digits only for a size line),
 *   counted in `held`, and forwarded as one new piece once complete. The result is the same bytes
 *   whatever the segmentation.
 * - endOfStream(): true only if the stream may end here: until-close, or a body already complete.
 * - After an error the framer keeps answering that error.
 */
import { isForbiddenTrailer } from "./fields.ts"
import { COLON, CR, HTAB, isFieldValueChar, isHexDigit, isQdtext, isTchar, LF, SEMICOLON, SP } from "./syntax.ts"
import type { Framing } from "./types.ts"

/**
 * What a feed found. `consumed` input bytes belong to the body (with an `error`: the bytes before the
 * offending one). What to forward: `pieces` when given (the framing was rewritten), else the first
 * `forward` bytes of the input. Both are the same whatever the segmentation.
 */
export interface FeedResult {
  readonly consumed: number
  readonly done: boolean
  readonly forward: number
  readonly pieces: ReadonlyArray<Uint8Array> | undefined
  readonly error: string | undefined
}

export interface BodyFramer {
  /** Consume a prefix of `bytes` belonging to this body: how many bytes, what to forward, and whether the body is now complete. */
  feed(bytes: Uint8Array): FeedResult
  /** The peer ended its stream: true if that is a legal end of this body. */
  endOfStream(): boolean
  readonly done: boolean
  /** Bytes of an incomplete framing line retained (copied) from earlier reads. */
  readonly held: number
}

export interface ChunkLimits {
  /** Longest chunk-size line (size, extensions and line end). */
  readonly maxChunkLine: number
  /** Largest trailer section (all trailer field lines and the final empty line). */
  readonly maxTrailerBytes: number
}

// Every result has the same five fields (one hidden class at the Postman's call sites).
const doneAtOnce: FeedResult = { consumed: 0, done: true, forward: 0, pieces: undefined, error: undefined }

class NoBody implements BodyFramer {
  readonly done = true
  readonly held = 0
  feed(): FeedResult {
    return doneAtOnce
  }
  endOfStream(): boolean {
    return true
  }
}

class LengthBody implements BodyFramer {
  readonly held = 0
  #remaining: number
  constructor(length: number) {
    this.#remaining = length
  }
  get done(): boolean {
    return this.#remaining === 0
  }
  feed(bytes: Uint8Array): FeedResult {
    const consumed = Math.min(this.#remaining, bytes.length)
    this.#remaining -= consumed
    return { consumed, done: this.#remaining === 0, forward: consumed, pieces: undefined, error: undefined }
  }
  endOfStream(): boolean {
    return this.#remaining === 0
  }
}

class UntilCloseBody implements BodyFramer {
  readonly done = false
  readonly held = 0
  feed(bytes: Uint8Array): FeedResult {
    return { consumed: bytes.length, done: false, forward: bytes.length, pieces: undefined, error: undefined }
  }
  endOfStream(): boolean {
    return true
  }
}

// Chunked states: where the next byte falls in the chunked grammar.
const SIZE_FIRST = 0 // first byte of a chunk-size
const SIZE = 1 // more HEXDIG, or what ends the size
const SIZE_WS = 2 // BWS after the size: ";" must follow
const EXT_WS = 3 // after ";": BWS, then the first byte of an ext-name
const EXT_NAME = 4 // inside an ext-name
const EXT_NAME_WS = 5 // BWS after an ext-name: "=" or ";" must follow
const EXT_VALUE_WS = 6 // after "=": BWS, then a token or a quoted-string
const EXT_TOKEN = 7 // inside a token ext-val
const EXT_QUOTED = 8 // inside a quoted-string ext-val
const EXT_QUOTED_PAIR = 9 // after "\" in a quoted-string
const EXT_VALUE_END = 10 // right after a closing quote
const EXT_VALUE_WS_END = 11 // BWS after an ext-val: ";" must follow
const SIZE_LF = 12 // after CR of the size line: LF must follow
const DATA = 13 // chunk data, skipped in bulk
const DATA_CR = 14 // CR expected after the data
const DATA_LF = 15 // LF expected after that CR
const TRAILER_START = 16 // start of a trailer line (or the final empty line)
const TRAILER_NAME = 17 // inside a trailer field name
const TRAILER_VALUE = 18 // after the colon of a trailer field
const TRAILER_LF = 19 // after CR in a trailer field line: LF must follow
const END_LF = 20 // after CR of the final empty line: LF must follow
const DONE = 21
const FAILED = 22

const DQUOTE = 0x22
const BACKSLASH = 0x5c
const EQUALS = 0x3d

const hexValue = (b: number): number => (b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57)

const isBws = (b: number): boolean => b === SP || b === HTAB

const CRLF = Uint8Array.of(CR, LF)
const noBytes = new Uint8Array(0)

class ChunkedBody implements BodyFramer {
  readonly #limits: ChunkLimits
  #state = SIZE_FIRST
  #size = 0 // the chunk-size being read
  #remaining = 0 // data bytes left in the current chunk
  #lineBytes = 0 // bytes of the current size line so far
  #trailerBytes = 0 // bytes of the trailer section so far
  #error = ""

  // The framing line being held back (a size line or a trailer line), from its first byte to its LF.
  #holding = false
  /** Where the held line starts in the current input, or -1 when it began in an earlier one. */
  #lineAt = -1
  /** Where the size digits ended in the current input, or -1 (not in this input). */
  #digitsEnd = -1
  /** The size line has more than digits and CRLF (BWS, extensions): it is forwarded cut. */
  #cut = false
  /** The trailer line's name so far, and whether the line is dropped. */
  #name = ""
  #drop = false
  /** Bytes of the held line retained from earlier inputs (size lines: the digits only). */
  #held: Uint8Array = noBytes
  #heldLength = 0

  // Per feed: the input, the open run of bytes to forward verbatim, and what was decided so far.
  #input: Uint8Array = noBytes
  #runStart = -1
  #prefix = -1
  #pieces: Array<Uint8Array> | undefined = undefined

  constructor(limits: ChunkLimits) {
    this.#limits = limits
  }

  get done(): boolean {
    return this.#state === DONE
  }

  get held(): number {
    return this.#heldLength
  }

  endOfStream(): boolean {
    return this.#state === DONE
  }

  feed(bytes: Uint8Array): FeedResult {
    if (this.#state === FAILED) return { consumed: 0, done: false, forward: 0, pieces: undefined, error: this.#error }
    if (this.#state === DONE) return doneAtOnce
    const n = bytes.length
    this.#input = bytes
    this.#runStart = this.#holding ? -1 : 0
    this.#prefix = -1
    this.#pieces = undefined
    let i = 0
    while (i < n && this.#state !== DONE) {
      if (this.#state === DATA) {
        const take = Math.min(this.#remaining, n - i)
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#state = DATA_CR
        continue
      }
      const error = this.#step(bytes[i] as number, i)
      if (error !== undefined) {
        this.#state = FAILED
        this.#error = error
        // Nothing of the line being held goes out.
        this.#closeRun(this.#holding ? this.#lineAt : i)
        this.#holding = false
        this.#heldLength = 0
        this.#held = noBytes
        return this.#result(i, false, error)
      }
      i++
    }
    if (this.#holding) this.#retain(n)
    if (this.#runStart === 0 && this.#pieces === undefined) {
      // The common case: everything up to `i` goes out as received.
      this.#input = noBytes
      return { consumed: i, done: this.#state === DONE, forward: i, pieces: undefined, error: undefined }
    }
    this.#closeRun(i)
    return this.#result(i, this.#state === DONE, undefined)
  }

  #result(consumed: number, done: boolean, error: string | undefined): FeedResult {
    const pieces = this.#pieces
    const forward = pieces === undefined && this.#prefix > 0 ? this.#prefix : 0
    this.#input = noBytes
    this.#pieces = undefined
    return { consumed, done, forward, pieces, error }
  }

  /** End the run of verbatim bytes at `end` (exclusive). */
  #closeRun(end: number): void {
    const start = this.#runStart
    if (start < 0) return
    this.#runStart = -1
    if (end <= start) return
    if (start === 0 && this.#pieces === undefined && this.#prefix < 0) {
      this.#prefix = end
      return
    }
    this.#push(this.#input.subarray(start, end))
  }

  #push(piece: Uint8Array): void {
    if (this.#pieces === undefined) {
      this.#pieces = this.#prefix > 0 ? [this.#input.subarray(0, this.#prefix)] : []
      this.#prefix = -1
    }
    this.#pieces.push(piece)
  }

  /** The input ends inside a held line: keep what of it must be forwarded later. */
  #retain(n: number): void {
    const start = Math.max(this.#lineAt, 0)
    this.#closeRun(start)
    let end = n
    if (this.#state <= SIZE_LF) {
      // A size line: only its digits are forwarded.
      end = this.#state === SIZE ? n : this.#digitsEnd >= 0 ? this.#digitsEnd : start
    } else if (this.#drop) {
      end = start
    }
    if (end > start) {
      const needed = this.#heldLength + (end - start)
      if (needed > this.#held.length) {
        const grown = new Uint8Array(Math.max(needed, this.#held.length * 2, 64))
        grown.set(this.#held.subarray(0, this.#heldLength), 0)
        this.#held = grown
      }
      this.#held.set(this.#input.subarray(start, end), this.#heldLength)
      this.#heldLength = needed
    }
    this.#lineAt = -1
    this.#digitsEnd = -1
  }

  /** The retained bytes as a piece of their own (the buffer is given up: a write may still reference it). */
  #takeHeld(): Uint8Array {
    const out = this.#heldLength === 0 ? noBytes : this.#held.subarray(0, this.#heldLength)
    this.#held = noBytes
    this.#heldLength = 0
    return out
  }

  /** The LF of a size line at input[i]: forward the line as its digits and CRLF. */
  #releaseSizeLine(i: number): void {
    this.#holding = false
    if (this.#lineAt >= 0) {
      // The whole line is in this input, inside the open run: cut out what follows the digits.
      if (this.#cut) {
        this.#closeRun(this.#digitsEnd)
        this.#runStart = i - 1 // its CR
      }
      return
    }
    // Begun in an earlier input: the digits retained, and those in this input, then CRLF.
    const held = this.#takeHeld()
    const more = Math.max(this.#digitsEnd, 0)
    const line = new Uint8Array(held.length + more + 2)
    line.set(held, 0)
    line.set(this.#input.subarray(0, more), held.length)
    line.set(CRLF, held.length + more)
    this.#push(line)
    this.#runStart = i + 1
  }

  /** The LF of a trailer line (or of the final empty line) at input[i]: forward it or drop it. */
  #releaseTrailerLine(i: number): void {
    this.#holding = false
    if (this.#lineAt >= 0) {
      if (this.#drop) {
        this.#closeRun(this.#lineAt)
        this.#runStart = i + 1
      }
      return
    }
    const held = this.#takeHeld()
    if (this.#drop) {
      this.#runStart = i + 1
      return
    }
    if (held.length > 0) this.#push(held)
    this.#runStart = 0
  }

  #startLine(i: number): void {
    this.#holding = true
    this.#lineAt = i
    this.#digitsEnd = -1
    this.#cut = false
  }

  /** One framing byte at input[i]; returns an error message or undefined. */
  #step(b: number, i: number): string | undefined {
    const limits = this.#limits
    switch (this.#state) {
      case DATA_CR:
        if (b !== CR) return "chunk data not followed by CRLF"
        this.#state = DATA_LF
        return undefined
      case DATA_LF:
        if (b !== LF) return "chunk data not followed by CRLF"
        this.#state = SIZE_FIRST
        this.#size = 0
        this.#lineBytes = 0
        return undefined
      default:
        if (this.#state <= SIZE_LF) {
          if (++this.#lineBytes > limits.maxChunkLine) return `chunk size line longer than ${limits.maxChunkLine} bytes`
          return this.#sizeLine(b, i)
        }
        if (++this.#trailerBytes > limits.maxTrailerBytes) return `trailer section larger than ${limits.maxTrailerBytes} bytes`
        return this.#trailer(b, i)
    }
  }

  #sizeLine(b: number, i: number): string | undefined {
    switch (this.#state) {
      case SIZE_FIRST:
        if (isHexDigit[b] !== 1) return "missing or invalid chunk size"
        this.#startLine(i)
        this.#size = hexValue(b)
        this.#state = SIZE
        return undefined
      case SIZE:
        if (isHexDigit[b] === 1) {
          const size = this.#size * 16 + hexValue(b)
          if (size > Number.MAX_SAFE_INTEGER) return "chunk size too large"
          this.#size = size
          return undefined
        }
        this.#digitsEnd = i
        if (b === CR) {
          this.#state = SIZE_LF
          return undefined
        }
        return this.#afterDigits(b)
      case SIZE_LF:
        if (b !== LF) return "bare CR in chunk size line"
        if (this.#cut || this.#lineAt < 0) this.#releaseSizeLine(i)
        else this.#holding = false // the line is in the open run as received
        if (this.#size === 0) {
          this.#state = TRAILER_START
          this.#trailerBytes = 0
        } else {
          this.#state = DATA
          this.#remaining = this.#size
        }
        return undefined
      default:
        // Kept out of this function so that the common path (digits, CR, LF) stays small enough to inline.
        return this.#extension(b)
    }
  }

  /** What follows the size digits when it is not CR: BWS or ";" (the line is then forwarded cut). */
  #afterDigits(b: number): string | undefined {
    this.#cut = true
    if (isBws(b)) this.#state = SIZE_WS
    else if (b === SEMICOLON) this.#state = EXT_WS
    else if (b === LF) return "bare LF in chunk size line (CRLF required)"
    else return "invalid character in chunk size"
    return undefined
  }

  /** One byte of BWS or chunk extensions after the size (RFC 9112 §7.1.1). */
  #extension(b: number): string | undefined {
    switch (this.#state) {
      case SIZE_WS:
        if (isBws(b)) return undefined
        if (b === SEMICOLON) {
          this.#state = EXT_WS
          return undefined
        }
        return "whitespace after a chunk size must be followed by a chunk extension"
      case EXT_WS:
        if (isBws(b)) return undefined
        if (isTchar[b] === 1) {
          this.#state = EXT_NAME
          return undefined
        }
        return this.#extError(b, "empty chunk extension name")
      case EXT_NAME:
        if (isTchar[b] === 1) return undefined
        return this.#afterExtPart(b, true)
      case EXT_NAME_WS:
        if (isBws(b)) return undefined
        if (b === EQUALS) {
          this.#state = EXT_VALUE_WS
          return undefined
        }
        if (b === SEMICOLON) {
          this.#state = EXT_WS
          return undefined
        }
        return this.#extError(b, "whitespace at the end of a chunk extension")
      case EXT_VALUE_WS:
        if (isBws(b)) return undefined
        if (isTchar[b] === 1) this.#state = EXT_TOKEN
        else if (b === DQUOTE) this.#state = EXT_QUOTED
        else return this.#extError(b, "empty chunk extension value")
        return undefined
      case EXT_TOKEN:
        if (isTchar[b] === 1) return undefined
        return this.#afterExtPart(b, false)
      case EXT_QUOTED:
        if (isQdtext[b] === 1) return undefined
        if (b === DQUOTE) this.#state = EXT_VALUE_END
        else if (b === BACKSLASH) this.#state = EXT_QUOTED_PAIR
        else return "unterminated or invalid quoted-string in chunk extension"
        return undefined
      case EXT_QUOTED_PAIR:
        if (isFieldValueChar[b] !== 1) return "unterminated or invalid quoted-string in chunk extension"
        this.#state = EXT_QUOTED
        return undefined
      case EXT_VALUE_END:
        return this.#afterExtPart(b, false)
      default: // EXT_VALUE_WS_END
        if (isBws(b)) return undefined
        if (b === SEMICOLON) {
          this.#state = EXT_WS
          return undefined
        }
        return this.#extError(b, "whitespace at the end of a chunk extension")
    }
  }

  /** What may follow an ext-name (`name` true) or an ext-val: BWS, ";", CR, and "=" after a name. */
  #afterExtPart(b: number, name: boolean): string | undefined {
    if (isBws(b)) this.#state = name ? EXT_NAME_WS : EXT_VALUE_WS_END
    else if (b === SEMICOLON) this.#state = EXT_WS
    else if (b === CR) this.#state = SIZE_LF
    else if (name && b === EQUALS) this.#state = EXT_VALUE_WS
    else return this.#extError(b, "invalid character in chunk extension")
    return undefined
  }

  /** Why `b` cannot come next in an extension: a bare LF, a byte never allowed outside quotes, or `otherwise`. */
  #extError(b: number, otherwise: string): string {
    if (b === LF) return "bare LF in chunk size line (CRLF required)"
    if (b === CR) return otherwise
    const grammarByte = b === SEMICOLON || b === EQUALS || b === DQUOTE || isBws(b) || isTchar[b] === 1
    return grammarByte ? otherwise : "invalid character in chunk extension"
  }

  #trailer(b: number, i: number): string | undefined {
    switch (this.#state) {
      case TRAILER_START:
        this.#startLine(i)
        this.#name = ""
        this.#drop = false
        if (b === CR) this.#state = END_LF
        else if (b === LF) return "bare LF in the trailer section (CRLF required)"
        else if (isBws(b)) return "obsolete line folding in the trailer section"
        else if (isTchar[b] === 1) {
          this.#state = TRAILER_NAME
          this.#name = String.fromCharCode(b)
        } else return "invalid character in a trailer field name"
        return undefined
      case TRAILER_NAME:
        if (isTchar[b] === 1) {
          this.#name += String.fromCharCode(b)
          return undefined
        }
        if (b === COLON) {
          this.#state = TRAILER_VALUE
          this.#drop = isForbiddenTrailer(this.#name)
          return undefined
        }
        if (isBws(b)) return "whitespace between a trailer field name and its colon"
        return "invalid character in a trailer field name"
      case TRAILER_VALUE:
        if (isFieldValueChar[b] === 1) return undefined
        if (b === CR) this.#state = TRAILER_LF
        else if (b === LF) return "bare LF in the trailer section (CRLF required)"
        else return "invalid character in a trailer field value"
        return undefined
      case TRAILER_LF:
        if (b !== LF) return "bare CR in the trailer section"
        this.#releaseTrailerLine(i)
        this.#state = TRAILER_START
        return undefined
      default: // END_LF
        if (b !== LF) return "bare CR in the trailer section"
        this.#releaseTrailerLine(i)
        this.#state = DONE
        return undefined
    }
  }
}

export const makeFramer = (framing: Framing, limits: ChunkLimits): BodyFramer => {
  switch (framing.kind) {
    case "none":
      return new NoBody()
    case "length":
      return framing.length === 0 ? new NoBody() : new LengthBody(framing.length)
    case "chunked":
      return new ChunkedBody(limits)
    case "until-close":
      return new UntilCloseBody()
  }
}
