import { describe, expect, it } from "vitest"
import type { Timed } from "../../../src/runtime/timers/Deadlines.ts"
import { RefusalLog } from "../../../src/runtime/access/RefusalLog.ts"

/** A RefusalLog writing into an array, with its window end recorded instead of armed on a timer. */
const make = (maxAddresses?: number) => {
  const lines: Array<string> = []
  const armed: Array<number> = []
  let entry: Timed | undefined
  const log = new RefusalLog({
    write: (l) => lines.push(l),
    arm: (e, at) => {
      entry = e
      armed.push(at)
    },
    intervalMs: 10_000,
    ...(maxAddresses === undefined ? {} : { maxAddresses }),
  })
  const closeWindow = (now: number) => entry?.onDeadline(now)
  return { log, lines, armed, closeWindow }
}

describe("RefusalLog", () => {
  it("writes the first refusal of an address at once and counts the others until the window closes", () => {
    const { log, lines, armed, closeWindow } = make()
    for (let i = 0; i < 5; i++) log.refused("192.0.2.7", 40_000 + i, 1_000 + i)
    expect(lines).toEqual(["refused client 192.0.2.7:40000: not in the allow-list"])
    expect(armed).toEqual([11_000])
    closeWindow(11_000)
    expect(lines.slice(1)).toEqual(["refused 4 more connections from 1 address not in the allow-list in the last 10s"])
  })

  it("gives each address its own first line, and one summary for all the counted ones", () => {
    const { log, lines, closeWindow } = make()
    log.refused("192.0.2.1", 1, 0)
    log.refused("192.0.2.2", 2, 0)
    log.refused("192.0.2.1", 3, 0)
    log.refused("192.0.2.2", 4, 0)
    log.refused("192.0.2.2", 5, 0)
    closeWindow(10_000)
    expect(lines).toEqual([
      "refused client 192.0.2.1:1: not in the allow-list",
      "refused client 192.0.2.2:2: not in the allow-list",
      "refused 3 more connections from 2 addresses not in the allow-list in the last 10s",
    ])
  })

  it("a window with nothing counted closes silently; the next refusal opens a new window and is written again", () => {
    const { log, lines, armed, closeWindow } = make()
    log.refused("192.0.2.1", 1, 0)
    closeWindow(10_000)
    log.refused("192.0.2.1", 2, 20_000)
    expect(lines).toEqual(["refused client 192.0.2.1:1: not in the allow-list", "refused client 192.0.2.1:2: not in the allow-list"])
    expect(armed).toEqual([10_000, 30_000])
  })

  it("past maxAddresses distinct addresses, new ones are counted, not written", () => {
    const { log, lines, closeWindow } = make(2)
    for (let i = 0; i < 10; i++) log.refused(`192.0.2.${i}`, 1, 0)
    expect(lines).toHaveLength(2)
    closeWindow(10_000)
    expect(lines[2]).toBe("refused 8 more connections from 8 addresses not in the allow-list in the last 10s")
  })
})
