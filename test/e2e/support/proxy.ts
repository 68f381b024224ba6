/**
 * Launcher of the REAL compiled proxy: `node dist/cli.js --listen 127.0.0.1:PORT --workers 2 ...`.
 *
 * - The port is picked by binding 127.0.0.1:0, reading it and closing (with reusePort each worker would
 *   get a port of its own if we passed 0).
 * - `start` resolves once the start-up line is on stdout (and the port accepts connections).
 * - stdout / stderr are collected as lines (the access log is on stdout).
 * - `stop` sends SIGTERM, waits for the exit, SIGKILLs after a bound. Every proxy started is also
 *   killed when the test process exits, so a failed test leaves nothing running.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { existsSync } from "node:fs"
import net from "node:net"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { cleanEnv } from "./env.ts"
import { freePort, LOOPBACK } from "./origins.ts"

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
/** The program under test; HCTUNNEL_E2E_CLI may point elsewhere (e.g. to try the suite against another build). */
export const CLI = process.env["HCTUNNEL_E2E_CLI"] ?? resolve(ROOT, "dist/cli.js")

export interface ProxyOptions {
  readonly workers?: number
  /** Timeouts in milliseconds (converted to what the CLI takes in `flagsFor`). */
  readonly connectTimeoutMs?: number
  readonly headTimeoutMs?: number
  readonly keepAliveTimeoutMs?: number
  readonly idleTimeoutMs?: number
  readonly graceMs?: number
  readonly maxHeadBytes?: number
  readonly maxRequestLine?: number
  /** Log format: "text" unless told; "config" passes no --log-format, so that the config file decides. */
  readonly logFormat?: "text" | "json" | "config"
  /** Extra raw flags. */
  readonly extraArgs?: ReadonlyArray<string>
  /** Extra environment (e.g. HCTUNNEL_TEST_HOOKS=1). */
  readonly env?: Readonly<Record<string, string>>
  /** Listen on this host instead of 127.0.0.1 (e.g. "0.0.0.0" for an exposed proxy; tests still dial 127.0.0.1). */
  readonly listenHost?: string
  /** The program to run instead of CLI (e.g. an installed package's bin), and the directory to run it in. */
  readonly cli?: string
  readonly cwd?: string
  /** A command that runs the proxy command given as its last arguments (e.g. `bash -c 'ulimit -n 64; exec "$@"' x`). */
  readonly wrap?: ReadonlyArray<string>
}

/**
 * The CLI's flag names (src/cli/config.ts). Kept in one place so a rename is a one-line change here.
 */
export const flagsFor = (port: number, o: ProxyOptions): string[] => {
  const args = ["--listen", `${o.listenHost ?? LOOPBACK}:${port}`, "--workers", String(o.workers ?? 2)]
  if (o.logFormat !== "config") args.push("--log-format", o.logFormat ?? "text")
  const ms = (flag: string, v: number | undefined): void => {
    if (v !== undefined) args.push(flag, `${v}ms`)
  }
  ms("--connect-timeout", o.connectTimeoutMs)
  ms("--head-timeout", o.headTimeoutMs)
  ms("--keep-alive-timeout", o.keepAliveTimeoutMs)
  ms("--idle-timeout", o.idleTimeoutMs)
  ms("--shutdown-grace", o.graceMs)
  if (o.maxHeadBytes !== undefined) args.push("--max-head-bytes", String(o.maxHeadBytes))
  if (o.maxRequestLine !== undefined) args.push("--max-request-line", String(o.maxRequestLine))
  args.push(...(o.extraArgs ?? []))
  return args
}

/** The start-up line the CLI prints once every worker listens. */
const READY = /listening/i

const live = new Set<ChildProcess>()
process.once("exit", () => {
  for (const cp of live) cp.kill("SIGKILL")
})

export interface Proxy {
  readonly port: number
  readonly pid: number
  readonly url: string
  readonly args: ReadonlyArray<string>
  readonly child: ChildProcess
  /** stdout lines so far (the access log and start-up line). */
  readonly stdout: string[]
  readonly stderr: string[]
  /** Resolves with the first stdout line (present or future) that matches. */
  waitForLine(match: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>
  /** Resolves with the exit code/signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGTERM, wait, SIGKILL after `boundMs`. */
  stop(boundMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Everything it printed, for failure messages. */
  output(): string
}

export const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, LOOPBACK)
    s.once("connect", () => {
      s.destroy()
      resolve(true)
    })
    s.once("error", () => resolve(false))
  })

