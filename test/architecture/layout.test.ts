/**
 * The shape of src/ that docs/design.md §"The runtime's folders" promises, checked on the files themselves:
 * - no import circle anywhere in src/ (file by file, static and dynamic imports alike);
 * - between src/runtime's capability folders, imports only point down the order below; the top-level
 *   files and the folders ranked with them (supervise/) sit above every capability folder;
 * - no source file over 600 lines, but the Postman and its table;
 * - every runtime folder says in its main file's header what it owns and what it may import.
 */
import { readdirSync, readFileSync } from "node:fs"
import path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "../..")
const src = path.join(root, "src")

/** The runtime's folders from the bottom up: a folder may import only the ones before it (and src/core). */
const RUNTIME_ORDER = ["timers", "observe", "access", "auth", "dial", "connection"] as const
/**
 * Folders ranked with src/runtime's top-level files: they may import every capability folder and the
 * top-level files (the circle check still applies), and no capability folder may import them.
 */
const TOP_RANKED = ["supervise"] as const
const FOLDERS = [...RUNTIME_ORDER, ...TOP_RANKED]
/** The file of each folder whose header comment describes the folder. */
const MAIN_FILE: Record<(typeof FOLDERS)[number], string> = {
  timers: "Deadlines.ts",
  observe: "AccessLog.ts",
  access: "Allow.ts",
  auth: "Authenticator.ts",
  dial: "Dialer.ts",
  connection: "Connection.ts",
  supervise: "Roster.ts",
}
const LONG_FILES_ALLOWED = new Set(["src/core/postman.ts", "src/core/transitions.ts"])
const MAX_LINES = 600

const walk = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : [],
  )

const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)["'](\.{1,2}\/[^"']+)["']/g

/** Relative imports of a file, as absolute paths (comments are not code: a `from "./x.ts"` in prose is skipped). */
const importsOf = (file: string, text = readFileSync(file, "utf8")): Array<string> => {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'])\/\/.*$/gm, "$1")
  return [...code.matchAll(SPECIFIER)].map((m) => path.resolve(path.dirname(file), m[1] as string))
}

/** The runtime folder a file belongs to; "top" for src/runtime/*.ts; undefined outside src/runtime. */
const runtimeFolder = (file: string): string | undefined => {
  const rel = path.relative(path.join(src, "runtime"), file)
  if (rel.startsWith("..")) return undefined
  const parts = rel.split(path.sep)
  return parts.length === 1 ? "top" : parts[0]
}

const rank = (folder: string): number =>
  folder === "top" || TOP_RANKED.includes(folder as never) ? RUNTIME_ORDER.length : RUNTIME_ORDER.indexOf(folder as never)

/**
 * Every import from a lower runtime folder to a higher one (or to an unknown folder). Only the top rank
 * holds more than one folder, so an import between two folders of the same rank is one between the top
 * level and a folder ranked with it: allowed.
 */
const upwardImports = (graph: ReadonlyMap<string, ReadonlyArray<string>>): Array<string> => {
  const found: Array<string> = []
  for (const [from, targets] of graph) {
    const a = runtimeFolder(from)
    if (a === undefined) continue
    for (const to of targets) {
      const b = runtimeFolder(to)
      if (b === undefined || a === b) continue
      if (rank(b) < 0 || rank(a) < 0 || rank(b) > rank(a)) found.push(`${path.relative(root, from)} -> ${path.relative(root, to)}`)
    }
  }
  return found
}

/** One circle of the graph, as the files around it, or undefined when there is none. */
const findCircle = (graph: ReadonlyMap<string, ReadonlyArray<string>>): Array<string> | undefined => {
  const state = new Map<string, "open" | "done">()
  const stack: Array<string> = []
  const visit = (node: string): Array<string> | undefined => {
    state.set(node, "open")
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next)
      if (s === "open") return [...stack.slice(stack.indexOf(next)), next]
      if (s === undefined) {
        const circle = visit(next)
        if (circle !== undefined) return circle
      }
    }
    stack.pop()
    state.set(node, "done")
    return undefined
  }
  for (const node of graph.keys()) {
    if (state.get(node) === undefined) {
      const circle = visit(node)
      if (circle !== undefined) return circle.map((f) => path.relative(root, f))
    }
  }
  return undefined
}

