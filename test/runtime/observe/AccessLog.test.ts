import { describe, expect, it } from "vitest"
import type { AccessRecord } from "../../../src/core/actions.ts"
import { AccessLog, BATCH_BYTES, formatJson, formatText } from "../../../src/runtime/observe/AccessLog.ts"
import { until } from "../loopback.ts"

const record: AccessRecord = {
  kind: "http",
  method: "GET",
  target: "http://origin.test/a",
  status: 200,
  bytesFromClient: 80,
  bytesFromOrigin: 1234,
  startedAt: 1000.2,
  endedAt: 1012.7,
  outcome: "ok",
}

const nextTurn = () => new Promise<void>((r) => setImmediate(r))

describe("AccessLog", () => {
  it("formats text lines", () => {
    expect(formatText("127.0.0.1:5000", record)).toBe("127.0.0.1:5000 GET http://origin.test/a 200 80/1234 13ms ok\n")
    expect(formatText("::1:1", { ...record, status: 502, outcome: "origin-error", detail: "refused\nx" })).toBe(
      "::1:1 GET http://origin.test/a 502 80/1234 13ms origin-error refused?x\n",
    )
  })

  it("names the authenticated user: user@client in text (escaped), a user field in JSON", () => {
    expect(formatText("127.0.0.1:5000", { ...record, user: "alice" })).toBe(
      "alice@127.0.0.1:5000 GET http://origin.test/a 200 80/1234 13ms ok\n",
    )
    expect(formatText("127.0.0.1:5000", { ...record, user: "a b@c" })).toMatch(/^a%20b%40c@127\.0\.0\.1:5000 /)
    expect(JSON.parse(formatJson("127.0.0.1:5000", { ...record, user: "alice" }, 1, "t"))).toMatchObject({
      client: "127.0.0.1:5000",
      user: "alice",
    })
    expect(JSON.parse(formatJson("127.0.0.1:5000", record, 1, "t"))).not.toHaveProperty("user")
  })

  it("batches the lines of one turn into one write", async () => {
    const writes: Array<string> = []
    const log = new AccessLog({ format: "text", level: "info", write: (s) => writes.push(s) })
    log.access("a", record)
    log.access("b", record)
    expect(writes).toEqual([])
    await nextTurn()
    expect(writes.length).toBe(1)
    expect(writes[0]!.split("\n").length).toBe(3)
  })

  it("with batchMs, its timer writes the batch", async () => {
    const writes: Array<string> = []
    const log = new AccessLog({ format: "text", level: "info", write: (s) => writes.push(s), batchMs: 30 })
    log.access("a", record)
    log.access("b", record)
    await until("the batch to be written", () => writes.length > 0)
    expect(writes).toEqual([formatText("a", record) + formatText("b", record)])
  })

  it("with batchMs, collects the lines of several turns until the timer, and writes at once past BATCH_BYTES", async () => {
    const writes: Array<string> = []
    // A timer far beyond the test: only BATCH_BYTES or flush() can write.
    const log = new AccessLog({ format: "text", level: "info", write: (s) => writes.push(s), batchMs: 600_000 })
    log.access("a", record)
    await nextTurn()
    log.access("b", record)
    await nextTurn()
    expect(writes).toEqual([])
    log.flush()
    expect(writes.length).toBe(1)
    expect(writes[0]!.split("\n").length).toBe(3)
    const lines = Math.ceil(BATCH_BYTES / formatText("c", record).length)
    for (let i = 0; i < lines; i++) log.access("c", record)
    expect(writes.length).toBe(2) // written at once, no timer
    expect(writes[1]!.length).toBeGreaterThanOrEqual(BATCH_BYTES)
    log.flush()
    expect(writes.length).toBe(2)
  })

  it("writes one JSON object per line", async () => {
    const writes: Array<string> = []
    const log = new AccessLog({ format: "json", level: "debug", worker: 3, write: (s) => writes.push(s) })
    log.access("127.0.0.1:1", { ...record, detail: "why" })
    log.flush()
    const obj = JSON.parse(writes[0]!)
    expect(obj).toMatchObject({ worker: 3, client: "127.0.0.1:1", method: "GET", status: 200, durationMs: 13, detail: "why" })
    expect(typeof obj.time).toBe("string")
  })

  it("respects the level: access lines are info", async () => {
    const writes: Array<string> = []
    const log = new AccessLog({ format: "text", level: "warn", write: (s) => writes.push(s) })
    log.access("a", record)
    log.message("info", "hidden")
    log.message("warn", "shown")
    log.flush()
    expect(writes).toEqual(["WARN shown\n"])
    const none = new AccessLog({ format: "text", level: "none", write: (s) => writes.push(s) })
    none.message("error", "x")
    none.flush()
    expect(writes.length).toBe(1)
  })
})
