/**
 * The parent-proxy settings: --upstream, --no-upstream, and the parent's credentials from exactly one
 * place; the password never appears in a message.
 */
import { Effect, Exit } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ConfigError, type ConfigInputs, type HctunnelConfig, loadConfig } from "../../src/cli/config.ts"
import { redactUrl } from "../../src/cli/upstream-config.ts"

const readFile = (path: string) => {
  try {
    return { ok: true as const, value: readFileSync(path, "utf8") }
  } catch {
    return { ok: false as const, message: `--upstream-credentials-file ${path}: cannot read it` }
  }
}
const load = (inputs: Partial<ConfigInputs>): { ok: true; config: HctunnelConfig } | { ok: false; problems: ReadonlyArray<string> } => {
  const exit = Effect.runSyncExit(loadConfig({ flags: {}, env: {}, readFile, ...inputs }))
  if (Exit.isSuccess(exit)) return { ok: true, config: exit.value }
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || !(error.error instanceof ConfigError)) throw new Error(`unexpected failure: ${String(exit.cause)}`)
  return { ok: false, problems: error.error.problems }
}
const good = (inputs: Partial<ConfigInputs>): HctunnelConfig => {
  const r = load(inputs)
  if (!r.ok) throw new Error(r.problems.join("\n"))
  return r.config
}
const problem = (inputs: Partial<ConfigInputs>): string => {
  const r = load(inputs)
  if (r.ok) throw new Error(`expected a configuration error, got ${JSON.stringify(r.config)}`)
  expect(r.problems).toHaveLength(1)
  return r.problems[0]!
}
const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hctunnel-upstream-"))
  await writeFile(join(dir, "creds"), "alice:pa:ss wörd\n")
  await writeFile(join(dir, "two-lines"), "alice:x\nbob:y\n")
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe("--upstream", () => {
  it("is off by default", () => {
    const c = good({})
    expect(c.upstream).toBeUndefined()
    expect(c.noUpstream).toEqual([])
  })

  it("takes http://host:port, host:port, [v6]:port; credentials in the URL become Basic", () => {
    expect(good({ flags: { upstream: "http://Proxy.Internal:3128" } }).upstream).toEqual({ host: "proxy.internal", port: 3128 })
    expect(good({ env: { HCTUNNEL_UPSTREAM: "127.0.0.1:3128/" } }).upstream).toEqual({ host: "127.0.0.1", port: 3128 })
    expect(good({ file: { name: "f.json", text: '{"upstream": "http://[::1]:8080"}' } }).upstream).toEqual({ host: "::1", port: 8080 })
    expect(good({ flags: { upstream: "http://bob:p%40ss@10.0.0.1:3128" } }).upstream).toEqual({
      host: "10.0.0.1",
      port: 3128,
      authorization: basic("bob:p@ss"),
    })
  })

  it("refuses what it cannot use, in one line naming the flag, never showing the password", () => {
    const cases: ReadonlyArray<readonly [string, RegExp]> = [
      ["http://bob:hunter2@proxy:notaport", /^--upstream http:\/\/bob:\*\*\*@proxy:notaport: the port must be/],
      ["https://bob:hunter2@proxy:443", /only http:\/\/ parent proxies/],
      ["http://bob:hunter2@proxy", /the port is required/],
      ["socks5://proxy:1080", /only http:\/\//],
      ["http://:3128", /the host is missing/],
      ["http://proxy:3128/path", /is not a proxy URL/],
    ]
    for (const [value, message] of cases) {
      const p = problem({ flags: { upstream: value } })
      expect(p, value).toMatch(message)
      expect(p).not.toContain("hunter2")
      expect(p).not.toContain("\n")
    }
    expect(problem({ env: { HCTUNNEL_UPSTREAM: "http://bob:hunter2@proxy:x" } })).toMatch(
      /^HCTUNNEL_UPSTREAM=http:\/\/bob:\*\*\*@proxy:x: /,
    )
    expect(problem({ file: { name: "f.json", text: '{"upstream": "http://bob:hunter2@proxy:x"}' } })).not.toContain("hunter2")
  })

  it("redacts a URL's password wherever it is shown", () => {
    expect(redactUrl("http://bob:hunter2@proxy:3128")).toBe("http://bob:***@proxy:3128")
    expect(redactUrl("bob:hunter2@proxy:3128")).toBe("bob:***@proxy:3128")
    expect(redactUrl("http://proxy:3128")).toBe("http://proxy:3128")
    expect(redactUrl("http://bob@proxy:3128")).toBe("http://bob@proxy:3128")
    expect(redactUrl("http://bob:p@ss/w@rd@proxy:3128")).toBe("http://bob:***@proxy:3128")
    const p = problem({ flags: { upstream: "http://bob:p@ss/w@rd@proxy:3128" } })
    expect(p).not.toMatch(/p@ss|w@rd/)
  })
})

describe("the parent's credentials", () => {
  it("come from a file (one line user:password; the password may hold colons)", () => {
    const c = good({ flags: { upstream: "http://127.0.0.1:3128", upstreamCredentialsFile: join(dir, "creds") } })
    expect(c.upstream?.authorization).toBe(basic("alice:pa:ss wörd"))
  })

  it("or from HCTUNNEL_UPSTREAM_CREDENTIALS", () => {
    const c = good({ flags: { upstream: "http://127.0.0.1:3128" }, env: { HCTUNNEL_UPSTREAM_CREDENTIALS: "carol:secret" } })
    expect(c.upstream?.authorization).toBe(basic("carol:secret"))
  })

  it("from one place only, and only with a parent", () => {
    expect(problem({ flags: { upstream: "http://a:b@127.0.0.1:3128" }, env: { HCTUNNEL_UPSTREAM_CREDENTIALS: "c:d" } })).toMatch(
      /given twice/,
    )
    expect(problem({ env: { HCTUNNEL_UPSTREAM_CREDENTIALS: "c:d" } })).toMatch(/no --upstream/)
  })

  it("a bad or missing file is a one-line error that never shows the file's text", () => {
    const p = problem({ flags: { upstream: "http://127.0.0.1:3128", upstreamCredentialsFile: join(dir, "two-lines") } })
    expect(p).toMatch(/must hold one line user:password/)
    expect(p).not.toContain("alice")
    expect(problem({ flags: { upstream: "http://127.0.0.1:3128", upstreamCredentialsFile: join(dir, "nope") } })).toMatch(/cannot read it/)
    expect(problem({ flags: { upstream: "http://127.0.0.1:3128" }, env: { HCTUNNEL_UPSTREAM_CREDENTIALS: "nocolon" } })).not.toContain(
      'nocolon"',
    )
  })
})

describe("--no-upstream", () => {
  it("takes a list (flag repeated, env comma-separated, file array)", () => {
    expect(good({ flags: { noUpstream: [".example.com", "10.0.0.0/8"] } }).noUpstream).toEqual([".example.com", "10.0.0.0/8"])
    expect(good({ env: { HCTUNNEL_NO_UPSTREAM: "a.test, [::1]:443,*" } }).noUpstream).toEqual(["a.test", "[::1]:443", "*"])
    expect(good({ file: { name: "f.json", text: '{"noUpstream": ["b.test:8080"]}' } }).noUpstream).toEqual(["b.test:8080"])
  })

  it("refuses a bad entry naming it", () => {
    expect(problem({ flags: { noUpstream: ["ok.test", "bad entry"] } })).toMatch(
      /^--no-upstream ok\.test,bad entry: "bad entry" is not a no-upstream entry/,
    )
  })
})