const files = walk(src)
const graph = new Map(files.map((f) => [f, importsOf(f)]))

describe("src/ layout", () => {
  it("has no import circle", () => {
    expect(findCircle(graph)).toBeUndefined()
  })

  it("imports only point down between the runtime's folders", () => {
    expect(upwardImports(graph)).toEqual([])
  })

  it("has no file over 600 lines but the Postman and its table", () => {
    const long = files
      .map((f) => [path.relative(root, f), readFileSync(f, "utf8").split("\n").length - 1] as const)
      .filter(([f, n]) => n > MAX_LINES && !LONG_FILES_ALLOWED.has(f))
    expect(long).toEqual([])
  })

  it("every runtime folder's main file says what the folder owns and may import", () => {
    for (const folder of FOLDERS) {
      const text = readFileSync(path.join(src, "runtime", folder, MAIN_FILE[folder]), "utf8")
      const header = text.slice(0, text.indexOf("*/"))
      expect(header, folder).toMatch(new RegExp(`The ${folder}/ folder`))
      expect(header, folder).toMatch(/May import:/)
    }
  })

  it("runtime folders on disk are exactly the ones ordered here", () => {
    const onDisk = readdirSync(path.join(src, "runtime"), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()
    expect(onDisk).toEqual([...FOLDERS].sort())
  })
})

describe("the layout checks can fail", () => {
  const f = (p: string) => path.join(src, p)
  it("finds a circle", () => {
    const g = new Map([
      [f("a.ts"), [f("b.ts")]],
      [f("b.ts"), [f("c.ts")]],
      [f("c.ts"), [f("a.ts")]],
    ])
    expect(findCircle(g)).toEqual(["src/a.ts", "src/b.ts", "src/c.ts", "src/a.ts"])
  })
  it("finds an upward import, and one to the top, and accepts a downward one", () => {
    const g = new Map([
      [f("runtime/timers/Deadlines.ts"), [f("runtime/observe/AccessLog.ts")]],
      [f("runtime/dial/Dialer.ts"), [f("runtime/protocol.ts"), f("runtime/access/Allow.ts"), f("core/postman.ts")]],
    ])
    expect(upwardImports(g)).toEqual([
      "src/runtime/timers/Deadlines.ts -> src/runtime/observe/AccessLog.ts",
      "src/runtime/dial/Dialer.ts -> src/runtime/protocol.ts",
    ])
  })
  it("lets the top level and supervise/ import each other and every capability, and no capability import supervise/", () => {
    const g = new Map([
      [f("runtime/supervisor.ts"), [f("runtime/supervise/Drain.ts"), f("runtime/observe/Stats.ts")]],
      [f("runtime/supervise/Spawn.ts"), [f("runtime/protocol.ts"), f("runtime/connection/Connection.ts"), f("runtime/access/Allow.ts")]],
      [f("runtime/connection/Connection.ts"), [f("runtime/supervise/Roster.ts")]],
    ])
    expect(upwardImports(g)).toEqual(["src/runtime/connection/Connection.ts -> src/runtime/supervise/Roster.ts"])
  })
  it("reads static, dynamic and URL imports, and skips comments", () => {
    const text = `import { a } from "./a.ts"\nconst b = await import("../b.ts")\n// from "./c.ts"\nnew URL("./d.ts", import.meta.url)\n`
    expect(importsOf(f("runtime/x.ts"), text)).toEqual([f("runtime/a.ts"), f("b.ts"), f("runtime/d.ts")])
  })
})