export const startProxy = async (options: ProxyOptions = {}, startTimeoutMs = 45_000): Promise<Proxy> => {
  const cli = options.cli ?? CLI
  if (!existsSync(cli)) throw new Error(`${cli} does not exist: run \`npm run build\` (npm test does it first)`)
  const port = await freePort()
  const args = flagsFor(port, options)
  const [command, ...prefix] = options.wrap ?? [process.execPath]
  const child = spawn(command!, options.wrap === undefined ? [cli, ...args] : [...prefix, process.execPath, cli, ...args], {
    cwd: options.cwd ?? ROOT,
    env: cleanEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  })
  live.add(child)
  const stdout: string[] = []
  const stderr: string[] = []
  const watchers: Array<{ test: (l: string) => boolean; resolve: (l: string) => void }> = []
  const lineReader = (into: string[], notify: boolean) => {
    let rest = ""
    return (chunk: Buffer): void => {
      rest += chunk.toString("utf8")
      let nl: number
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl).replace(/\r$/, "")
        rest = rest.slice(nl + 1)
        into.push(line)
        if (notify) {
          for (let i = watchers.length - 1; i >= 0; i--) {
            const w = watchers[i]!
            if (w.test(line)) {
              watchers.splice(i, 1)
              w.resolve(line)
            }
          }
        }
      }
    }
  }
  child.stdout!.on("data", lineReader(stdout, true))
  child.stderr!.on("data", lineReader(stderr, false))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    })
  })
  const output = (): string => `$ node ${cli} ${args.join(" ")}\n--- stdout ---\n${stdout.join("\n")}\n--- stderr ---\n${stderr.join("\n")}`
  const waitForLine = (match: RegExp | ((line: string) => boolean), timeoutMs = 10_000): Promise<string> => {
    const test = typeof match === "function" ? match : (l: string) => match.test(l)
    const found = stdout.find(test)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const w = {
        test,
        resolve: (l: string) => {
          clearTimeout(t)
          resolve(l)
        },
      }
      const t = setTimeout(() => {
        const i = watchers.indexOf(w)
        if (i >= 0) watchers.splice(i, 1)
        reject(new Error(`no stdout line matching ${String(match)} within ${timeoutMs} ms\n${output()}`))
      }, timeoutMs)
      watchers.push(w)
    })
  }
  const stop = async (boundMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      const t = setTimeout(() => child.kill("SIGKILL"), boundMs)
      const r = await exited
      clearTimeout(t)
      return r
    }
    return exited
  }
  const proxy: Proxy = {
    port,
    pid: child.pid ?? 0,
    url: `http://${LOOPBACK}:${port}`,
    args,
    child,
    stdout,
    stderr,
    waitForLine,
    exited,
    stop,
    output,
  }
  try {
    await Promise.race([
      waitForLine(READY, startTimeoutMs),
      exited.then((r) => {
        throw new Error(`proxy exited before it was ready (${r.code ?? r.signal})\n${output()}`)
      }),
    ])
    // The line may come from the main thread a moment before every worker's listen completed.
    for (let i = 0; i < 100 && !(await canConnect(port)); i++) await new Promise((r) => setTimeout(r, 20))
  } catch (e) {
    child.kill("SIGKILL")
    await exited
    throw e
  }
  return proxy
}

/** Count the proxy's open file descriptors (Linux /proc), with a breakdown by kind ("socket", "pipe", "anon_inode:[eventfd]"...). */
export const fdCount = async (pid: number): Promise<{ total: number; sockets: number; kinds: Record<string, number> }> => {
  const { readdir, readlink } = await import("node:fs/promises")
  const names = await readdir(`/proc/${pid}/fd`)
  let sockets = 0
  let total = 0
  const kinds: Record<string, number> = {}
  for (const n of names) {
    let kind: string
    try {
      kind = (await readlink(`/proc/${pid}/fd/${n}`)).replace(/:\[\d+\]$/, "")
    } catch {
      continue // closed between readdir and readlink: not open any more
    }
    total++
    if (kind === "socket") sockets++
    kinds[kind] = (kinds[kind] ?? 0) + 1
  }
  return { total, sockets, kinds }
}
