/**
 * body: body framers. Each one says how many of the bytes that follow a head belong to its body and
 * when the body is complete, whatever the segmentation, without copying a byte: the caller forwards the
 * body bytes (chunk framing included) verbatim, and hands whatever follows to the next head.
 *
 * Owns: where a body ends (RFC 9112 §6, §7.1). Never: decodes, buffers or rewrites body bytes.
 *
 * Rules:
 * - none: done at once, consumes nothing. length: consumes up to the remaining count.
 *   until-close: consumes everything, is never done; only the end of the stream ends it.
 * - chunked (RFC 9112 §7.1), as a byte-at-a-time state machine (chunk data is skipped in bulk):
 *     chunk-size   1*HEXDIG, at most Number.MAX_SAFE_INTEGER (2^53-1); empty or non-hex: error
 *     chunk-ext    BWS ";" ...: any VCHAR / obs-text / SP / HTAB up to the line end; controls (CR not
 *                  before LF, NUL...) are errors. Whitespace after the size is allowed only before ";".
 *                  The whole size line is bounded by maxChunkLine.
 *     line end     CRLF only. Unlike heads (which are re-serialized), chunk framing is forwarded
 *                  verbatim: a bare LF that we accepted and a strict origin refused (or the reverse)
 *                  would let the two disagree on where the body ends, which is request smuggling.
 *     chunk-data   then exactly CRLF after the data: anything else is an error
 *     last-chunk   size 0, then trailer field lines (same rules as head fields: token name, colon
 *                  without whitespace before it, no obs-fold, field-value bytes) up to an empty line;
 *                  the trailer section is bounded by maxTrailerBytes.
 * - endOfStream(): true only if the stream may end here: until-close, or a body already complete.
 * - After an error the framer keeps answering that error.
 */
import { COLON, CR, HTAB, isFieldValueChar, isHexDigit, isTchar, LF, SEMICOLON, SP } from "./syntax.ts"
import type { Framing } from "./types.ts"

/**
 * `consumed` bytes belong to the body (all of them when `done` is false and there is no error). With an
 * `error`, `consumed` is the valid prefix before the offending byte, so a caller that forwards it sends
 * the same bytes whatever the segmentation.
 */
export type FeedResult = { readonly consumed: number; readonly done: boolean } | { readonly error: string; readonly consumed: number }

export interface BodyFramer {
  /** Consume a prefix of `bytes` belonging to this body: how many bytes, and whether the body is now complete. */
  feed(bytes: Uint8Array): FeedResult
  /** The peer ended its stream: true if that is a legal end of this body. */
  endOfStream(): boolean
  readonly done: boolean
}

export interface ChunkLimits {
  /** Longest chunk-size line (size, extensions and line end). */
  readonly maxChunkLine: number
  /** Largest trailer section (all trailer field lines and the final empty line). */
  readonly maxTrailerBytes: number
}

const doneAtOnce: FeedResult = { consumed: 0, done: true }

class NoBody implements BodyFramer {
  readonly done = true
  feed(): FeedResult {
    return doneAtOnce
  }
  endOfStream(): boolean {
    return true
  }
}

class LengthBody implements BodyFramer {
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
    return { consumed, done: this.#remaining === 0 }
  }
  endOfStream(): boolean {
    return this.#remaining === 0
  }
}

class UntilCloseBody implements BodyFramer {
  readonly done = false
  feed(bytes: Uint8Array): FeedResult {
    return { consumed: bytes.length, done: false }
  }
  endOfStream(): boolean {
    return true
  }
}

// Chunked states: where the next byte falls in the chunked grammar.
const SIZE_FIRST = 0 // first byte of a chunk-size
const SIZE = 1 // more HEXDIG, or what ends the size
const SIZE_WS = 2 // BWS after the size, before ";" or the line end
const EXT = 3 // inside chunk extensions
const SIZE_LF = 4 // after CR of the size line: LF must follow
const DATA = 5 // chunk data, skipped in bulk
const DATA_CR = 6 // CR expected after the data
const DATA_LF = 7 // LF expected after that CR
const TRAILER_START = 8 // start of a trailer line (or the final empty line)
const TRAILER_NAME = 9 // inside a trailer field name
const TRAILER_VALUE = 10 // after the colon of a trailer field
const TRAILER_LF = 11 // after CR in a trailer field line: LF must follow
const END_LF = 12 // after CR of the final empty line: LF must follow
const DONE = 13
const FAILED = 14

/** The bytes allowed inside chunk extensions: token, quoted-string and BWS bytes, no controls but HTAB. */
const isExtByte = isFieldValueChar

