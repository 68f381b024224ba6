/**
 * What a reload does with the configuration built again (src/cli/reload-plan.ts planReload): all of it
 * or none of it, and the result judged by the start-up safety rule (issue 17 item 1). The configurations
 * here are data: an exposed listen address is never bound.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { checkSafety, loadConfig } from "../../src/cli/config.ts"
import { planReload } from "../../src/cli/reload-plan.ts"

const load = (file: Record<string, unknown>) =>
  Effect.runSync(loadConfig({ flags: {}, env: {}, file: { name: "c.json", text: JSON.stringify(file) } }))
/** A configuration as it runs: loaded and through the safety rule, as at start-up. */
const running = (file: Record<string, unknown>) => Effect.runSync(checkSafety(load(file)))
const plan = (from: Record<string, unknown>, to: Record<string, unknown>) =>
  Effect.runSync(Effect.result(planReload(running(from), load(to))))

describe("planReload", () => {
  it("carries the live settings when only they changed", () => {
    const r = plan({}, { allow: ["10.0.0.0/8"], via: "edge", idleTimeout: "1m", logLevel: "warn", shutdownGrace: "3s" })
    if (r._tag !== "Success") throw new Error(r.failure.message)
    const { settings, graceMs } = r.success.plan
    expect(settings.allow).toEqual(["10.0.0.0/8"])
    expect(settings.via).toBe("edge")
    expect(settings.limits.idleTimeout).toBe(60_000)
    expect(settings.logLevel).toBe("warn")
    expect(settings.authFile).toBeUndefined()
    expect(Object.hasOwn(settings, "authFile")).toBe(true) // present, so that removing it turns authentication off
    expect(graceMs).toBe(3000)
  })

  it("refuses the whole reload, naming every setting that needs a restart", () => {
    const r = plan(
      {},
      {
        allow: ["10.0.0.0/8"],
        listen: ["127.0.0.1:9999"],
        workers: 3,
        hosts: { a: "127.0.0.1" },
        dnsServers: ["127.0.0.1:53"],
        statsInterval: "1s",
      },
    )
    if (r._tag !== "Failure") throw new Error("applied")
    expect(r.failure.message).toBe(
      "--listen/--port, --workers, --hosts, --dns-server and --stats-interval changed, and only a restart applies them: nothing was applied (restart hctunnel to use the new file, or undo that change and reload again)",
    )
  })

  it("authFile is reloadable: added, with the widened allow-list it justifies, in one step", () => {
    const exposed = { listen: ["0.0.0.0:3128"] }
    const r = plan({ ...exposed, allow: ["10.0.0.0/8"] }, { ...exposed, authFile: "users.htpasswd" })
    if (r._tag !== "Success") throw new Error(r.failure.message)
    expect(r.success.plan.settings.allow).toEqual(["0.0.0.0/0", "::/0"])
    expect(r.success.plan.settings.authFile).toMatch(/\/users\.htpasswd$/) // absolute, for the workers
    // ... and removed: authentication off, with an allow-list of its own.
    const off = plan({ ...exposed, authFile: "users.htpasswd" }, { ...exposed, allow: ["10.0.0.0/8"] })
    if (off._tag !== "Success") throw new Error(off.failure.message)
    expect(off.success.plan.settings).toMatchObject({ allow: ["10.0.0.0/8"], authFile: undefined })
  })

  it("judges the result by the safety rule: a reload that would leave an exposed proxy open is refused", () => {
    const exposed = { listen: ["0.0.0.0:3128"] }
    const r = plan({ ...exposed, authFile: "users.htpasswd" }, exposed)
    if (r._tag !== "Failure") throw new Error("applied")
    expect(r.failure.message).toMatch(
      /^invalid configuration: refusing to listen on 0\.0\.0\.0:3128 \(not a loopback address\) without an explicit client allow-list/,
    )
    // The audit's case: allow replaced by authFile together with a setting that needs a restart. Nothing
    // of it applies (before, the widened allow-list did and authFile waited for a restart: an open proxy).
    const half = plan({ ...exposed, allow: ["10.0.0.0/8"] }, { ...exposed, authFile: "users.htpasswd", workers: 9 })
    if (half._tag !== "Failure") throw new Error("applied")
    expect(half.failure.message).toMatch(/^--workers changed, and only a restart applies it: nothing was applied/)
  })
})
