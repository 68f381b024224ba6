/**
 * `--allow-to` / `--deny-to` on every layer: repeated flags, comma-separated env vars (port lists keep
 * their commas), JSON arrays, and a one-line error naming the flag for a bad rule.
 */
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { ConfigError, type ConfigInputs, type HctunnelConfig, loadConfig } from "../../src/cli/config.ts"

const load = (inputs: Partial<ConfigInputs>): HctunnelConfig | ReadonlyArray<string> => {
  const exit = Effect.runSyncExit(loadConfig({ flags: {}, env: {}, ...inputs }))
  if (Exit.isSuccess(exit)) return exit.value
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || !(error.error instanceof ConfigError)) throw new Error(`unexpected failure: ${String(exit.cause)}`)
  return error.error.problems
}
const rules = (inputs: Partial<ConfigInputs>) => {
  const r = load(inputs)
  if (Array.isArray(r)) throw new Error(r.join("\n"))
  const c = r as HctunnelConfig
  return { allowTo: c.allowTo, denyTo: c.denyTo }
}

describe("destination rules in the configuration", () => {
  it("default to none", () => {
    expect(rules({})).toEqual({ allowTo: [], denyTo: [] })
  })
  it("repeated flags, with port lists", () => {
    expect(rules({ flags: { allowTo: ["10.0.0.0/8:80,443", "[fd00::/8]:443"], denyTo: ["*:25"] } })).toEqual({
      allowTo: ["10.0.0.0/8:80,443", "[fd00::/8]:443"],
      denyTo: ["*:25"],
    })
  })
  it("comma-separated env vars", () => {
    expect(
      rules({ env: { HCTUNNEL_ALLOW_TO: "127.0.0.0/8:22,8000-8080, intranet.example", HCTUNNEL_DENY_TO: "*:25,*.ads.example" } }),
    ).toEqual({
      allowTo: ["127.0.0.0/8:22,8000-8080", "intranet.example"],
      denyTo: ["*:25", "*.ads.example"],
    })
  })
  it("JSON arrays in the file", () => {
    const file = { name: "h.json", text: JSON.stringify({ allowTo: ["192.168.0.0/16"], denyTo: ["*:25", "db.example:5432,5433"] }) }
    expect(rules({ file })).toEqual({ allowTo: ["192.168.0.0/16"], denyTo: ["*:25", "db.example:5432,5433"] })
  })
  it.each([
    [{ flags: { allowTo: ["10.0.0.0/33"] } }, /^--allow-to 10\.0\.0\.0\/33: .*prefix length/],
    [{ flags: { denyTo: ["*:ssh"] } }, /^--deny-to \*:ssh: .*"ssh" is not a port/],
    [{ env: { HCTUNNEL_DENY_TO: "fd00::/8:443" } }, /^HCTUNNEL_DENY_TO=fd00::\/8:443: .*brackets/],
    [{ file: { name: "h.json", text: JSON.stringify({ allowTo: "127.1" }) } }, /^h\.json: "allowTo": .*IPv4 address in full/],
    [{ file: { name: "h.json", text: JSON.stringify({ allowTo: [42] }) } }, /^h\.json: "allowTo": .*not a destination rule/],
  ])("a bad rule is one line naming where it came from (%#)", (inputs, message) => {
    const r = load(inputs as Partial<ConfigInputs>)
    expect(Array.isArray(r)).toBe(true)
    const problems = r as ReadonlyArray<string>
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(message)
    expect(problems[0]).not.toMatch(/\n/)
  })
})
