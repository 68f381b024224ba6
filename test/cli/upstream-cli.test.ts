import { beforeAll, describe, expect, it } from "vitest"
import { cli, requireBuild } from "./support/run-cli.ts"

beforeAll(requireBuild)

describe("hctunnel --upstream", () => {
  it("a bad URL: exit 1, one sentence naming the flag, the password hidden", () => {
    const r = cli(["--upstream", "https://bob:hunter2@proxy.test:3128"])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /^hctunnel: invalid configuration: --upstream https:\/\/bob:\*\*\*@proxy\.test:3128: only http:\/\/ parent proxies are supported/,
    )
    expect(r.stderr + r.stdout).not.toContain("hunter2")
    expect(r.stderr).not.toMatch(/\n\s+at /) // no stack trace
  })

  it("credentials in the env var without a parent: exit 1, the credentials not shown", () => {
    const r = cli([], { HCTUNNEL_UPSTREAM_CREDENTIALS: "bob:hunter2" })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/HCTUNNEL_UPSTREAM_CREDENTIALS set, but no --upstream/)
    expect(r.stderr).not.toContain("hunter2")
  })

  it("a bad --no-upstream entry names it", () => {
    const r = cli(["--upstream", "http://127.0.0.1:3128", "--no-upstream", "*.exa mple.com"])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/--no-upstream \*\.exa mple\.com: "\*\.exa mple\.com" is not a no-upstream entry/)
  })

  it("--help lists the settings with their env vars and never a password", () => {
    const r = cli(["--help"])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/--upstream <http:\/\/\[user:password@\]host:port>[\s\S]*Env: HCTUNNEL_UPSTREAM/)
    expect(r.stdout).toMatch(/--no-upstream[\s\S]*Env: HCTUNNEL_NO_UPSTREAM/)
    expect(r.stdout).toMatch(/--upstream-credentials-file[\s\S]*Env: HCTUNNEL_UPSTREAM_CREDENTIALS_FILE/)
  })
})
