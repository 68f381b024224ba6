/**
 * The faults, injected while the load runs, each confirmed by what the proxy says or shows:
 * - reload: the config file rewritten (a <-> b) and SIGHUP, every 15 s; confirmed by `configuration
 *   reloaded`. Now and then a broken file instead, which must be answered `reload rejected`.
 * - users: the users file rewritten (a fresh hash for alice, carol added or removed); confirmed when every
 *   worker logged that it read it.
 * - dns: the DNS server silent for a while (every question dropped).
 * - fds: thousands of idle kept-alive clients, up to just under the point where the proxy pauses accepting
 *   (1/16 of its open-files limit left); each must still work when the phase ends.
 * - kill: a worker thread ended abruptly (Inspector.ts); confirmed by the supervisor's `worker N stopped`
 *   and `replaced` lines.
 */
import { BROKEN, CONFIGS, configText, type Ports, replaceFile } from "../env/Files.ts"
import type { Inspector } from "../env/Inspector.ts"
import type { ProxyProcess } from "../env/Proxy.ts"
import { Conn, type Env, expectBody } from "../load/Client.ts"
import type { ConfigName, Ledger } from "../report/Ledger.ts"
import { POOL_SIZE } from "../rng.ts"
import { field, head, responseFraming } from "../wire/http1.ts"

