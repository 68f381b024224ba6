/**
 * SharedLimits: the connection counts every worker thread shares, in one SharedArrayBuffer made by the
 * supervisor and passed to each worker in `WorkerInit.connectionLimits`.
 *
 * Layout, in 32-bit words (`Int32Array` over the whole buffer; W = number of worker slots, C = table
 * capacity, a power of two; S = 5 + ceil(W / 2), the words of one table entry):
 *
 *   [0]              lock of the client table: 0 free, else the id + 1 of the worker holding it
 *   [1]              live connections of the whole process (the --max-connections count)
 *   [2]              hash seed of the client table (random, so addresses cannot be chosen to collide)
 *   [3]              W;  [4] C
 *   [8 .. 8+W)       live connections admitted by each worker (only that worker writes its word): when
 *                    a worker dies, the supervisor subtracts it from [1] (`releaseWorker`)
 *   [T + i*S ..]     client table entry i, T = 8 + W rounded up to a multiple of 4:
 *                      +0..+3  the client address, 16 bytes (IPv4 as IPv4-mapped IPv6, see Cidr.ts)
 *                      +4      its live connections (0: the entry is empty)
 *                      +5..    its live connections per worker, one Uint16 each (for `releaseWorker`;
 *                              hence --max-connections-per-client <= 65535)
 *
 * The process-wide count is one `Atomics.add` at accept and one `Atomics.sub` at close. The client table is
 * an open-addressing hash table with linear probing and backward-shift deletion (no tombstones: an entry
 * exists only while its address has a live connection), guarded by a spin lock held for a few dozen
 * instructions. Entries never outnumber live connections, and C >= 2 * maxConnections + 64, so the table is
 * never more than half full and two addresses never share a count.
 *
 * Plain data and Atomics only: no IO, no timers, no logging (ConnectionLimits.ts does those).
 */

const LOCK = 0
const TOTAL = 1
const SEED = 2
const WORKERS = 3
const CAPACITY = 4
const PER_WORKER = 8

/** The shape of the buffer, derived from the two numbers it was made with. */
interface Shape {
  readonly workers: number
  readonly capacity: number
  readonly tableAt: number
  readonly stride: number
}

const shapeOf = (workers: number, capacity: number): Shape => {
  const tableAt = (PER_WORKER + workers + 3) & ~3
  return { workers, capacity, tableAt, stride: 5 + Math.ceil(workers / 2) }
}

const capacityFor = (maxConnections: number): number => {
  let c = 64
  while (c < 2 * maxConnections + 64) c *= 2
  return c
}

/** A new buffer for `workers` worker slots and at most `maxConnections` live connections. */
export const makeSharedLimitsBuffer = (workers: number, maxConnections: number, seed: number): SharedArrayBuffer => {
  const shape = shapeOf(workers, capacityFor(maxConnections))
  const buffer = new SharedArrayBuffer((shape.tableAt + shape.capacity * shape.stride) * 4)
  const words = new Int32Array(buffer)
  words[SEED] = seed | 0
  words[WORKERS] = workers
  words[CAPACITY] = shape.capacity
  return buffer
}

/** An address as the four words of a table key. */
export type ClientKey = Int32Array

/** How many times a worker tries the table's lock at once before it sleeps on it. */
const SPIN_LIMIT = 1 << 10
/**
 * How long (ms) a worker sleeps on the lock in all before it gives up. The lock is held for microseconds,
 * but its holder may be descheduled (more threads than cores): then spinning only burns the core the
 * holder needs, so a waiter sleeps on the lock word instead (Atomics.wait, woken by the unlock). Only a
 * holder that died inside the lock keeps it longer (the supervisor takes it back: releaseWorker).
 */
const WAIT_LIMIT_MS = 200

export class SharedLimits {
  private readonly words: Int32Array
  private readonly halves: Uint16Array
  private readonly shape: Shape
  private readonly mask: number
  private readonly seed: number

