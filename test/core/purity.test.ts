/**
 * src/core is sans-IO: no Node modules, no clock, no timers, no randomness, no process. This test reads
 * every source file of the core and fails on anything that would let IO or nondeterminism in, so the rule
 * holds without anyone having to remember it.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"

const root = new URL("../../src/core/", import.meta.url).pathname
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : []
  })

const forbidden: ReadonlyArray<readonly [string, RegExp]> = [
  ["a Node built-in import", /from\s+["'](node:[\w/]+|net|fs|dns|tls|http|https|child_process|worker_threads|os|crypto|timers)["']/],
  ["require()", /\brequire\s*\(/],
  ["a dynamic import", /\bimport\s*\(/],
  ["a clock", /\bDate\.now\b|\bnew Date\b|\bperformance\.now\b|\bprocess\.hrtime\b/],
  ["randomness", /\bMath\.random\b|\bcrypto\.getRandomValues\b|\brandomUUID\b/],
  ["a timer", /\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/],
  ["process", /\bprocess\./],
  ["Buffer (a Node type)", /\bBuffer\b/],
  ["an import from outside src/core", /from\s+["']\.\.\/\.\.\/(?!core\/)/],
  ["the Effect runtime", /from\s+["']effect["']|from\s+["']effect\/(?!Schema|Data|Option|Result)/],
]

describe("src/core is free of IO", () => {
  const sources = files(root)
  it("has source files to check", () => {
    expect(sources.length).toBeGreaterThan(5)
  })
  for (const path of sources) {
    it(path.slice(root.length), () => {
      // Comments may mention what the code must not do.
      const code = readFileSync(path, "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/(^|[^:])\/\/.*$/gm, "$1")
      for (const [what, pattern] of forbidden) expect(pattern.test(code), `${what} in ${path}`).toBe(false)
    })
  }
})
