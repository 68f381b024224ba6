/**
 * Seeded randomness for the soak: a small PRNG per lane, and the data pool every stream is cut from.
 *
 * Every byte the soak sends is a slice of one seeded pool (8 MiB of AES-CTR keystream), read from an offset
 * and wrapping around: a stream is named by (offset, length), so the receiving side knows exactly which
 * bytes must arrive without either side keeping a copy. Expected SHA-256s of long streams are memoized
 * (long streams take their offset and length from small sets), so a gigabyte costs one hash where it is
 * received, not two.
 */
import { createCipheriv, createHash } from "node:crypto"

/** sfc32, seeded through splitmix32: fast, 128 bits of state, good enough for choosing what to do next. */
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number, stream: number) {
    let s = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = split()
    this.b = split()
    this.c = split()
    this.d = split()
    for (let i = 0; i < 12; i++) this.next()
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  /** In [0, 1). */
  float(): number {
    return this.next() / 4294967296
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1))
  }

  chance(p: number): boolean {
    return this.float() < p
  }

  pick<T>(items: ReadonlyArray<T>): T {
    return items[Math.floor(this.float() * items.length)]!
  }

  /** One of the values, each with its weight. */
  weighted<T>(table: ReadonlyArray<readonly [number, T]>): T {
    let total = 0
    for (const [w] of table) total += w
    let x = this.float() * total
    for (const [w, v] of table) {
      x -= w
      if (x < 0) return v
    }
    return table[table.length - 1]![1]
  }
}

export const POOL_SIZE = 8 * 1024 * 1024
const MiB = 1024 * 1024

/** Lengths and offsets of long streams (≥ 1 MiB): few enough that their hashes are worth remembering. */
export const LONG_LENGTHS = [1, 2, 3, 5, 8, 13, 21, 34, 50].map((m) => m * MiB + 77 * m)
export const LONG_OFFSETS = Array.from({ length: 16 }, (_, i) => (i * 524_309) % POOL_SIZE)

export class DataPool {
  readonly bytes: Buffer
  private readonly memo = new Map<string, string>()

  constructor(seed: number) {
    const key = createHash("sha256").update(`hctunnel-soak:${seed}`).digest()
    const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16))
    this.bytes = Buffer.concat([cipher.update(Buffer.alloc(POOL_SIZE)), cipher.final()])
  }

  /** The stream (offset, length) as slices of the pool (no copies), at most `chunk` bytes each. */
  *slices(offset: number, length: number, chunk = 64 * 1024): Generator<Buffer> {
    let at = offset % POOL_SIZE
    let left = length
    while (left > 0) {
      const n = Math.min(left, chunk, POOL_SIZE - at)
      yield this.bytes.subarray(at, at + n)
      left -= n
      at = (at + n) % POOL_SIZE
    }
  }

  /** The stream as one Buffer (for small ones). */
  copy(offset: number, length: number): Buffer {
    return Buffer.concat([...this.slices(offset, length)])
  }

  /** SHA-256 (hex) of the stream; remembered for long streams. */
  sha256(offset: number, length: number): string {
    const key = `${offset}:${length}`
    const known = this.memo.get(key)
    if (known !== undefined) return known
    const h = createHash("sha256")
    for (const s of this.slices(offset, length, 1024 * 1024)) h.update(s)
    const hex = h.digest("hex")
    if (length >= MiB) this.memo.set(key, hex)
    return hex
  }

  /** Whether `chunk` equals the stream `offset` from its byte number `position` on. */
  matches(offset: number, position: number, chunk: Buffer): boolean {
    let done = 0
    for (const s of this.slices(offset + position, chunk.length, POOL_SIZE)) {
      if (!s.equals(chunk.subarray(done, done + s.length))) return false
      done += s.length
    }
    return true
  }
}

/** Checks a stream byte for byte as it arrives, against the pool. */
export class StreamCheck {
  received = 0
  /** The first byte number that differed, if any. */
  mismatchAt: number | undefined = undefined
  private readonly pool: DataPool
  readonly offset: number
  readonly length: number
  constructor(pool: DataPool, offset: number, length: number) {
    this.pool = pool
    this.offset = offset
    this.length = length
  }

  /** Feed the next bytes; returns false once more than `length` bytes or a wrong byte arrived. */
  feed = (chunk: Buffer): boolean => {
    if (this.mismatchAt === undefined) {
      const inside = chunk.subarray(0, Math.max(0, this.length - this.received))
      if (inside.length > 0 && !this.pool.matches(this.offset, this.received, inside)) this.mismatchAt = this.received
      if (inside.length < chunk.length && this.mismatchAt === undefined) this.mismatchAt = this.length
    }
    this.received += chunk.length
    return this.mismatchAt === undefined
  }

  get complete(): boolean {
    return this.mismatchAt === undefined && this.received === this.length
  }
}

/** Hashes a stream as it arrives (tunnels: SHA-256 at the far end, as the issue asks). */
export class HashCheck {
  received = 0
  private readonly hash = createHash("sha256")
  private readonly pool: DataPool
  readonly offset: number
  readonly length: number
  constructor(pool: DataPool, offset: number, length: number) {
    this.pool = pool
    this.offset = offset
    this.length = length
  }

  feed = (chunk: Buffer): void => {
    this.received += chunk.length
    this.hash.update(chunk)
  }

  /** "ok", or what is wrong: too few / too many bytes, or a different hash. */
  verdict(): "ok" | "short" | "long" | "hash" {
    if (this.received < this.length) return "short"
    if (this.received > this.length) return "long"
    return this.hash.digest("hex") === this.pool.sha256(this.offset, this.length) ? "ok" : "hash"
  }
}
