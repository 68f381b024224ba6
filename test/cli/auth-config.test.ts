/** --auth-file: the setting on every layer, the public-listener rule, and start-up errors from the built CLI. */
import { Effect, Exit } from "effect"
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { checkSafety, type ConfigInputs, loadConfig } from "../../src/cli/config.ts"

const load = (inputs: Partial<ConfigInputs>) =>
  Effect.runSyncExit(loadConfig({ flags: {}, env: {}, ...inputs }).pipe(Effect.flatMap(checkSafety)))
const good = (inputs: Partial<ConfigInputs>) => {
  const exit = load(inputs)
  if (!Exit.isSuccess(exit)) throw new Error(String(exit.cause))
  return exit.value
}

describe("authFile setting", () => {
  it('is off by default, and set by --auth-file, HCTUNNEL_AUTH_FILE or "authFile"', () => {
    expect(good({}).authFile).toBeUndefined()
    expect(good({ flags: { authFile: "/etc/hctunnel/users" } }).authFile).toBe("/etc/hctunnel/users")
    expect(good({ env: { HCTUNNEL_AUTH_FILE: "users" } }).authFile).toBe("users")
    expect(good({ file: { name: "c.json", text: JSON.stringify({ authFile: "f" }) } }).authFile).toBe("f")
  })
  it("an empty path is an error naming the flag", () => {
    const exit = load({ file: { name: "c.json", text: JSON.stringify({ authFile: "" }) } })
    expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/c\.json: "authFile": "": "" is not a file path/)
  })
  it("a non-loopback listener with --auth-file needs no --allow: every address may try, users get through", () => {
    const config = good({ flags: { listen: ["0.0.0.0:3128"], authFile: "users" } })
    expect(config.allow).toEqual(["0.0.0.0/0", "::/0"])
    // An explicit --allow still narrows it.
    expect(good({ flags: { listen: ["0.0.0.0:3128"], authFile: "users", allow: ["10.0.0.0/8"] } }).allow).toEqual(["10.0.0.0/8"])
    // Without either, the refusal mentions both ways.
    const refused = load({ flags: { listen: ["0.0.0.0:3128"] } })
    expect(Exit.isFailure(refused) && String(refused.cause)).toMatch(/--auth-file/)
  })
  it("so does a loopback listener behind a load balancer (PROXY protocol): its clients are remote", () => {
    expect(good({ flags: { proxyProtocolFrom: ["127.0.0.1"], authFile: "users" } }).allow).toEqual(["0.0.0.0/0", "::/0"])
    // A loopback listener without PROXY protocol keeps the loopback default (it serves this machine only).
    expect(good({ flags: { authFile: "users" } }).allow).toEqual(["127.0.0.0/8", "::1/128"])
  })
})

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)))
const CLI = resolve(ROOT, "dist/cli.js")
const cli = (args: ReadonlyArray<string>) => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^HCTUNNEL_|_proxy$/i.test(k)) env[k] = v
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe("hctunnel --auth-file: a bad file stops the start with one readable message", () => {
  it("a missing file says how to create one", () => {
    expect(existsSync(CLI)).toBe(true)
    const r = cli(["--port", "0", "--auth-file", "/nonexistent/users"])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(
      "hctunnel: cannot read the auth file /nonexistent/users (--auth-file): no such file (create it with: htpasswd -B -c /nonexistent/users USER)\n",
    )
    expect(r.stdout).not.toMatch(/listening/)
  })
  it("an Apache MD5 entry (htpasswd's default) names the line and the bcrypt command", () => {
    const dir = mkdtempSync(join(tmpdir(), "hctunnel-auth-"))
    const path = join(dir, "users")
    writeFileSync(path, spawnSync("/usr/bin/htpasswd", ["-nbm", "bob", "pw"], { encoding: "utf8" }).stdout)
    const r = cli(["--port", "0", "--auth-file", path])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`hctunnel: invalid auth file (--auth-file): ${path}: line 1 (user "bob") has an Apache MD5 ($apr1$) hash`)
    expect(r.stderr).toContain(`htpasswd -B ${path} bob`)
    expect(r.stderr).not.toMatch(/\n {4}at /) // no stack trace
  })
  it("--help lists the flag with its env var", () => {
    const r = cli(["--help"])
    expect(r.stdout).toMatch(/--auth-file <path>[\s\S]*HCTUNNEL_AUTH_FILE/)
  })
})
