import { fc, test } from "@fast-check/vitest"
import { afterEach, describe, expect, it, vi } from "vitest"
import { DeadlineHeap, Deadlines, type Timed } from "../../../src/runtime/timers/Deadlines.ts"

const entry = (id: number, fired: Array<[number, number]> = []): Timed & { id: number } => ({
  id,
  deadlineIndex: -1,
  deadlineAt: 0,
  onDeadline(now) {
    fired.push([id, now])
  },
})

type Op =
  | { readonly op: "set"; readonly id: number; readonly at: number }
  | { readonly op: "cancel"; readonly id: number }
  | { readonly op: "pop"; readonly now: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), id: fc.nat(15), at: fc.integer({ min: 0, max: 1000 }) }),
  fc.record({ op: fc.constant("cancel" as const), id: fc.nat(15) }),
  fc.record({ op: fc.constant("pop" as const), now: fc.integer({ min: 0, max: 1000 }) }),
)

describe("DeadlineHeap", () => {
  test.prop([fc.array(opArb, { maxLength: 300 })])("behaves like a sorted array of (at, id)", (ops) => {
    const heap = new DeadlineHeap()
    const entries = Array.from({ length: 16 }, (_, i) => entry(i))
    let model: Array<{ id: number; at: number }> = []
    for (const o of ops) {
      if (o.op === "set") {
        heap.set(entries[o.id]!, o.at)
        model = model.filter((m) => m.id !== o.id).concat([{ id: o.id, at: o.at }])
      } else if (o.op === "cancel") {
        heap.cancel(entries[o.id]!)
        model = model.filter((m) => m.id !== o.id)
      } else {
        // Pop everything expired; ties may come out in any order, so compare as multisets of ids, ordered by time.
        const popped: Array<{ id: number; at: number }> = []
        for (let e = heap.popExpired(o.now); e !== undefined; e = heap.popExpired(o.now)) {
          popped.push({ id: (e as Timed & { id: number }).id, at: e.deadlineAt })
          expect(e.deadlineIndex).toBe(-1)
        }
        const expected = model.filter((m) => m.at <= o.now)
        model = model.filter((m) => m.at > o.now)
        for (let i = 1; i < popped.length; i++) expect(popped[i]!.at).toBeGreaterThanOrEqual(popped[i - 1]!.at)
        const key = (a: { id: number; at: number }, b: { id: number; at: number }) => a.at - b.at || a.id - b.id
        expect([...popped].sort(key)).toEqual([...expected].sort(key))
      }
      expect(heap.size).toBe(model.length)
      const min = model.reduce((m, x) => Math.min(m, x.at), Number.POSITIVE_INFINITY)
      expect(heap.peek()?.deadlineAt ?? Number.POSITIVE_INFINITY).toBe(min)
      for (const e of entries) expect(e.deadlineIndex >= 0).toBe(model.some((m) => m.id === e.id))
    }
  })

  it("cancel of an idle entry is a no-op", () => {
    const heap = new DeadlineHeap()
    const a = entry(1)
    heap.cancel(a)
    expect(heap.size).toBe(0)
  })
})

