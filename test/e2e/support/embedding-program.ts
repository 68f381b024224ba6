/**
 * A program that embeds hctunnel, as a user writes one: two proxies (one anonymizing the other, whose
 * hooks authenticate and route), a request through both to a loopback origin, a request whose route hook
 * fails, then close() of everything. It prints one JSON line of what it saw, including what is left
 * running, and ends without process.exit. Run by test/e2e/library-exit.test.ts (from the sources) and
 * test/e2e/package.test.ts (from the installed tarball); `runProgram` runs it without blocking this
 * process, where the origin lives.
 */
import { spawn } from "node:child_process"
import { cleanEnv } from "./env.ts"

/** The program: everything on loopback; prints one JSON line of what it saw, then returns from its top level. */
export const embeddingProgram = (library: string): string => `
import http from "node:http"
import { writeFileSync } from "node:fs"
import { startProxy, anonymizeProxy, closeAnonymizedProxy } from ${JSON.stringify(library)}

// The origin runs in the test's process: what is left running here at the end can only be the library's.
const port = Number(process.argv[2])

const hooks = new URL("./hooks.mjs", import.meta.url)
writeFileSync(hooks, \`
export function authenticate({ user, password }) { return user === "u" && password === "p" }
export async function route({ host }) {
  if (host === "fails.test") throw new Error("hook trouble")
  return undefined
}
\`)
const signals = () => ["SIGHUP", "SIGINT", "SIGTERM", "SIGUSR1"].map((s) => process.listenerCount(s)).join(",")
const before = signals()

const parent = await startProxy({ workers: 2, hooks, hosts: { "fails.test": "127.0.0.1" } })
const local = await anonymizeProxy(parent.url.replace("http://", "http://u:p@"))

const ask = (proxy, url) => new Promise((resolve, reject) => {
  const p = new URL(proxy)
  const req = http.get({ host: p.hostname, port: p.port, path: url, agent: false }, (res) => {
    let body = ""
    res.on("data", (d) => (body += d))
    res.on("end", () => resolve(res.statusCode + " " + body.trim()))
  })
  req.on("error", reject)
})
const through = await ask(local, "http://127.0.0.1:" + port + "/small")
const failed = await ask(local, "http://fails.test:" + port + "/y")
const stats = await parent.stats()
const during = signals()

await closeAnonymizedProxy(local, true)
await parent.close()
const left = process.getActiveResourcesInfo().filter((r) => r !== "PipeWrap" && r !== "TTYWrap")
console.log(JSON.stringify({ through, failed, requests: stats.requests, before, during, after: signals(), left }))
// No process.exit: the program ends when nothing is left to wait for.
`

/** What the program printed, once it exited (or was killed after `timeoutMs`: `killed`). */
export const runProgram = (
  script: string,
  args: ReadonlyArray<string>,
  cwd: string,
  timeoutMs = 120_000,
): Promise<{ code: number | null; killed: boolean; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let killed = false
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      killed = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, killed, stdout, stderr })
    })
  })

/** The program's report: its JSON line. */
export const reportOf = (stdout: string): unknown =>
  JSON.parse(
    stdout
      .trim()
      .split("\n")
      .find((l) => l.startsWith("{")) ?? "null",
  )

/** What the program reports when everything went right, the origin being startHttpOrigin("exit"). */
export const expectedReport = {
  through: "200 hello from exit",
  failed: "503 503 Service Unavailable: the proxy's route hook failed",
  requests: 2,
  before: "0,0,0,0",
  during: "0,0,0,0",
  after: "0,0,0,0",
  left: [],
}
