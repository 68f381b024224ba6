/**
 * A newcomer's first run is clean (issue 8, item 6): the README's two commands, `npm install` and
 * `npx hctunnel`, print no npm warning when npm runs on the system's Node (20 on the machine this was
 * written on), not on the Node 24 in node_modules. See CONTRIBUTING.md "No warnings on Node 20 or newer".
 *
 * `npm install` is run as a dry run without scripts (offline: the lockfile's packages are installed already),
 * so the test neither changes node_modules nor rebuilds dist/ under the other tests; the engine checks it
 * would warn about happen in the dry run too.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { delimiter, dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const pkg = JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8")) as { version: string }

/** The environment of a person's shell: no node_modules/.bin on the PATH (so `npm` runs on the system's Node). */
const shellEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|HCTUNNEL_)|_proxy$/i.test(k)) continue
    env[k] = v
  }
  env["PATH"] = (process.env["PATH"] ?? "")
    .split(delimiter)
    .filter((p) => !p.includes("node_modules"))
    .join(delimiter)
  // Any fetch would fail at once on loopback rather than leave the machine.
  env["npm_config_registry"] = "http://127.0.0.1:9/"
  return env
}

const sh = (cmd: string, args: ReadonlyArray<string>) => {
  const r = spawnSync(cmd, args, { cwd: ROOT, env: shellEnv(), encoding: "utf8", timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, text: `$ ${cmd} ${args.join(" ")}\n${r.stdout}\n${r.stderr}` }
}

describe("the README's two commands print no warnings on the system's Node", () => {
  it("npm install", () => {
    const r = sh("npm", ["install", "--dry-run", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"])
    expect(r.code, r.text).toBe(0)
    expect(r.stdout + r.stderr, r.text).not.toMatch(/warn/i)
  })

  it("npx hctunnel (--version)", () => {
    const r = sh("npx", ["--offline", "hctunnel", "--version"])
    expect(r.code, r.text).toBe(0)
    expect(r.stderr, r.text).toBe("")
    expect(r.stdout.trim()).toBe(`hctunnel v${pkg.version}`)
  })

  it("the system's npm would warn without the checkout's settings (the test can see a warning)", () => {
    const r = sh("npm", ["install", "--dry-run", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=warn"])
    expect(r.code, r.text).toBe(0)
    const systemNode = sh("node", ["--version"]).stdout.trim()
    // Only a system Node older than what the dependencies declare produces engine warnings.
    if (Number(/^v(\d+)/.exec(systemNode)?.[1] ?? 0) < 22) expect(r.stderr, r.text).toMatch(/EBADENGINE/)
    else expect(r.stderr, r.text).not.toMatch(/EBADENGINE/)
  })
})
