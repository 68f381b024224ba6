import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Exit, Logger } from "effect"
import { describe, expect, it } from "vitest"
import { defaultLimits } from "../../src/core/limits.ts"
import { ListenError, supervise } from "../../src/runtime/supervisor.ts"
import { describeListenFailure } from "../../src/cli/wording.ts"
import { cli, ROOT } from "./support/run-cli.ts"

/** No stack frame, minified or not, and no printed Effect Cause. */
const noStack = (text: string) => {
  expect(text).not.toMatch(/^\s+at /m)
  expect(text).not.toMatch(/Cause\(|\bFail\(|WorkerError/)
}

describe("--allow with host bits set", () => {
  it("as a flag: exit 1, the flag, the reason and the fix", () => {
    const r = cli(["--allow", "10.0.0.1/8", "--port", "0"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('--allow 10.0.0.1/8: "10.0.0.1/8" is not a CIDR')
    expect(r.stderr).toContain("did you mean 10.0.0.0/8?")
    expect(r.stdout).not.toMatch(/listening/)
    noStack(r.stderr)
  })

  it("IPv6, from the environment", () => {
    const r = cli(["--port", "0"], { HCTUNNEL_ALLOW: "127.0.0.0/8,fd00::1/8" })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("HCTUNNEL_ALLOW=127.0.0.0/8,fd00::1/8")
    expect(r.stderr).toContain("did you mean fd00::/8?")
    noStack(r.stderr)
  })

  it("from a config file", () => {
    const dir = mkdtempSync(join(tmpdir(), "hctunnel-cfg-"))
    const file = join(dir, "h.json")
    writeFileSync(file, JSON.stringify({ allow: ["192.168.1.1/16"] }))
    const r = cli(["--config", file, "--port", "0"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${file}: "allow"`)
    expect(r.stderr).toContain("did you mean 192.168.0.0/16?")
    noStack(r.stderr)
  })

  it("a prefix too long names the allowed range", () => {
    const r = cli(["--allow", "1.2.3.4/40", "--port", "0"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("the prefix length must be 0..32 for an IPv4 address")
    noStack(r.stderr)
  })
})

describe("a worker that cannot start", () => {
  it("makes the supervisor report the worker's own message, not a listen failure", { timeout: 60_000 }, async () => {
    const workerUrl = pathToFileURL(resolve(ROOT, "dist/worker.js"))
    expect(existsSync(workerUrl), "dist/worker.js (npm test builds it first)").toBe(true)
    const logs: string[] = []
    const exit = await Effect.runPromiseExit(
      supervise({
        // A setting the configuration check would refuse, given to the real worker directly.
        init: {
          listen: [{ host: "127.0.0.1", port: 0 }],
          limits: defaultLimits,
          via: "t",
          allow: ["10.0.0.1/8"],
          logFormat: "text",
          logLevel: "none",
          hosts: {},
          statsIntervalMs: 60_000,
        },
        workers: 2,
        graceMs: 200,
        onReady: () => Effect.void,
        printStats: () => Effect.void,
        workerUrl,
        signals: false,
      }).pipe(Effect.provide(Logger.layer([Logger.make((o) => void logs.push(String(o.message)))]))),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const reason = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
    const error = reason?._tag === "Fail" ? (reason.error as ListenError) : undefined
    expect(error).toBeInstanceOf(ListenError)
    const message = error === undefined ? "" : describeListenFailure(error)
    expect(message).toBe(
      'a worker could not start: invalid CIDR "10.0.0.1/8": the address has host bits set (bits after the first 8 must be zero) (did you mean 10.0.0.0/8?)',
    )
    noStack(message)
    noStack(logs.join("\n"))
  })
})
