/**
 * The proxy under test: the built `dist/cli.js`, started the way an operator would (a config file, a users
 * file, the admin endpoint), under an open-files limit of its own (`ulimit -n`, so the fd-pressure phase
 * needs thousands of connections, not tens of thousands), and with Node's inspector on loopback, which is
 * how the soak ends a worker thread (Inspector.ts) without a switch in the product.
 *
 * It watches stdout line by line (reload confirmations, worker restarts, errors), reads /stats from the
 * admin endpoint, and the process's open fds and RSS from /proc.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs"
import http from "node:http"
import net from "node:net"

export interface ProxyStart {
  readonly cli: string
  readonly port: number
  readonly configFile: string
  readonly usersFile: string
  readonly dnsServer: string
  readonly workers: number
  readonly openFilesLimit: number
}

type Watcher = { test: (line: string) => boolean; resolve: (line: string) => void }

export class ProxyProcess {
  readonly lines: Array<string> = []
  readonly stderr: Array<string> = []
  private watchers: Array<Watcher> = []
  private readonly listeners: Array<(line: string) => void> = []
  adminPort = 0
  inspectorUrl = ""
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  readonly child: ChildProcess
  readonly port: number

  private constructor(child: ChildProcess, port: number) {
    this.child = child
    this.port = port
    this.exit = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
  }

  get pid(): number {
    return this.child.pid ?? 0
  }

  static async start(o: ProxyStart): Promise<ProxyProcess> {
    if (!existsSync(o.cli)) throw new Error(`${o.cli} does not exist: run \`npm run build\` first`)
    const args = [
      "--inspect=127.0.0.1:0",
      o.cli,
      "--listen",
      `127.0.0.1:${o.port}`,
      "--workers",
      String(o.workers),
      "--config",
      o.configFile,
      "--auth-file",
      o.usersFile,
      "--admin",
      "127.0.0.1:0",
      "--dns-server",
      o.dnsServer,
    ]
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) {
      if (/^(https?|all|no|ftp)_proxy$/i.test(k) || /^HCTUNNEL_/.test(k) || k === "NODE_OPTIONS") continue
      env[k] = v
    }
    // `exec` keeps the pid: the limit and /proc/PID are the proxy's own.
    const child = spawn("/bin/bash", ["-c", `ulimit -n ${o.openFilesLimit} && exec "$@"`, "soak-proxy", process.execPath, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    })
    const p = new ProxyProcess(child, o.port)
    p.readLines(child.stdout!, (line) => p.onLine(line))
    p.readLines(child.stderr!, (line) => {
      p.stderr.push(line)
      const m = /Debugger listening on (ws:\/\/\S+)/.exec(line)
      if (m !== null) p.inspectorUrl = m[1]!
    })
    const ready = await Promise.race([
      p.waitFor((l) => /listening on/.test(l), 60_000),
      p.exit.then((r) => {
        throw new Error(`the proxy exited before it was ready (${r.code ?? r.signal}):\n${p.stderr.join("\n")}\n${p.lines.join("\n")}`)
      }),
    ])
    const admin = /admin endpoint on http:\/\/127\.0\.0\.1:(\d+)\//.exec(ready)
    if (admin === null) throw new Error(`no admin address in the start-up line: ${ready}`)
    p.adminPort = Number(admin[1])
    if (p.inspectorUrl === "") throw new Error(`no inspector address on stderr:\n${p.stderr.join("\n")}`)
    return p
  }

  private readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
    let rest = ""
    stream.on("data", (d: Buffer) => {
      rest += d.toString("utf8")
      let nl: number
      while ((nl = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, nl).replace(/\r$/, ""))
        rest = rest.slice(nl + 1)
      }
    })
  }

  private onLine(line: string): void {
    // The access log is one line per request: keep only what the soak reads afterwards.
    if (!/^(\S+@)?127\.0\.0\.\d+:\d+ /.test(line)) this.lines.push(line)
    for (const l of this.listeners) l(line)
    for (let i = this.watchers.length - 1; i >= 0; i--) {
      const w = this.watchers[i]!
      if (w.test(line)) {
        this.watchers.splice(i, 1)
        w.resolve(line)
      }
    }
  }

  /** Calls `f` with every stdout line from now on. */
  onEveryLine(f: (line: string) => void): void {
    this.listeners.push(f)
  }

  /** The next stdout line that matches (from now on), or an error after `timeoutMs`. */
  waitFor(test: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const w: Watcher = {
        test,
        resolve: (l) => {
          clearTimeout(t)
          resolve(l)
        },
      }
      const t = setTimeout(() => {
        this.watchers = this.watchers.filter((x) => x !== w)
        reject(new Error(`no stdout line matching ${String(test)} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.watchers.push(w)
    })
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  /** GET on the admin endpoint. */
  admin(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port: this.adminPort, path, agent: false, timeout: 5000 }, (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (d: string) => {
          body += d
        })
        res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${path}: ${res.statusCode}`))))
      })
      req.on("timeout", () => req.destroy(new Error(`${path}: timed out`)))
      req.on("error", reject)
    })
  }

  async stats(): Promise<Record<string, number>> {
    return JSON.parse(await this.admin("/stats")) as Record<string, number>
  }

  /** Open file descriptors of the process (all threads share one table). */
  fds(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length
  }

  /** Open fds by kind ("socket", "pipe", "anon_inode:[eventpoll]"...), for the report when they do not come back. */
  fdKinds(): Record<string, number> {
    const kinds: Record<string, number> = {}
    for (const n of readdirSync(`/proc/${this.pid}/fd`)) {
      let kind = "?"
      try {
        kind = readlinkSync(`/proc/${this.pid}/fd/${n}`).replace(/:\[\d+\]$/, "")
      } catch {
        continue
      }
      kinds[kind] = (kinds[kind] ?? 0) + 1
    }
    return kinds
  }

  /** Resident set size of the process, MB. */
  rssMb(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, "utf8"))
    return m === null ? 0 : Number(m[1]) / 1024
  }

  /** SIGTERM, then SIGKILL after `boundMs`. */
  async stop(boundMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM")
      const t = setTimeout(() => this.child.kill("SIGKILL"), boundMs)
      const r = await this.exit
      clearTimeout(t)
      return r
    }
    return this.exit
  }
}

/** A port nothing listens on now (bound on 127.0.0.1:0 and closed). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
