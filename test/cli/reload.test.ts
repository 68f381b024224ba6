/** What a reload changes and what it names as needing a restart (src/cli/main.ts reloadPlan). */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfig } from "../../src/cli/config.ts"
import { reloadPlan } from "../../src/cli/reload-plan.ts"

const load = (file: Record<string, unknown>) =>
  Effect.runSync(loadConfig({ flags: {}, env: {}, file: { name: "c.json", text: JSON.stringify(file) } }))

describe("reloadPlan", () => {
  it("carries the live settings and names nothing when only they changed", () => {
    const plan = reloadPlan(
      load({}),
      load({ allow: ["10.0.0.0/8"], via: "edge", idleTimeout: "1m", logLevel: "warn", shutdownGrace: "3s" }),
    )
    expect(plan.settings.allow).toEqual(["10.0.0.0/8"])
    expect(plan.settings.via).toBe("edge")
    expect(plan.settings.limits.idleTimeout).toBe(60_000)
    expect(plan.settings.logLevel).toBe("warn")
    expect(plan.graceMs).toBe(3000)
    expect(plan.needsRestart).toEqual([])
  })

  it("names every setting that needs a restart", () => {
    const plan = reloadPlan(
      load({}),
      load({ listen: ["127.0.0.1:9999"], workers: 3, hosts: { a: "127.0.0.1" }, dnsServers: ["127.0.0.1:53"], statsInterval: "1s" }),
    )
    expect(plan.needsRestart).toEqual(["--listen/--port", "--workers", "--hosts", "--dns-server", "--stats-interval"])
  })
})
