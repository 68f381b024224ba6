/** Running real clients (curl, python3) as child processes, with a clean environment and a time bound. */
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { cleanEnv } from "./env.ts"

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: Buffer
  readonly stderr: string
  /** sha256 of stdout and its length (always computed; stdout is kept only up to `keepBytes`). */
  readonly sha256: string
  readonly length: number
}

export const CURL = "/usr/bin/curl"

/**
 * Run `cmd args`; resolve when it exits (never rejects on a non-zero exit: the test asserts on `code`).
 * Killed (SIGKILL) after `timeoutMs`.
 */
export const run = (
  cmd: string,
  args: ReadonlyArray<string>,
  opts: { timeoutMs?: number; keepBytes?: number; input?: string | Buffer } = {},
): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] })
    const keep = opts.keepBytes ?? 16 * 1024 * 1024
    const chunks: Buffer[] = []
    let kept = 0
    let length = 0
    const hash = createHash("sha256")
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => {
      hash.update(d)
      length += d.length
      if (kept < keep) {
        chunks.push(d)
        kept += d.length
      }
    })
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += d.toString("utf8")
    })
    const t = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 20_000)
    child.once("error", (e) => {
      clearTimeout(t)
      reject(e)
    })
    child.once("close", (code, signal) => {
      clearTimeout(t)
      resolve({ code, signal, stdout: Buffer.concat(chunks), stderr, sha256: hash.digest("hex"), length })
    })
    child.stdin.end(opts.input)
  })

/**
 * curl through the proxy: `-sS --noproxy '' -x <proxy>` plus args. `--noproxy ''` makes curl use the proxy
 * for every host, whatever NO_PROXY says; curl forgets it at `--next`, so it is given again after each one
 * (the test passes `-x` again there).
 */
export const curl = (proxyUrl: string, args: ReadonlyArray<string>, opts: { timeoutMs?: number; keepBytes?: number } = {}) =>
  run(
    CURL,
    ["-sS", "--noproxy", "", "--max-time", "30", "-x", proxyUrl, ...args.flatMap((a) => (a === "--next" ? [a, "--noproxy", ""] : [a]))],
    opts,
  )

/** Split `curl -i` output into its heads and body. Returns every head (1xx first) and the final body. */
export const splitIncluded = (out: Buffer): { heads: string[]; body: Buffer } => {
  const heads: string[] = []
  let rest = out
  for (;;) {
    const i = rest.indexOf("\r\n\r\n")
    if (i < 0 || !rest.subarray(0, 5).equals(Buffer.from("HTTP/"))) break
    const head = rest.subarray(0, i).toString("latin1")
    heads.push(head)
    rest = rest.subarray(i + 4)
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head)?.[1] ?? 0)
    // 1xx, and the "200 Connection established" of a tunnel, are followed by another head.
    if (!(status >= 100 && status < 200) && !/^HTTP\/[\d.]+ 200 Connection established/i.test(head)) break
  }
  return { heads, body: rest }
}

export const headerOf = (head: string, name: string): string | undefined => {
  for (const line of head.split("\r\n").slice(1)) {
    const c = line.indexOf(":")
    if (line.slice(0, c).toLowerCase() === name.toLowerCase()) return line.slice(c + 1).trim()
  }
  return undefined
}
