// Builds dist/ with rolldown: the TypeScript sources bundled, tree-shaken and minified into three files,
//   dist/cli.js     the `hctunnel` command: the Node.js version check, then `import("./main.js")`
//   dist/main.js    the main thread (src/cli/main.ts: flags, configuration, the supervisor)
//   dist/worker.js  one worker thread (src/runtime/worker.ts), loaded by the supervisor by URL
// each with a source map (`node --enable-source-maps dist/cli.js` shows stacks in the TypeScript sources).
// The main thread and the workers are two separate builds, so neither loads code only the other needs.
// Why bundle at all: RSS at start (docs/performance.md). Type-checking is `npm run typecheck` (tsc).
// Usage: node scripts/build.ts
import { rmSync } from "node:fs"
import { build, type BuildOptions } from "rolldown"

const root = new URL("..", import.meta.url).pathname
const outDir = `${root}dist`

const bundle = (input: Record<string, string>): BuildOptions => ({
  cwd: root,
  input,
  platform: "node",
  tsconfig: `${root}tsconfig.json`,
  logLevel: "warn",
  output: {
    dir: outDir,
    format: "esm",
    minify: true,
    sourcemap: true,
    entryFileNames: "[name].js",
    chunkFileNames: "[name].js",
  },
})

rmSync(outDir, { recursive: true, force: true })
// src/cli.ts imports src/cli/main.ts dynamically, so rolldown writes it as its own chunk, dist/main.js:
// dist/cli.js stays small enough for an old Node to parse and print the version message.
await build(bundle({ cli: "src/cli.ts" }))
await build(bundle({ worker: "src/runtime/worker.ts" }))
