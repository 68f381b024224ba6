/**
 * The package as a user gets it (issue 13): `npm pack` of this checkout, installed offline into an empty
 * project (`npm install --offline <tgz>`: nothing may need fetching, so the package has no runtime
 * dependency), then the installed `hctunnel` run with the checkout's Node 24: `--version`, one plain-HTTP
 * request and one CONNECT tunnel through it to loopback origins.
 *
 * Also checks what the tarball holds (the bundle and nothing else: no sources, tests or source maps), that
 * every import of the installed bundle is a `node:*` module or one of its own files, and that both
 * entries are libraries: `import { Postman } from "hctunnel/core"` runs in the installed project, a program
 * that uses `import { startProxy, anonymizeProxy, closeAnonymizedProxy } from "hctunnel"` against loopback
 * origins exits by itself after close(), and the declarations of both type-check a consumer (tsc, strict,
 * no skipLibCheck).
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { cleanEnv } from "./support/env.ts"
import { embeddingProgram, expectedReport, reportOf, runProgram } from "./support/embedding-program.ts"
import { ROOT, startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, get, openTunnel } from "./support/wire.ts"

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; version: string }

/** npm as the test was started with (`npm test` sets npm_execpath), else the one on PATH. */
const npm = (args: ReadonlyArray<string>, cwd: string) => {
  const execpath = process.env["npm_execpath"]
  const [cmd, argv] = execpath?.endsWith(".js") === true ? [process.execPath, [execpath, ...args]] : ["npm", args]
  // No registry may be needed: point npm at a closed loopback port so any fetch fails at once instead of leaving the machine.
  const env = cleanEnv({
    npm_config_registry: "http://127.0.0.1:9/",
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
  })
  const r = spawnSync(cmd, argv as ReadonlyArray<string>, { cwd, env, encoding: "utf8", timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, text: `$ npm ${args.join(" ")}\n${r.stdout}\n${r.stderr}` }
}

let work: string
let project: string
let tarball: string
let files: ReadonlyArray<string>
let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>
let proxy: Proxy | undefined

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist/cli.js"))) throw new Error("dist/ does not exist: run `npm run build` (npm test does it first)")
  work = mkdtempSync(join(tmpdir(), "hctunnel-pack-"))
  // dist/ is built already (pretest): --ignore-scripts skips `prepare`, which would build it again.
  const packed = npm(["pack", "--ignore-scripts", "--json", "--pack-destination", work], ROOT)
  expect(packed.code, packed.text).toBe(0)
  const info = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
  tarball = join(work, info[0]!.filename)
  files = info[0]!.files.map((f) => f.path).sort()
  project = join(work, "project")
  mkdirSync(project)
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "empty-project", version: "1.0.0", private: true }))
  const installed = npm(["install", "--offline", "--no-package-lock", tarball], project)
  expect(installed.code, installed.text).toBe(0)
  ;[origin, echo] = await Promise.all([startHttpOrigin("packaged"), startTcpServer("echo")])
}, 180_000)

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([origin?.close(), echo?.close()])
  if (work !== undefined) rmSync(work, { recursive: true, force: true })
})

/** A strict consumer project, without @types/node and without skipLibCheck: the declarations stand alone. */
const consumerTsconfig = (files: ReadonlyArray<string>) => ({
  compilerOptions: {
    target: "es2024",
    lib: ["es2024"],
    module: "nodenext",
    moduleResolution: "nodenext",
    strict: true,
    exactOptionalPropertyTypes: true,
    noEmit: true,
    skipLibCheck: false,
    types: [],
  },
  files,
})

const installedBin = () => join(project, "node_modules/.bin/hctunnel")
const installedDir = () => join(project, "node_modules", pkg.name)