export interface FaultDeps {
  readonly proxy: ProxyProcess
  readonly inspector: Inspector
  readonly ledger: Ledger
  readonly env: Env
  readonly configFile: string
  readonly usersFile: string
  readonly ports: Ports
  readonly users: { readonly alice: ReadonlyArray<string>; readonly carol: string }
  readonly dns: { readonly silence: () => void; readonly answer: () => void }
  readonly workers: number
  readonly openFilesLimit: number
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export class Faults {
  private config: ConfigName = "a"
  private reloadsSent = 0
  private usersVersion = 0
  private carolPresent = true
  private kills = 0
  /** Worker threads ended so far. */
  get killed(): number {
    return this.kills
  }
  /** Peak of the proxy's open fds during an fd phase, and how many idle clients it held. */
  fdPeak = 0
  idleClients = 0
  /** Reloads that did not reach every worker: unsettled until a later one does. */
  private readonly partial: Array<{ confirmed: number }> = []
  /** One reload or users change at a time: their confirmations are read from the log in order. */
  private lock: Promise<void> = Promise.resolve()

  private readonly d: FaultDeps

  constructor(d: FaultDeps) {
    this.d = d
    d.ledger.startConfig("a")
    d.ledger.carolInitially(true)
  }

  private serial(f: () => Promise<void>): Promise<void> {
    const run = this.lock.then(f, f)
    this.lock = run.catch(() => {})
    return run
  }

  private problem(what: string): void {
    this.d.ledger.record("fault", "unexpected", what)
  }

  /** SIGHUP with the other valid configuration; resolves once the proxy confirmed it. */
  reload(): Promise<void> {
    return this.serial(async () => {
      const to: ConfigName = this.config === "a" ? "b" : "a"
      replaceFile(this.d.configFile, configText(to, this.d.ports))
      const answer = this.d.proxy.waitFor((l) => /configuration reloaded|reload rejected/.test(l), 15_000)
      const r = this.d.ledger.reloadSent(to)
      this.d.proxy.signal("SIGHUP")
      this.d.ledger.faults++
      try {
        const line = await answer
        const m = /configuration reloaded: (\d+) workers?/.exec(line)
        if (m === null) return this.problem(`reload to ${to}: ${line}`)
        this.config = to
        this.d.ledger.reloads++
        this.d.ledger.note(`reload -> ${CONFIGS[to].via}`)
        if (Number(m[1]) < this.d.workers) {
          // Fewer workers than run: one of them keeps the old configuration (finding F3, fixed: a thread that
          // was starting gets the settings before it listens, and is counted). Unexpected if it comes back;
          // both configurations stay acceptable until a reload reaches every worker.
          this.d.ledger.record("reload", "unexpected", `F3: the reload reached ${m[1]} of ${this.d.workers} workers`)
          this.partial.push(r)
          return
        }
        r.confirmed = performance.now()
        for (const p of this.partial.splice(0)) p.confirmed = r.confirmed
      } catch (e) {
        this.problem(`reload to ${to}: ${String(e)}`)
      }
    })
  }

  /** SIGHUP with a broken file: must be rejected, and nothing may change. */
  brokenReload(): Promise<void> {
    return this.serial(async () => {
      const text = BROKEN[this.reloadsSent++ % BROKEN.length]!
      replaceFile(this.d.configFile, text)
      const answer = this.d.proxy.waitFor((l) => /configuration reloaded|reload rejected/.test(l), 15_000)
      this.d.proxy.signal("SIGHUP")
      this.d.ledger.faults++
      try {
        const line = await answer
        if (!/reload rejected, the running configuration stays/.test(line)) return this.problem(`a broken config was not rejected: ${line}`)
        this.d.ledger.rejectedReloads++
        this.d.ledger.note("broken config rejected")
      } catch (e) {
        this.problem(`broken reload: ${String(e)}`)
      }
      // Leave the file valid again (as it was), so that an unrelated re-read never meets the broken one.
      replaceFile(this.d.configFile, configText(this.config, this.d.ports))
    })
  }

  /** The users file rewritten: alice with a fresh hash, carol added or removed. */
  changeUsers(): Promise<void> {
    return this.serial(async () => {
      this.carolPresent = !this.carolPresent
      this.usersVersion++
      const lines = [this.d.users.alice[this.usersVersion % this.d.users.alice.length]!, ...(this.carolPresent ? [this.d.users.carol] : [])]
      const users = lines.length
      let seen = 0
      const confirmed = this.d.proxy.waitFor(
        (l) => new RegExp(`proxy authentication: .* reloaded \\(${users} users?\\)`).test(l) && ++seen === this.d.workers,
        20_000,
      )
      replaceFile(this.d.usersFile, `${lines.join("\n")}\n`)
      const c = this.d.ledger.carolWritten(this.carolPresent)
      this.d.ledger.faults++
      try {
        await confirmed
        c.confirmed = performance.now()
        this.d.ledger.note(`users file: carol ${this.carolPresent ? "added" : "removed"}`)
      } catch (e) {
        this.problem(`users file change not read by every worker: ${String(e)}`)
      }
    })
  }

  /** The DNS server drops every question for `ms`. */
  async dnsSilence(ms: number): Promise<void> {
    const w = this.d.ledger.dnsSilent()
    this.d.dns.silence()
    this.d.ledger.faults++
    this.d.ledger.note(`DNS silent for ${ms / 1000} s`)
    await sleep(ms)
    this.d.dns.answer()
    // A failure is cached 2 s, and a lookup already waiting gives up only after two tries (≤ 2 s each).
    w.end = performance.now() + 7000
  }

  /** Ends one worker thread abruptly and waits for its replacement. */
  async killWorker(): Promise<void> {
    const id = this.kills % this.d.workers
    const how = this.kills % 2 === 0 ? "throw" : "exit"
    this.kills++
    const w = this.d.ledger.killStarted()
    this.d.ledger.faults++
    const before = (await this.d.proxy.stats())["restarts"] ?? 0
    // A replaced worker is attached a moment after it starts (the inspector asks the new thread its id): wait for it.
    for (let i = 0; i < 100 && !this.d.inspector.proxyWorkers().includes(id); i++) await sleep(100)
    const stopped = this.d.proxy.waitFor((l) => new RegExp(`worker ${id} stopped`).test(l), 15_000)
    const replaced = this.d.proxy.waitFor((l) => new RegExp(`worker ${id} replaced: listening again`).test(l), 30_000)
    if (!this.d.inspector.endWorker(id, how)) {
      // Nobody awaits these two now: their time-outs must not end the soak as unhandled rejections.
      stopped.catch(() => {})
      replaced.catch(() => {})
      w.end = performance.now()
      return this.problem(`worker ${id} not found through the inspector (attached: ${this.d.inspector.proxyWorkers().join(", ")})`)
    }
    try {
      const line = await stopped
      this.d.ledger.note(`worker ${id} ended (${how}): ${line.replace(/^.*?worker/, "worker")}`)
      // The line names what ended it: the exception's own message (finding F5), or the exit code.
      const why = how === "throw" ? /stopped: uncaught Error: ended on purpose by the soak/ : /stopped: .*exited with code: 71/
      if (!why.test(line)) this.problem(`worker ${id} ended (${how}), but the log says: ${line}`)
      await replaced
      const after = (await this.d.proxy.stats())["restarts"] ?? 0
      if (after !== before + 1) this.problem(`restarts went from ${before} to ${after} after one worker was ended`)
    } catch (e) {
      this.problem(`worker ${id} ended (${how}) but: ${String(e)}`)
    } finally {
      w.end = performance.now() + 1000
    }
  }

  /**
   * Idle kept-alive clients until the proxy's fds are just under its pause point, held for `ms`, then each
   * used once more: every one must still work.
   */
  async fdPressure(ms: number): Promise<void> {
    const { env, proxy, ledger } = this.d
    const started = performance.now()
    ledger.faults++
    const pausePoint = this.d.openFilesLimit - Math.floor(this.d.openFilesLimit / 16)
    const target = pausePoint - proxy.fds() - 400
    const idle: Array<Conn> = []
    let failures = 0
    const one = async (i: number): Promise<void> => {
      const o = (i * 7919) % POOL_SIZE
      const c = await Conn.open(env, `127.0.0.${20 + (i % 200)}`)
      c.write(
        head(`GET http://127.0.0.1:${env.ports.good}/data?o=${o}&n=64 HTTP/1.1`, [
          ["Host", `127.0.0.1:${env.ports.good}`],
          ["Proxy-Authorization", env.alice],
        ]),
      )
      const h = (await c.finalHead()).head
      if (h.status !== 200) throw new Error(`status ${h.status}`)
      c.checkVia(h)
      await expectBody(c, env, responseFraming("GET", h), o, 64)
      idle.push(c)
    }
    const batch = async (from: number, to: number, f: (i: number) => Promise<void>): Promise<void> => {
      const jobs: Array<Promise<void>> = []
      for (let i = from; i < to; i++)
        jobs.push(
          f(i).catch((e) => {
            failures++
            this.problem(`fd phase client ${i}: ${String(e)}`)
          }),
        )
      await Promise.all(jobs)
    }
    for (let i = 0; i < target && performance.now() - started < ms / 2; i += 128) await batch(i, Math.min(target, i + 128), one)
    this.idleClients = idle.length
    this.fdPeak = proxy.fds()
    ledger.note(`fd phase: ${idle.length} idle clients, proxy fds ${this.fdPeak} of ${this.d.openFilesLimit} (pause point ${pausePoint})`)
    await sleep(Math.max(0, ms - (performance.now() - started)))
    // Each idle client once more, then it closes: the proxy must have kept every one.
    const again = async (i: number): Promise<void> => {
      const c = idle[i]!
      const o = (i * 104729) % POOL_SIZE
      c.write(
        head(`GET http://127.0.0.1:${env.ports.good}/data?o=${o}&n=64 HTTP/1.1`, [
          ["Host", `127.0.0.1:${env.ports.good}`],
          ["Proxy-Authorization", env.alice],
          ["Connection", "close"],
        ]),
      )
      try {
        const h = (await c.finalHead()).head
        if (h.status !== 200 || field(h.fields, "connection") !== "close") throw new Error(`status ${h.status}`)
        c.checkVia(h)
        await expectBody(c, env, responseFraming("GET", h), o, 64)
        ledger.requests += 2
      } finally {
        c.destroy()
      }
    }
    for (let i = 0; i < idle.length; i += 64) await batch(i, Math.min(idle.length, i + 64), again)
    if (failures === 0) ledger.record("fd phase", "ok")
  }
}
