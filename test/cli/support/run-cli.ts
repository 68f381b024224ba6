/**
 * Running the built `hctunnel` command (dist/cli.js) as a user would, for the CLI tests: one process per
 * call, in the same clean environment as the end-to-end tests' programs (e2e/support/env.ts).
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { cleanEnv } from "../../e2e/support/env.ts"

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
export const CLI = resolve(ROOT, "dist/cli.js")

/** `hctunnel ARGS` to completion: exit code and output. */
export const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: cleanEnv(env), encoding: "utf8", timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** For a `beforeAll`: the tests need the build (npm test makes it first). */
export const requireBuild = (): void => {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: run \`npm run build\` (npm test does it first)`)
}