  constructor(buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer)
    this.halves = new Uint16Array(buffer)
    this.shape = shapeOf(this.words[WORKERS] as number, this.words[CAPACITY] as number)
    this.mask = this.shape.capacity - 1
    this.seed = this.words[SEED] as number
  }

  /** Live connections of the whole process now. */
  get total(): number {
    return Atomics.load(this.words, TOTAL)
  }

  /** Take one process-wide slot; false (and nothing taken) when `max` are live already. One add, one more on refusal. */
  acquireTotal(worker: number, max: number): boolean {
    if (Atomics.add(this.words, TOTAL, 1) >= max) {
      Atomics.sub(this.words, TOTAL, 1)
      return false
    }
    // Only this worker writes its word; a plain store is enough (the supervisor reads it after the thread ended).
    this.words[PER_WORKER + worker] = (this.words[PER_WORKER + worker] as number) + 1
    return true
  }

  releaseTotal(worker: number): void {
    this.words[PER_WORKER + worker] = (this.words[PER_WORKER + worker] as number) - 1
    Atomics.sub(this.words, TOTAL, 1)
  }

  /**
   * Count one more connection of `key` for `worker`, unless it has `max` live already. Returns "ok",
   * "full" (over the limit: nothing counted), or "busy" (the lock could not be taken, which only a
   * worker killed inside the lock can cause: the caller admits without counting).
   */
  acquireClient(key: ClientKey, worker: number, max: number): "ok" | "full" | "busy" {
    if (!this.lock(worker)) return "busy"
    try {
      const i = this.find(key, true)
      if (i < 0) return "busy" // never: the table is at most half full
      const at = this.entryAt(i)
      const count = this.words[at + 4] as number
      if (count >= max) {
        if (count === 0) this.remove(i) // max 0: the entry was made for nothing
        return "full"
      }
      this.words[at + 4] = count + 1
      const half = (at + 5) * 2 + worker
      this.halves[half] = (this.halves[half] as number) + 1
      return "ok"
    } finally {
      this.unlock()
    }
  }

  releaseClient(key: ClientKey, worker: number): void {
    if (!this.lock(worker)) {
      // Never lose a release (the count would stay up for good): it is done with the next lock taken.
      this.unreleased.push({ key, worker })
      return
    }
    try {
      this.release(key, worker)
    } finally {
      this.unlock()
    }
  }

  /** Releases that could not take the lock, done once it is taken again by this thread. */
  private readonly unreleased: Array<{ readonly key: ClientKey; readonly worker: number }> = []

  /** One connection of `key` counted for `worker` is gone. Lock held. */
  private release(key: ClientKey, worker: number): void {
    const i = this.find(key, false)
    if (i < 0) return
    const at = this.entryAt(i)
    const half = (at + 5) * 2 + worker
    if ((this.halves[half] as number) > 0) this.halves[half] = (this.halves[half] as number) - 1
    const count = (this.words[at + 4] as number) - 1
    if (count <= 0) this.remove(i)
    else this.words[at + 4] = count
  }

  /** Live connections of `key` now (tests and logs). */
  clientCount(key: ClientKey): number {
    if (!this.lock(-1)) return 0
    try {
      const i = this.find(key, false)
      return i < 0 ? 0 : (this.words[this.entryAt(i) + 4] as number)
    } finally {
      this.unlock()
    }
  }

  /**
   * The worker thread `worker` is gone (crashed or replaced): give back everything it held. Run by the
   * supervisor after the thread ended; a lock the thread died holding is taken over.
   */
  releaseWorker(worker: number): void {
    const held = Atomics.exchange(this.words, PER_WORKER + worker, 0)
    if (held !== 0) Atomics.sub(this.words, TOTAL, held)
    Atomics.compareExchange(this.words, LOCK, worker + 1, 0)
    if (!this.lock(-1)) return
    try {
      for (let i = 0; i < this.shape.capacity; ) {
        const at = this.entryAt(i)
        const half = (at + 5) * 2 + worker
        const mine = this.halves[half] as number
        if (mine === 0 || (this.words[at + 4] as number) === 0) {
          i++
          continue
        }
        this.halves[half] = 0
        const count = (this.words[at + 4] as number) - mine
        if (count > 0) {
          this.words[at + 4] = count
          i++
        } else {
          // Removing shifts a later entry into i: look at i again.
          this.remove(i)
        }
      }
    } finally {
      this.unlock()
    }
  }

  // ---------------------------------------------------------------------------------------------

  private entryAt(i: number): number {
    return this.shape.tableAt + i * this.shape.stride
  }

  private lock(worker: number): boolean {
    const me = worker + 1 === 0 ? 0x7fffffff : worker + 1
    if (!this.take(me)) return false
    while (this.unreleased.length > 0) {
      const r = this.unreleased.pop()!
      this.release(r.key, r.worker)
    }
    return true
  }

  private take(me: number): boolean {
    const w = this.words
    for (let n = 0; n < SPIN_LIMIT; n++) {
      if (Atomics.compareExchange(w, LOCK, 0, me) === 0) return true
    }
    for (let slept = 0; slept < WAIT_LIMIT_MS; slept++) {
      const holder = Atomics.compareExchange(w, LOCK, 0, me)
      if (holder === 0) return true
      Atomics.wait(w, LOCK, holder, 1)
    }
    return false
  }

  private unlock(): void {
    Atomics.store(this.words, LOCK, 0)
    Atomics.notify(this.words, LOCK, 1)
  }

  private home(k0: number, k1: number, k2: number, k3: number): number {
    let h = this.seed ^ 0x9e3779b9
    h = Math.imul(h ^ k0, 0x85ebca6b)
    h = Math.imul(h ^ (h >>> 13) ^ k1, 0xc2b2ae35)
    h = Math.imul(h ^ (h >>> 16) ^ k2, 0x85ebca6b)
    h = Math.imul(h ^ (h >>> 13) ^ k3, 0xc2b2ae35)
    h ^= h >>> 16
    return h & this.mask
  }

  /** The index of `key`'s entry; with `make`, an empty entry is claimed for it; else -1 when absent. Lock held. */
  private find(key: ClientKey, make: boolean): number {
    const w = this.words
    const k0 = key[0] as number,
      k1 = key[1] as number,
      k2 = key[2] as number,
      k3 = key[3] as number
    for (let i = this.home(k0, k1, k2, k3), n = 0; n < this.shape.capacity; i = (i + 1) & this.mask, n++) {
      const at = this.entryAt(i)
      if ((w[at + 4] as number) === 0) {
        if (!make) return -1
        w[at] = k0
        w[at + 1] = k1
        w[at + 2] = k2
        w[at + 3] = k3
        return i
      }
      if (w[at] === k0 && w[at + 1] === k1 && w[at + 2] === k2 && w[at + 3] === k3) return i
    }
    return -1 // never: the table is at most half full
  }

  /** Empty entry i and shift later entries of its probe run back (linear-probing deletion). Lock held. */
  private remove(i: number): void {
    const w = this.words
    const stride = this.shape.stride
    let hole = i
    for (let j = (i + 1) & this.mask; ; j = (j + 1) & this.mask) {
      const at = this.entryAt(j)
      if ((w[at + 4] as number) === 0) break
      const h = this.home(w[at] as number, w[at + 1] as number, w[at + 2] as number, w[at + 3] as number)
      // Entry j may move into the hole when its home is not in the cyclic range (hole, j].
      const stays = hole <= j ? hole < h && h <= j : hole < h || h <= j
      if (stays) continue
      w.copyWithin(this.entryAt(hole), at, at + stride)
      hole = j
    }
    const at = this.entryAt(hole)
    w.fill(0, at, at + stride)
  }
}
