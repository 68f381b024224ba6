/**
 * src/core is sans-IO: no Node modules, no clock, no timers, no randomness, no process. This test reads
 * every source file of the core and fails on anything that would let IO or nondeterminism in, so the rule
 * holds without anyone having to remember it.
 *
 * Imports are checked by what they name, not by a list of patterns: every specifier of an `import`,
 * `export ... from` or side-effect import is read out; a Node built-in (Node's own `builtinModules`, bare or
 * `node:`) or any package is refused, and a relative one must resolve to an existing file inside src/core
 * (so `../runtime/...` from any depth is caught). The last group runs the same checker over a temporary
 * copy of src/core with one forbidden line injected at a time, and expects it to object to each.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, cpSync } from "node:fs"
import { builtinModules } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, relative, resolve, sep } from "node:path"
import { afterAll, describe, expect, it } from "vitest"

const coreRoot = new URL("../../src/core/", import.meta.url).pathname

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : []
  })

/** The code without its comments: comments may mention what the code must not do. */
const stripComments = (code: string): string => code.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:\\])\/\/.*$/gm, "$1")

/** Every module specifier the code names: `import x from "m"`, `import "m"`, `export { y } from "m"`, `export * from "m"`. */
const specifiers = (code: string): string[] => {
  const found: string[] = []
  const fromClause = /\b(?:import|export)\s+(?:type\s+)?(?:[\w*$\s{},]*?\s*from\s*)?["']([^"']+)["']/g
  for (const m of code.matchAll(fromClause)) found.push(m[1]!)
  return found
}

const builtins = new Set(builtinModules.flatMap((m) => [m, m.replace(/^node:/, "")]))

/** The only packages the core may use: Effect's pure data modules (no runtime, no fibers, no IO). */
const allowedPackages = new Set(["effect/Schema", "effect/Data", "effect/Option", "effect/Result"])

/** Why an import of `spec` from `file` is not allowed in the tree at `root`, or undefined. */
const importViolation = (root: string, file: string, spec: string): string | undefined => {
  if (spec.startsWith("node:") || builtins.has(spec) || builtins.has(spec.split("/")[0]!)) return `a Node built-in import "${spec}"`
  if (spec.startsWith(".")) {
    const target = resolve(dirname(file), spec)
    const inside = relative(root, target)
    if (inside.startsWith("..") || inside.startsWith(sep)) return `an import from outside src/core "${spec}"`
    if (!existsSync(target)) return `an import that resolves to no file "${spec}"`
    return undefined
  }
  if (spec.startsWith("/") || /^[a-z]+:/i.test(spec)) return `an absolute or URL import "${spec}"`
  if (!allowedPackages.has(spec)) return `a package import "${spec}"`
  return undefined
}

const forbidden: ReadonlyArray<readonly [string, RegExp]> = [
  ["require()", /\brequire\s*\(/],
  ["a dynamic import", /\bimport\s*\(/],
  ["a clock", /\bDate\.now\b|\bnew Date\b|\bperformance\.now\b|\bprocess\.hrtime\b/],
  ["randomness", /\bMath\.random\b|\bcrypto\.|\brandomUUID\b/],
  ["a timer", /\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/],
  ["process", /\bprocess\./],
  ["Buffer (a Node type)", /\bBuffer\b/],
  ["network IO", /\bfetch\s*\(|\bWebSocket\b|\bXMLHttpRequest\b/],
]

/** Everything wrong with one source file of the tree at `root`. */
const violations = (root: string, file: string): string[] => {
  const code = stripComments(readFileSync(file, "utf8"))
  const found: string[] = []
  for (const spec of specifiers(code)) {
    const why = importViolation(root, file, spec)
    if (why !== undefined) found.push(why)
  }
  for (const [what, pattern] of forbidden) if (pattern.test(code)) found.push(what)
  return found
}

const treeViolations = (root: string): string[] =>
  files(root).flatMap((file) => violations(root, file).map((v) => `${relative(root, file)}: ${v}`))

describe("src/core is free of IO", () => {
  const sources = files(coreRoot)
  it("has source files to check", () => {
    expect(sources.length).toBeGreaterThan(5)
  })
  for (const path of sources) {
    it(path.slice(coreRoot.length), () => {
      expect(violations(coreRoot, path)).toEqual([])
    })
  }
  it("reads the imports of every file (the checker sees the core's own imports)", () => {
    const postman = readFileSync(join(coreRoot, "postman.ts"), "utf8")
    expect(specifiers(stripComments(postman))).toContain("./http/body.ts")
  })
})

describe("the purity checker objects to each forbidden line", () => {
  // One temporary copy of src/core (as src/core of a temporary tree); each case edits one file and puts it back.
  const tree = mkdtempSync(join(tmpdir(), "hctunnel-purity-"))
  const copyRoot = join(tree, "src", "core")
  cpSync(coreRoot, copyRoot, { recursive: true })
  afterAll(() => rmSync(tree, { recursive: true, force: true }))

  /** The checker's findings over the copy with `line` put first in `file`. */
  const findingsWith = (file: string, line: string): string[] => {
    const path = join(copyRoot, file)
    const original = readFileSync(path, "utf8")
    writeFileSync(path, `${line}\n${original}`)
    try {
      return treeViolations(copyRoot)
    } finally {
      writeFileSync(path, original)
    }
  }

  it("finds nothing in an untouched copy", () => {
    expect(treeViolations(copyRoot)).toEqual([])
  })

  const injections: ReadonlyArray<readonly [string, string, string]> = [
    ["postman.ts", `import { EventEmitter } from "events"`, "Node built-in"],
    ["postman.ts", `import type { EventEmitter } from "node:events"`, "Node built-in"],
    ["http/body.ts", `import { readFile } from "fs/promises"`, "Node built-in"],
    ["http/body.ts", `import "node:net"`, "Node built-in"],
    ["state.ts", `export { strict } from "assert"`, "Node built-in"],
    ["postman.ts", `import { Allow } from "../runtime/access/Allow.ts"`, "outside src/core"],
    ["http/fields.ts", `import {\n  thing,\n} from "../../runtime/worker.ts"`, "outside src/core"],
    ["http/fields.ts", `export * from "../../cli/main.ts"`, "outside src/core"],
    ["limits.ts", `import { x } from "./missing.ts"`, "resolves to no file"],
    ["limits.ts", `import { Effect } from "effect"`, "package import"],
    ["limits.ts", `import { Stream } from "effect/Stream"`, "package import"],
    ["limits.ts", `import { y } from "/etc/passwd"`, "absolute or URL"],
    ["responses.ts", `const later = () => import("./limits.ts")`, "dynamic import"],
    ["responses.ts", `const t = Date.now()`, "clock"],
    ["responses.ts", `const r = Math.random()`, "randomness"],
    ["responses.ts", `setTimeout(() => {}, 1)`, "timer"],
    ["responses.ts", `const e = process.env`, "process"],
    ["responses.ts", `const b = Buffer.alloc(1)`, "Buffer"],
  ]
  for (const [file, line, what] of injections) {
    it(`${file}: ${line.replace(/\n\s*/g, " ")}`, () => {
      const found = findingsWith(file, line)
      expect(found.length, `no objection to ${JSON.stringify(line)}`).toBe(1)
      expect(found[0]).toContain(file)
      expect(found[0]).toContain(what)
    })
  }
})
