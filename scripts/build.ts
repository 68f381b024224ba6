// Builds dist/ with rolldown: the TypeScript sources bundled, tree-shaken and minified:
//   dist/cli.js      the `hctunnel` command: the Node.js version check, then `import("./main.js")`
//   dist/main.js     the main thread (src/cli/main.ts: flags, configuration, the supervisor)
//   dist/index.js    the library (`import { startProxy } from "hctunnel"`, src/index.ts): built with the command, so
//                    the two share their chunks (the supervisor, the configuration, Effect); its type
//                    declarations are dist/types/api.d.ts (src/lib/api.ts, tsc -p tsconfig.lib.json)
//   dist/worker.js   one worker thread (src/runtime/worker.ts), loaded by the supervisor by URL
//   dist/verifier.js the bcrypt verifier thread (src/runtime/auth/verifier-thread.ts), one per process, started by the main
//                    thread on the first verification when --auth-file is set
//   dist/main-*.js, dist/worker-*.js   the libraries each of them uses, in a few chunks (see `chunks`);
//                    dist/main-AdminServer.js is the admin endpoint, imported only with --admin
// each with a source map (`node --enable-source-maps dist/cli.js` shows stacks in the TypeScript sources), and
//   dist/core.js     the engine as a library (`import { Postman } from "hctunnel/core"`, src/core/index.ts):
//                    one readable module importing nothing, with its type declarations in dist/core/*.d.ts
//                    (tsc -p tsconfig.core.json).
// The main thread and the workers are two separate builds, so neither loads code only the other needs.
// Why bundle at all: RSS at start (docs/performance.md). Type-checking is `npm run typecheck` (tsc).
// Usage: node scripts/build.ts
import { execFileSync } from "node:child_process"
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { build, type BuildOptions } from "rolldown"

const root = new URL("..", import.meta.url).pathname
const outDir = `${root}dist`

// The libraries go in a few chunks of at most ~85 KB rather than one file: V8 parses a module's top level in
// one go, and the parser's scratch memory for a 250 KB module (~5 MB) stays in the thread's malloc heap
// after it is freed. With these chunks the process starts ~6 MB smaller than with one file per thread
// (measured; more, smaller chunks cost more again). Each group also takes the modules it imports that no
// group of higher priority took, so the chunks import each other in one direction only (no cycles).
const chunks = [
  { name: "internal", test: /effect[\\/]dist[\\/]internal[\\/](?!schema)/, priority: 5 },
  { name: "schema", test: /effect[\\/]dist[\\/](Schema|internal[\\/]schema)/, priority: 4 },
  { name: "effect", test: /effect[\\/]dist[\\/](?!cli[\\/])/, priority: 3 },
  { name: "cli", test: /effect[\\/]dist[\\/]cli[\\/]/, priority: 2 },
  { name: "platform", test: /@effect[\\/]platform/, priority: 1 },
]

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
    // The chunk of src/cli/main.ts is dist/main.js; library chunks are main-<group>.js or worker-<group>.js.
    chunkFileNames: (chunk) => (chunk.name === "main" ? "main.js" : `${Object.keys(input)[0] === "cli" ? "main" : "worker"}-[name].js`),
    codeSplitting: { groups: chunks },
  },
})

rmSync(outDir, { recursive: true, force: true })
// src/cli.ts imports src/cli/main.ts dynamically, so rolldown writes it as its own chunk, dist/main.js:
// dist/cli.js stays small enough for an old Node to parse and print the version message.
await build(bundle({ cli: "src/cli.ts", index: "src/index.ts" }))
await build(bundle({ worker: "src/runtime/worker.ts" }))
// dist/cli.js is the package's bin: npm makes it executable when it installs the package, but a rebuild in a
// checkout (npm test, npm run build) writes a new file, and `npx hctunnel` would then fail with EACCES.
chmodSync(`${outDir}/cli.js`, 0o755)

// hctunnel/core: not minified (a library is read and debugged by its users), no source map, no chunks.
await build({
  cwd: root,
  input: { core: "src/core/index.ts" },
  platform: "neutral",
  tsconfig: `${root}tsconfig.json`,
  logLevel: "warn",
  output: { dir: outDir, format: "esm", entryFileNames: "[name].js" },
})
execFileSync(`${root}node_modules/.bin/tsc`, ["-p", `${root}tsconfig.core.json`], { stdio: "inherit" })
// The sources import "./x.ts"; a published declaration imports "./x.js" (resolved to x.d.ts by any TypeScript).
const rewrite = (dir: string): void => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`
    if (entry.isDirectory()) rewrite(path)
    else if (entry.name.endsWith(".d.ts"))
      writeFileSync(path, readFileSync(path, "utf8").replace(/(from\s+"\.{1,2}\/[^"]*)\.ts"/g, '$1.js"'))
  }
}
rewrite(`${outDir}/core`)
// The library's declarations: one file that imports nothing (src/lib/api.ts).
execFileSync(`${root}node_modules/.bin/tsc`, ["-p", `${root}tsconfig.lib.json`], { stdio: "inherit" })
// The bcrypt verifier thread (src/runtime/auth/verifier-thread.ts -> dist/verifier.js), started by a worker
// when proxy authentication is on. hash-wasm's "module" build is taken: its "main" is a UMD file that
// bundles every hash of the library (~220 KB); the ESM one is tree-shaken to bcrypt alone (~27 KB).
await build({ ...bundle({ verifier: "src/runtime/auth/verifier-thread.ts" }), resolve: { mainFields: ["module", "main"] } })
