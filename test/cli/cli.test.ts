/**
 * The compiled command, run as a user runs it: `node dist/cli.js ...` (npm test builds dist first).
 * --help lists every flag with its default and env var; --version prints package.json's version; bad
 * input exits 1 with a sentence; a real start prints the start-up line, answers SIGUSR1 with one stats
 * line and exits 0 on SIGTERM.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { CONFIG_FLAG, settings } from "../../src/cli/settings.ts"
import { cleanEnv } from "../e2e/support/env.ts"
import { CLI, cli, requireBuild, ROOT } from "./support/run-cli.ts"

const pkg = JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8")) as { version: string }

beforeAll(requireBuild)

describe("hctunnel --help", () => {
  it("exits 0 and lists every flag with its default and its env var", () => {
    const r = cli(["--help"])
    expect(r.code, r.stderr).toBe(0)
    for (const s of settings) {
      const line = r.stdout.split("\n").find((l) => l.trimStart().startsWith(`--${s.flag}`))
      expect(line, `--${s.flag} in --help`).toBeDefined()
      expect(line).toContain(`Default: ${s.defaultText}`)
      expect(line).toContain(`Env: ${s.env}`)
    }
    expect(r.stdout).toMatch(new RegExp(`--${CONFIG_FLAG.flag}, -${CONFIG_FLAG.alias}`))
    expect(r.stdout).toContain("--version")
    expect(r.stdout).toContain("Default: 127.0.0.1:8888")
    expect(r.stdout).toContain("Default: 127.0.0.0/8,::1/128")
  })

  it("has exactly one --log-level: ours, with our levels", () => {
    const r = cli(["--help"])
    expect(r.stdout.match(/--log-level/g)).toHaveLength(1)
    expect(r.stdout).toContain("--log-level <debug|info|warn|error|none>")
  })
})

describe("hctunnel --version", () => {
  it("prints the package version", () => {
    const r = cli(["--version"])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe(`hctunnel v${pkg.version}`)
  })
})

describe("bad input: one sentence on stderr, exit 1, nothing started", () => {
  it("--port 70000", () => {
    const r = cli(["--port", "70000"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('--port 70000: "70000" is not a valid port: expected an integer from 0 to 65535')
    expect(r.stdout).not.toMatch(/listening/)
  })
  it("a bad env var names the variable", () => {
    const r = cli([], { HCTUNNEL_WORKERS: "100" })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("HCTUNNEL_WORKERS=100")
  })
  it("a public listener without --allow is refused, with an explanation", () => {
    const r = cli(["--listen", "0.0.0.0:3128"])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0:3128 .*--allow/)
  })
  it("a config file with bad JSON is named", () => {
    const dir = mkdtempSync(join(tmpdir(), "hctunnel-cli-"))
    const path = join(dir, "broken.json")
    writeFileSync(path, '{"workers": 2,')
    const r = cli(["--config", path])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${path} is not valid JSON`)
  })
  it("a config file with an unknown key", () => {
    const dir = mkdtempSync(join(tmpdir(), "hctunnel-cli-"))
    const path = join(dir, "typo.json")
    writeFileSync(path, JSON.stringify({ wokers: 2 }))
    const r = cli([], { HCTUNNEL_CONFIG: path })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${path}: unknown key "wokers"`)
  })
  it("a missing config file", () => {
    const r = cli(["--config", "/nonexistent/hctunnel.json"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("cannot read the config file /nonexistent/hctunnel.json: no such file")
  })
  it("an unknown flag", () => {
    const r = cli(["--bogus"])
    expect(r.code).toBe(1)
    expect(r.stdout + r.stderr).toContain("Unrecognized flag: --bogus")
  })
})

describe("a real start", () => {
  it("port 0 with 2 workers: one port for all, start-up line, SIGUSR1 stats, SIGTERM exit 0", { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [CLI, "--port", "0", "--workers", "2"], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once("exit", (code, signal) => r({ code, signal })),
    )
    const waitFor = async (re: RegExp, ms: number): Promise<RegExpExecArray> => {
      const until = Date.now() + ms
      for (;;) {
        const m = re.exec(out)
        if (m !== null) return m
        if (Date.now() > until || child.exitCode !== null) throw new Error(`no ${String(re)} in:\n${out}\n${err}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    try {
      const m = await waitFor(
        /hctunnel (\S+) listening on 127\.0\.0\.1:(\d+) with 2 workers — try: curl -x http:\/\/127\.0\.0\.1:(\d+) http:\/\/example\.com/,
        40_000,
      )
      expect(m[1]).toBe(pkg.version)
      expect(Number(m[2])).toBeGreaterThan(0)
      expect(m[3]).toBe(m[2])
      child.kill("SIGUSR1")
      const stats = await waitFor(
        /stats pid=(\d+) uptime=\S+ cpu=[\d.]+s .*rss=\S+ workers=2\/2 .*live=\d+ accepted=\d+ requests=\d+ tunnels=\d+/,
        10_000,
      )
      expect(Number(stats[1])).toBe(child.pid)
      child.kill("SIGTERM")
      const exit = await exited
      expect(exit, `${out}\n${err}`).toEqual({ code: 0, signal: null })
      expect(out).toMatch(/stopped: stats/)
    } finally {
      child.kill("SIGKILL")
    }
  })
})