describe("the packed package", () => {
  it("holds the bundle, the declarations of both entries, package.json and README, and nothing else", () => {
    const unexpected = files.filter(
      (f) =>
        !/^dist\/[\w-]+\.js$/.test(f) &&
        !/^dist\/core\/[\w/-]+\.d\.ts$/.test(f) &&
        f !== "dist/types/api.d.ts" &&
        f !== "package.json" &&
        f !== "README.md",
    )
    expect(unexpected).toEqual([])
    expect(files).toContain("dist/cli.js")
    expect(files).toContain("dist/main.js")
    expect(files).toContain("dist/worker.js")
    expect(files).toContain("dist/core.js")
    expect(files).toContain("dist/core/index.d.ts")
    expect(files).toContain("dist/index.js")
    expect(files).toContain("dist/types/api.d.ts")
  })

  it("declares no runtime dependency", () => {
    const manifest = JSON.parse(readFileSync(join(installedDir(), "package.json"), "utf8")) as Record<string, unknown>
    expect(manifest["dependencies"] ?? {}).toEqual({})
    expect(manifest["optionalDependencies"] ?? {}).toEqual({})
    expect(manifest["peerDependencies"] ?? {}).toEqual({})
  })

  it("installs into an empty project offline with no other package", () => {
    const entries = readdirSync(join(project, "node_modules")).filter((e) => e !== ".bin" && e !== ".package-lock.json")
    expect(entries).toEqual([pkg.name])
    expect(readdirSync(join(project, "node_modules/.bin"))).toEqual(["hctunnel"])
  })

  it("imports nothing but node:* modules and its own files", () => {
    const dist = join(installedDir(), "dist")
    const specifiers = new Set<string>()
    for (const f of readdirSync(dist).filter((n) => n.endsWith(".js"))) {
      const code = readFileSync(join(dist, f), "utf8")
      // Static imports/re-exports (`from "x"`, `import "x"`), dynamic imports (`import("x")`) and require, minified or not.
      for (const m of code.matchAll(/\b(?:from|import)\s*(["'])([^"'\n]+)\1/g)) specifiers.add(m[2]!)
      for (const m of code.matchAll(/\b(?:import|require)\s*\(\s*(["'`])([^"'`\n]+)\1\s*\)/g)) specifiers.add(m[2]!)
    }
    expect(specifiers.size).toBeGreaterThan(0)
    const foreign = [...specifiers].filter((s) => !s.startsWith("node:") && !/^\.\/[\w-]+\.js$/.test(s))
    expect(foreign).toEqual([])
  })
})

describe("the installed hctunnel, run with Node 24", () => {
  it("--version prints the package version", () => {
    const r = spawnSync(process.execPath, [installedBin(), "--version"], {
      cwd: project,
      env: cleanEnv(),
      encoding: "utf8",
      timeout: 20_000,
    })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe(`hctunnel v${pkg.version}`)
  })

  it("forwards a plain HTTP request and opens a CONNECT tunnel", async () => {
    proxy = await startProxy({ cli: installedBin(), cwd: project, workers: 1 })

    const c = await Conn.open(proxy.port)
    await c.write(get(`http://127.0.0.1:${origin.port}/small`, "Connection: close\r\n"))
    const r = await c.readResponse()
    c.destroy()
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe("hello from packaged\n")

    const t = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`)
    await t.write("ping through the installed package")
    const back = await t.readBytes("ping through the installed package".length)
    t.destroy()
    expect(back.toString()).toBe("ping through the installed package")
  })
})

describe("hctunnel, imported from the installed package", () => {
  it("runs two proxies against a loopback origin, and the program exits by itself after close()", { timeout: 180_000 }, async () => {
    const libraryOrigin = await startHttpOrigin("exit")
    try {
      writeFileSync(join(project, "library.mjs"), embeddingProgram("hctunnel"))
      const r = await runProgram(join(project, "library.mjs"), [String(libraryOrigin.port)], project)
      expect(r.killed, `the program did not exit by itself\n${r.stdout}\n${r.stderr}`).toBe(false)
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
      expect(reportOf(r.stdout)).toEqual(expectedReport)
    } finally {
      await libraryOrigin.close()
    }
  })

  it("type-checks a consumer against its declarations", () => {
    writeFileSync(
      join(project, "library-consumer.ts"),
      [
        'import { type Hooks, type ProxyStats, type RouteHook, type RunningProxy, ProxyError, anonymizeProxy, closeAnonymizedProxy, startProxy } from "hctunnel"',
        "export const route: RouteHook = async ({ host, tunnel, user }) =>",
        '  host === "blocked.test" ? { deny: "not for " + (user ?? "anyone") } : tunnel ? { upstream: "http://127.0.0.1:3128" } : undefined',
        'export const hooks: Hooks = { route, authenticate: ({ user, password }) => user === "u" && password === "p" }',
        "export async function main(): Promise<number> {",
        '  const proxy: RunningProxy = await startProxy({ listen: ["127.0.0.1:0"], workers: 1, idleTimeout: "2m", hooks: { href: "file:///hooks.js" } })',
        '  await proxy.reload({ denyTo: ["example.org"], logLevel: "info" })',
        "  const stats: ProxyStats = await proxy.stats()",
        '  const local: string = await anonymizeProxy("http://user:pass@127.0.0.1:3128")',
        "  const closed: boolean = await closeAnonymizedProxy(local, true)",
        '  await proxy.close("5s")',
        "  // @ts-expect-error: not a setting",
        "  await startProxy({ workerz: 2 })",
        "  // @ts-expect-error: a log level that does not exist",
        '  await startProxy({ logLevel: "loud" })',
        '  return stats.requests + (closed ? 1 : 0) + (new ProxyError("ERR_HCTUNNEL_CONFIG", "x").code === "ERR_HCTUNNEL_CONFIG" ? 1 : 0)',
        "}",
        "",
      ].join("\n"),
    )
    writeFileSync(join(project, "tsconfig.library.json"), JSON.stringify(consumerTsconfig(["library-consumer.ts"])))
    const r = spawnSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", join(project, "tsconfig.library.json")], {
      cwd: project,
      env: cleanEnv(),
      encoding: "utf8",
      timeout: 60_000,
    })
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
  })
})

describe("hctunnel/core, imported from the installed package", () => {
  it("runs: a Postman answers a CONNECT head with a Connect action", () => {
    const script = `
      import { Postman, defaultLimits } from "hctunnel/core"
      const p = new Postman({ limits: defaultLimits, via: "embedded" })
      p.start(0)
      const head = new TextEncoder().encode("CONNECT origin.test:443 HTTP/1.1\\r\\nHost: origin.test:443\\r\\n\\r\\n")
      const actions = p.handle({ _tag: "Received", side: "client", bytes: head }, 1)
      console.log(JSON.stringify({ state: p.state, connect: actions.find((a) => a._tag === "Connect") }))
    `
    writeFileSync(join(project, "embed.mjs"), script)
    const r = spawnSync(process.execPath, ["embed.mjs"], { cwd: project, env: cleanEnv(), encoding: "utf8", timeout: 20_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      state: "Connecting",
      connect: { _tag: "Connect", host: "origin.test", port: 443, tunnel: true },
    })
  })

  it("type-checks a consumer against its declarations", () => {
    writeFileSync(
      join(project, "consumer.ts"),
      [
        'import { type Action, type Event, type Limits, Postman, defaultLimits } from "hctunnel/core"',
        "const limits: Limits = { ...defaultLimits, headTimeout: 5_000 }",
        'const postman = new Postman({ limits, via: "embedded" })',
        'const event: Event = { _tag: "Ended", side: "client" }',
        "const actions: ReadonlyArray<Action> = postman.handle(event, 0)",
        "export const tags: ReadonlyArray<string> = actions.map((a) => a._tag)",
        "// @ts-expect-error: an event the engine does not know",
        'postman.handle({ _tag: "Nonsense" }, 0)',
        "",
      ].join("\n"),
    )
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(consumerTsconfig(["consumer.ts"])))
    const r = spawnSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", join(project, "tsconfig.json")], {
      cwd: project,
      env: cleanEnv(),
      encoding: "utf8",
      timeout: 60_000,
    })
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
  })
})
