/**
 * Child processes of the harness: every one is tracked and killed when the harness exits, fails or is interrupted.
 * Children that are ours (origin, generators, guard) also exit by themselves when their stdin closes,
 * so even a SIGKILL of the harness leaves nothing running.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"

const live = new Set<ChildProcess>()
let installed = false

const killEveryone = (signal: NodeJS.Signals): void => {
  for (const cp of live) {
    try {
      cp.kill(signal)
    } catch {
      // already gone
    }
  }
}

export const installCleanup = (): void => {
  if (installed) return
  installed = true
  // SIGTERM, not SIGKILL: the guard must live long enough to stop the proxy it runs (it SIGKILLs it after 3 s).
  process.on("exit", () => killEveryone("SIGTERM"))
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping children\n`)
      killEveryone("SIGTERM")
      setTimeout(() => process.exit(130), 300)
    })
  }
}

export const track = (cp: ChildProcess): ChildProcess => {
  live.add(cp)
  cp.once("exit", () => live.delete(cp))
  return cp
}

/** Stop one child: SIGTERM, then SIGKILL after graceMs. Resolves when it has exited. */
export const stop = (cp: ChildProcess, graceMs = 2000): Promise<void> =>
  new Promise((resolve) => {
    if (cp.exitCode !== null || cp.signalCode !== null) return resolve()
    const t = setTimeout(() => cp.kill("SIGKILL"), graceMs)
    cp.once("exit", () => {
      clearTimeout(t)
      resolve()
    })
    cp.stdin?.end()
    cp.kill("SIGTERM")
  })

export interface RunOptions {
  readonly timeoutMs: number
  /** Called with each JSON object the child prints (one per line); may write to the child's stdin. */
  readonly onMessage?: (msg: Record<string, unknown>, cp: ChildProcess) => void
  readonly env?: NodeJS.ProcessEnv
}

export interface RunResult {
  readonly messages: ReadonlyArray<Record<string, unknown>>
  readonly last: Record<string, unknown>
  readonly stderr: string
  readonly pid: number
}

/**
 * Run a command to completion; its stdout is JSON lines. Rejects on a non-zero exit, on a timeout (the child
 * is killed) or when it printed no JSON.
 */
export const runJson = (command: string, args: ReadonlyArray<string>, opts: RunOptions): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const cp = track(spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env }))
    const messages: Record<string, unknown>[] = []
    let stderr = ""
    let timedOut = false
    cp.stderr!.setEncoding("utf8")
    cp.stderr!.on("data", (s: string) => {
      if (stderr.length < 64 * 1024) stderr += s
    })
    const rl = createInterface({ input: cp.stdout! })
    rl.on("line", (line) => {
      const t = line.trim()
      if (!t.startsWith("{")) return
      try {
        const msg = JSON.parse(t) as Record<string, unknown>
        messages.push(msg)
        opts.onMessage?.(msg, cp)
      } catch {
        // not ours
      }
    })
    const timer = setTimeout(() => {
      timedOut = true
      cp.kill("SIGKILL")
    }, opts.timeoutMs)
    cp.on("error", (err) => {
      clearTimeout(timer)
      reject(err)
    })
    cp.on("close", (code, signal) => {
      clearTimeout(timer)
      const name = `${command} ${args.slice(0, 2).join(" ")}`
      if (timedOut) return reject(new Error(`${name}: timed out after ${opts.timeoutMs} ms\n${stderr}`))
      if (code !== 0) return reject(new Error(`${name}: exit ${code ?? signal}\n${stderr}`))
      const last = messages[messages.length - 1]
      if (last === undefined) return reject(new Error(`${name}: printed no result\n${stderr}`))
      resolve({ messages, last, stderr, pid: cp.pid ?? 0 })
    })
  })

/** Run one of the bench's own TypeScript scripts with this Node. */
export const runNode = (script: string, args: ReadonlyArray<string>, opts: RunOptions): Promise<RunResult> =>
  runJson(process.execPath, [script, ...args], opts)

/** Start a long-lived child whose first JSON line announces it is ready; resolves with that line. */
export const startJson = (
  command: string,
  args: ReadonlyArray<string>,
  timeoutMs: number,
): Promise<{ cp: ChildProcess; hello: Record<string, unknown> }> =>
  new Promise((resolve, reject) => {
    const cp = track(spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] }))
    let stderr = ""
    cp.stderr!.setEncoding("utf8")
    cp.stderr!.on("data", (s: string) => {
      if (stderr.length < 64 * 1024) stderr += s
      if (process.env["BENCH_DEBUG"]) process.stderr.write(s)
    })
    const rl = createInterface({ input: cp.stdout! })
    const timer = setTimeout(() => {
      cp.kill("SIGKILL")
      reject(new Error(`${args[0] ?? command}: not ready after ${timeoutMs} ms\n${stderr}`))
    }, timeoutMs)
    rl.once("line", (line) => {
      clearTimeout(timer)
      try {
        resolve({ cp, hello: JSON.parse(line) as Record<string, unknown> })
      } catch {
        reject(new Error(`${args[0] ?? command}: bad hello ${line}\n${stderr}`))
      }
    })
    cp.once("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${args[0] ?? command}: exited (${code ?? signal}) before ready\n${stderr}`))
    })
  })