const hexValue = (b: number): number => (b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57)

class ChunkedBody implements BodyFramer {
  readonly #limits: ChunkLimits
  #state = SIZE_FIRST
  #size = 0 // the chunk-size being read
  #remaining = 0 // data bytes left in the current chunk
  #lineBytes = 0 // bytes of the current size line so far
  #trailerBytes = 0 // bytes of the trailer section so far
  #error = ""

  constructor(limits: ChunkLimits) {
    this.#limits = limits
  }

  get done(): boolean {
    return this.#state === DONE
  }

  endOfStream(): boolean {
    return this.#state === DONE
  }

  feed(bytes: Uint8Array): FeedResult {
    if (this.#state === FAILED) return { error: this.#error, consumed: 0 }
    const n = bytes.length
    let i = 0
    while (i < n && this.#state !== DONE) {
      if (this.#state === DATA) {
        const take = Math.min(this.#remaining, n - i)
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#state = DATA_CR
        continue
      }
      const b = bytes[i] as number
      const error = this.#step(b)
      if (error !== undefined) {
        this.#state = FAILED
        this.#error = error
        return { error, consumed: i }
      }
      i++
    }
    return { consumed: i, done: this.#state === DONE }
  }

  /** One framing byte; returns an error message or undefined. */
  #step(b: number): string | undefined {
    const limits = this.#limits
    switch (this.#state) {
      case SIZE_FIRST:
      case SIZE:
      case SIZE_WS:
      case EXT:
      case SIZE_LF:
        if (++this.#lineBytes > limits.maxChunkLine) return `chunk size line longer than ${limits.maxChunkLine} bytes`
        return this.#sizeLine(b)
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
        if (++this.#trailerBytes > limits.maxTrailerBytes) return `trailer section larger than ${limits.maxTrailerBytes} bytes`
        return this.#trailer(b)
    }
  }

  #sizeLine(b: number): string | undefined {
    switch (this.#state) {
      case SIZE_FIRST:
        if (isHexDigit[b] !== 1) return "missing or invalid chunk size"
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
        if (b === SP || b === HTAB) {
          this.#state = SIZE_WS
          return undefined
        }
        return this.#afterSize(b, "invalid character in chunk size")
      case SIZE_WS:
        if (b === SP || b === HTAB) return undefined
        if (b === SEMICOLON) {
          this.#state = EXT
          return undefined
        }
        return "whitespace after a chunk size must be followed by a chunk extension"
      case EXT:
        if (b === CR || b === LF) return this.#afterSize(b, "")
        if (isExtByte[b] !== 1) return "invalid character in chunk extension"
        return undefined
      default: // SIZE_LF
        if (b !== LF) return "bare CR in chunk size line"
        this.#endSizeLine()
        return undefined
    }
  }

  /** ";", CR or LF after the size (and its BWS). */
  #afterSize(b: number, otherwise: string): string | undefined {
    if (b === SEMICOLON) this.#state = EXT
    else if (b === CR) this.#state = SIZE_LF
    else if (b === LF) return "bare LF in chunk size line (CRLF required)"
    else return otherwise
    return undefined
  }

  #endSizeLine(): void {
    if (this.#size === 0) {
      this.#state = TRAILER_START
      this.#trailerBytes = 0
    } else {
      this.#state = DATA
      this.#remaining = this.#size
    }
  }

  #trailer(b: number): string | undefined {
    switch (this.#state) {
      case TRAILER_START:
        if (b === CR) this.#state = END_LF
        else if (b === LF) return "bare LF in the trailer section (CRLF required)"
        else if (b === SP || b === HTAB) return "obsolete line folding in the trailer section"
        else if (isTchar[b] === 1) this.#state = TRAILER_NAME
        else return "invalid character in a trailer field name"
        return undefined
      case TRAILER_NAME:
        if (isTchar[b] === 1) return undefined
        if (b === COLON) {
          this.#state = TRAILER_VALUE
          return undefined
        }
        if (b === SP || b === HTAB) return "whitespace between a trailer field name and its colon"
        return "invalid character in a trailer field name"
      case TRAILER_VALUE:
        if (isFieldValueChar[b] === 1) return undefined
        if (b === CR) this.#state = TRAILER_LF
        else if (b === LF) return "bare LF in the trailer section (CRLF required)"
        else return "invalid character in a trailer field value"
        return undefined
      case TRAILER_LF:
        if (b !== LF) return "bare CR in the trailer section"
        this.#state = TRAILER_START
        return undefined
      default: // END_LF
        if (b !== LF) return "bare CR in the trailer section"
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
