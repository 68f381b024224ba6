/**
 * The parent-proxy settings through the compiled command: a bad value exits 1 with one sentence naming
 * the flag, and a password given on the command line appears in no output.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { beforeAll, describe, expect, it } from "vitest"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const CLI = resolve(ROOT, "dist/cli.js")
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^HCTUNNEL_|_proxy$/i.test(k)) env[k] = v
  return { ...env, ...extra }
}
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: cleanEnv(env), encoding: "utf8", timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: run \`npm run build\` (npm test does it first)`)
})

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
