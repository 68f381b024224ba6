/** Replays every conformance vector in test/vectors against the reference Postman. */
import { readdirSync, readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { defaultLimits } from "../../src/core/limits.ts"
import { Postman } from "../../src/core/postman.ts"
import { actionToJson, eventFromJson, type Vector } from "./vectors.ts"

const dir = new URL("../vectors/", import.meta.url)
const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort()

describe("conformance vectors", () => {
  it("exist", () => {
    expect(files.length).toBeGreaterThanOrEqual(10)
  })
  for (const file of files) {
    const vector = JSON.parse(readFileSync(new URL(file, dir), "utf8")) as Vector
    it(`${file}: ${vector.name}`, () => {
      const postman = new Postman({ limits: { ...defaultLimits, ...vector.limits }, via: vector.via, auth: vector.auth === true })
      vector.steps.forEach((step, index) => {
        const actions = "call" in step
          ? step.call === "start" ? postman.start(step.now) : step.call === "shutdown" ? postman.shutdown(step.now) : postman.abort(step.now, "vector")
          : postman.handle(eventFromJson(step.event), step.now)
        // Log records are compared on the fields the vector lists (detail is prose).
        const got = actions.map(actionToJson).map((have, i) => {
          const want = step.expect[i]
          if (have._tag !== "Log" || want?._tag !== "Log") return have
          const record = have["record"] as Record<string, unknown>
          const wanted = want["record"] as Record<string, unknown>
          return { _tag: "Log", record: Object.fromEntries(Object.keys(wanted).map((k) => [k, record[k]])) }
        })
        expect(got, `step ${index}`).toEqual(step.expect)
      })
    })
  }
})
