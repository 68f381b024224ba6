/**
 * internal/SharedLimits.ts: the counts shared by all workers. The client table against a plain Map model
 * (random acquire/release over many addresses, colliding probe runs, deletions that shift entries), the
 * process-wide cap, a worker's share given back when it is gone, and exactness when real worker threads
 * race for the same address.
 */
import fc from "fast-check"
import { Worker } from "node:worker_threads"
import { describe, expect, it } from "vitest"
import { makeSharedLimitsBuffer, SharedLimits } from "../../../src/runtime/access/SharedLimits.ts"

const key = (n: number): Int32Array => Int32Array.of(0, 0, -65536 /* ::ffff: */, n)

describe("the process-wide count", () => {
  it("admits exactly max, then refuses without counting", () => {
    const s = new SharedLimits(makeSharedLimitsBuffer(4, 10, 1))
    const admitted = Array.from({ length: 15 }, (_, i) => s.acquireTotal(i % 4, 10))
    expect(admitted.filter(Boolean)).toHaveLength(10)
    expect(admitted.slice(10)).toEqual([false, false, false, false, false])
    expect(s.total).toBe(10)
    s.releaseTotal(0)
    expect(s.total).toBe(9)
    expect(s.acquireTotal(0, 10)).toBe(true)
  })
})

describe("the client table", () => {
  it("matches a Map model under random acquire/release (small table: long probe runs, shifting deletions)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ address: fc.integer({ min: 0, max: 40 }), worker: fc.integer({ min: 0, max: 2 }), acquire: fc.boolean() }), {
          maxLength: 400,
        }),
        fc.integer(),
        (ops, seed) => {
          const max = 3
          // maxConnections 0: the smallest table (64 entries), so 41 addresses crowd it.
          const s = new SharedLimits(makeSharedLimitsBuffer(3, 0, seed))
          const model = new Map<string, number>() // "address/worker" -> count
          const count = (a: number) => [0, 1, 2].reduce((n, w) => n + (model.get(`${a}/${w}`) ?? 0), 0)
          for (const op of ops) {
            const k = key(op.address)
            const id = `${op.address}/${op.worker}`
            if (op.acquire) {
              const r = s.acquireClient(k, op.worker, max)
              expect(r).toBe(count(op.address) < max ? "ok" : "full")
              if (r === "ok") model.set(id, (model.get(id) ?? 0) + 1)
            } else if ((model.get(id) ?? 0) > 0) {
              s.releaseClient(k, op.worker)
              model.set(id, (model.get(id) ?? 0) - 1)
            }
            for (let a = 0; a <= 40; a++) expect(s.clientCount(key(a))).toBe(count(a))
          }
          // A worker that is gone gives back everything it held, and only that.
          s.releaseWorker(1)
          for (let a = 0; a <= 40; a++) {
            model.delete(`${a}/1`)
            expect(s.clientCount(key(a))).toBe(count(a))
          }
        },
      ),
      { numRuns: 200 },
    )
  })

  it("keeps IPv4 and IPv6 addresses apart", () => {
    const s = new SharedLimits(makeSharedLimitsBuffer(1, 100, 7))
    const v4 = Int32Array.of(0, 0, -65536, 0x0100007f)
    const v6 = Int32Array.of(0, 0, 0, 0x0100007f)
    expect(s.acquireClient(v4, 0, 1)).toBe("ok")
    expect(s.acquireClient(v6, 0, 1)).toBe("ok")
    expect(s.acquireClient(v4, 0, 1)).toBe("full")
  })

  it("releaseWorker also gives back the process-wide count, and a lock the worker died holding", () => {
    const buffer = makeSharedLimitsBuffer(2, 100, 3)
    const s = new SharedLimits(buffer)
    for (let i = 0; i < 5; i++) s.acquireTotal(1, 100)
    s.acquireTotal(0, 100)
    new Int32Array(buffer)[0] = 2 // worker 1 holds the lock, then dies
    s.releaseWorker(1)
    expect(s.total).toBe(1)
    expect(s.acquireClient(key(1), 0, 5)).toBe("ok")
  })
})

describe("across real worker threads", () => {
  it("four threads racing for one address never exceed the cap, and all counts return to zero", async () => {
    const buffer = makeSharedLimitsBuffer(4, 1000, 11)
    const url = new URL("../../../src/runtime/access/SharedLimits.ts", import.meta.url).href
    const script = `
      import { workerData, parentPort } from "node:worker_threads"
      const { SharedLimits } = await import(${JSON.stringify(url)})
      const s = new SharedLimits(workerData.buffer)
      const k = Int32Array.of(0, 0, -65536, 42)
      let ok = 0, full = 0, maxSeen = 0
      const held = []
      for (let i = 0; i < 20000; i++) {
        if (held.length > 0 && (i % 3 === 0)) { s.releaseClient(k, workerData.id); s.releaseTotal(workerData.id); held.pop(); continue }
        if (!s.acquireTotal(workerData.id, 1000)) { full++; continue }
        const r = s.acquireClient(k, workerData.id, 7)
        if (r === "ok") { ok++; held.push(1); const c = s.clientCount(k); if (c > maxSeen) maxSeen = c }
        else { s.releaseTotal(workerData.id); full++ }
      }
      while (held.length > 0) { s.releaseClient(k, workerData.id); s.releaseTotal(workerData.id); held.pop() }
      parentPort.postMessage({ ok, full, maxSeen })
    `
    const results = await Promise.all(
      [0, 1, 2, 3].map(
        (id) =>
          new Promise<{ ok: number; full: number; maxSeen: number }>((resolve, reject) => {
            const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(script)}`), { workerData: { buffer, id } })
            w.once("message", resolve)
            w.once("error", reject)
          }),
      ),
    )
    const s = new SharedLimits(buffer)
    for (const r of results) expect(r.maxSeen).toBeLessThanOrEqual(7)
    expect(results.reduce((n, r) => n + r.full, 0)).toBeGreaterThan(0)
    expect(s.clientCount(Int32Array.of(0, 0, -65536, 42))).toBe(0)
    expect(s.total).toBe(0)
  })
})