describe("Deadlines (timer driven)", () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it("fires in order with one timer, passes the clock value, and re-arms", () => {
    vi.useFakeTimers()
    let clock = 0
    const d = new Deadlines({ clock: () => clock })
    const fired: Array<[number, number]> = []
    const a = entry(1, fired)
    const b = entry(2, fired)
    const c = entry(3, fired)
    d.set(b, 200)
    d.set(a, 100)
    d.set(c, 300)
    expect(vi.getTimerCount()).toBe(1)
    clock = 150
    vi.advanceTimersByTime(150)
    expect(fired).toEqual([[1, 150]])
    clock = 350
    vi.advanceTimersByTime(200)
    expect(fired).toEqual([
      [1, 150],
      [2, 350],
      [3, 350],
    ])
    expect(d.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it("cancel prevents delivery; moving a deadline later re-arms when the early timer fires", () => {
    vi.useFakeTimers()
    let clock = 0
    const d = new Deadlines({ clock: () => clock })
    const fired: Array<[number, number]> = []
    const a = entry(1, fired)
    const b = entry(2, fired)
    d.set(a, 100)
    d.set(b, 100)
    d.cancel(b)
    d.set(a, 500) // pushed back: the timer stays armed for 100
    clock = 100
    vi.advanceTimersByTime(100)
    expect(fired).toEqual([])
    expect(vi.getTimerCount()).toBe(1) // re-armed for 500
    clock = 500
    vi.advanceTimersByTime(400)
    expect(fired).toEqual([[1, 500]])
  })

  it("a callback that sets a deadline in the past is delivered on the next turn, not in a loop", () => {
    vi.useFakeTimers()
    let clock = 0
    const d = new Deadlines({ clock: () => clock })
    let calls = 0
    const a: Timed = {
      deadlineIndex: -1,
      deadlineAt: 0,
      onDeadline(now) {
        calls++
        if (calls < 3) d.set(a, now - 1)
      },
    }
    d.set(a, 10)
    clock = 10
    d.fire(10)
    expect(calls).toBe(1)
    vi.advanceTimersToNextTimer()
    expect(calls).toBe(2)
    vi.advanceTimersToNextTimer()
    expect(calls).toBe(3)
    expect(d.size).toBe(0)
  })

  it("an entry re-set by an earlier callback of the same batch is not delivered", () => {
    let clock = 0
    const d = new Deadlines({ clock: () => clock })
    const fired: Array<[number, number]> = []
    const b = entry(2, fired)
    const a: Timed = {
      deadlineIndex: -1,
      deadlineAt: 0,
      onDeadline() {
        d.set(b, 1000)
      },
    }
    d.set(a, 5)
    d.set(b, 6)
    clock = 10
    d.fire(10)
    expect(fired).toEqual([])
    expect(b.deadlineIndex).toBe(0)
    d.stop()
  })
})

describe("Deadlines: a batch is delivered whole", () => {
  const thrower = (id: number, calls: Array<number>): Timed => ({
    deadlineIndex: -1,
    deadlineAt: 0,
    onDeadline() {
      calls.push(id)
      throw new Error(`callback ${id} failed`)
    },
  })

  it("a callback that throws does not keep the later ones of its batch from running; onError hears of it", () => {
    const errors: Array<string> = []
    const d = new Deadlines({ clock: () => 0, onError: (e) => errors.push((e as Error).message) })
    const calls: Array<number> = []
    const fired: Array<[number, number]> = []
    const later = [entry(2, fired), entry(3, fired)]
    d.set(thrower(1, calls), 1)
    d.set(later[0]!, 2)
    d.set(later[1]!, 3)
    d.fire(10)
    expect(calls).toEqual([1])
    expect(fired).toEqual([
      [2, 10],
      [3, 10],
    ])
    expect(errors).toEqual(["callback 1 failed"])
    expect(d.size).toBe(0)
    d.stop()
  })

  it("without onError, every due callback runs and then the first error is thrown; the timer stays armed for the rest", () => {
    const d = new Deadlines({ clock: () => 0 })
    const calls: Array<number> = []
    const fired: Array<[number, number]> = []
    const pending = entry(9, fired)
    d.set(thrower(1, calls), 1)
    d.set(thrower(2, calls), 2)
    d.set(entry(3, fired), 3)
    d.set(pending, 50)
    expect(() => d.fire(10)).toThrow("callback 1 failed")
    expect(calls).toEqual([1, 2])
    expect(fired).toEqual([[3, 10]])
    expect(pending.deadlineIndex).toBe(0) // still pending
    d.fire(50)
    expect(fired).toEqual([
      [3, 10],
      [9, 50],
    ])
    d.stop()
  })

  it("an entry cancelled by an earlier callback of the same batch is not delivered", () => {
    const d = new Deadlines({ clock: () => 0 })
    const fired: Array<[number, number]> = []
    const b = entry(2, fired)
    const a: Timed = {
      deadlineIndex: -1,
      deadlineAt: 0,
      onDeadline() {
        d.cancel(b)
      },
    }
    d.set(a, 5)
    d.set(b, 6)
    d.fire(10)
    expect(fired).toEqual([])
    expect(b.deadlineIndex).toBe(-1)
    d.set(b, 20) // and it can be set again afterwards
    d.fire(20)
    expect(fired).toEqual([[2, 20]])
    d.stop()
  })
})
