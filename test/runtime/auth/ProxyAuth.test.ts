/**
 * ProxyAuth: the users file as it changes under a running worker, with real files, hashes made by the real
 * `htpasswd -B`, and the log captured. `reload()` is called directly (what the poll or SIGHUP does), so the
 * test does not wait for the poll; the clock is a variable.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, unlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { AuthCounters, AuthVerdict } from "../../../src/runtime/auth/Authenticator.ts"
import { GONE_WARN_INTERVAL_MS, ProxyAuth } from "../../../src/runtime/auth/ProxyAuth.ts"
import { AccessLog } from "../../../src/runtime/observe/AccessLog.ts"

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const f of cleanups.splice(0)) f()
})

const setup = () => {
  const dir = mkdtempSync(join(tmpdir(), "hctunnel-proxyauth-"))
  const path = join(dir, "users")
  execFileSync("/usr/bin/htpasswd", ["-bBc", "-C", "4", path, "alice", "secret"], { stdio: "ignore" })
  execFileSync("/usr/bin/htpasswd", ["-bB", "-C", "4", path, "bob", "builder"], { stdio: "ignore" })
  const lines: string[] = []
  const log = new AccessLog({
    format: "text",
    level: "info",
    write: (chunk) => lines.push(...chunk.split("\n").filter((l) => l !== "")),
    batchMs: 0,
  })
  const clock = { now: 0 }
  const counters: AuthCounters = { authOk: 0, authCached: 0, authFailed: 0, authRateLimited: 0, authVerifications: 0 }
  const auth = new ProxyAuth({ path, counters, now: () => clock.now, log, pollMs: 60_000 })
  cleanups.push(() => {
    auth.close()
    rmSync(dir, { recursive: true, force: true })
  })
  /** The written log lines, once what is buffered is out. */
  const logged = (): string[] => {
    log.flush()
    return lines
  }
  const login = (userPass: string): Promise<AuthVerdict> =>
    new Promise((resolve) => {
      const credentials = `Basic ${Buffer.from(userPass).toString("base64")}`
      const now = auth.authenticator.authenticate(credentials, "10.0.0.1", { authVerdict: resolve })
      if (now !== undefined) resolve(now)
    })
  return { path, auth, clock, logged, login }
}

describe("ProxyAuth: an auth file that can no longer be read", () => {
  it("deleted, then replaced by a directory: the users stay and can log in, and one warning says so, at most one a minute", async () => {
    const { path, auth, clock, logged, login } = setup()
    unlinkSync(path)
    auth.reload()
    expect(logged().filter((l) => l.startsWith("WARN"))).toEqual([
      `WARN proxy authentication: cannot read ${path} any more (it was deleted or renamed away): the 2 users read from it before ` +
        "stay in force and can still log in; put a valid file back at that path to change them (a file without entries lets nobody in), or stop the proxy",
    ])
    expect(await login("alice:secret")).toEqual({ _tag: "Authenticated", user: "alice" })
    mkdirSync(path)
    clock.now += 1_000
    auth.reload()
    expect(logged().filter((l) => l.startsWith("WARN"))).toHaveLength(1) // within the minute: counted, not written
    clock.now += GONE_WARN_INTERVAL_MS
    auth.reload()
    const warnings = logged().filter((l) => l.startsWith("WARN"))
    expect(warnings).toHaveLength(2)
    expect(warnings[1]).toMatch(/\(it is a directory now\): the 2 users .* \(1 more such change since the last warning\)$/)
    expect(await login("bob:builder")).toEqual({ _tag: "Authenticated", user: "bob" })
    expect(logged().some((l) => l.startsWith("ERROR"))).toBe(false)
  })

  it("the last user removed (htpasswd -D leaves a file without entries): nobody gets in, with a warning", async () => {
    const { path, auth, logged, login } = setup()
    expect(await login("alice:secret")).toEqual({ _tag: "Authenticated", user: "alice" })
    execFileSync("/usr/bin/htpasswd", ["-D", path, "alice"], { stdio: "ignore" })
    execFileSync("/usr/bin/htpasswd", ["-D", path, "bob"], { stdio: "ignore" })
    auth.reload()
    expect(logged()).toContain(`WARN proxy authentication: ${path} has no user now: every request gets 407 until one is added`)
    expect(await login("alice:secret")).toMatchObject({ _tag: "AuthenticationFailed", reason: "invalid" })
  })
})
