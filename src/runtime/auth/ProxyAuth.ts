/**
 * ProxyAuth: proxy authentication for one worker: the user file of `--auth-file`, kept current, and
 * the Authenticator that answers the core's `Authenticate` (bcrypt runs on the process's verifier
 * thread, reached through the worker's port: VerifierHub.ts).
 *
 * Owns reading the file and watching it: the file is polled (`fs.watchFile`, by path, so a file that
 * `htpasswd` replaces by renaming a new one over it is seen too); when it changes it is read again and,
 * if valid, its users replace the old ones and every cached verdict is dropped. A valid file without
 * entries (`htpasswd -D` of the last user) lets nobody in, with a warning. An invalid file is logged and
 * ignored: the users before it stay (the CLI refused it at start-up already, so this is an edit in
 * progress or a mistake; locking everybody out would be worse). A file that can no longer be read
 * (deleted, renamed away, replaced by a directory, its permissions taken) keeps the users too, as an
 * editor that deletes and rewrites the file would otherwise lock everybody out for a moment; since the
 * users it names then keep getting in, it is logged loudly: a warning that says so, at most one per
 * GONE_WARN_INTERVAL_MS (the ones in between counted in the next). A file that cannot be read at start
 * leaves no user: every request gets 407 (fail closed) and an error is logged.
 *
 * A reload may name another file (`follow`): the watch moves to it and its users replace the old ones
 * (the CLI checked it before the reload). The verifier it is given (the worker's port to the process's
 * verifier thread) outlives it: `close` closes only a verifier it made itself.
 *
 * It must never throw into the worker: every problem becomes a log line.
 */
import { readFileSync, type Stats, statSync, unwatchFile, watchFile } from "node:fs"
import type { AccessLog } from "../observe/AccessLog.ts"
import { type AuthCounters, Authenticator } from "./Authenticator.ts"
import { FairVerifier, type Verifier } from "./FairVerifier.ts"
import { parseHtpasswd, type Users } from "./Htpasswd.ts"

/** How often the user file is checked for changes. */
export const AUTH_FILE_POLL_MS = 1_000
/** At most one "cannot read the auth file any more" warning per this long (per worker). */
export const GONE_WARN_INTERVAL_MS = 60_000

export interface ProxyAuthOptions {
  readonly path: string
  readonly counters: AuthCounters
  readonly now: () => number
  readonly log: AccessLog
  /** The process's verifier (a PortVerifier); default: a FairVerifier with a thread of this worker's own. */
  readonly verifier?: Verifier
  readonly pollMs?: number
  readonly goneWarnIntervalMs?: number
}

/** Why a file cannot be read, in words an operator acts on. */
const unreadable = (e: unknown): string => {
  const code = (e as { code?: unknown } | null)?.code
  if (code === "ENOENT") return "it was deleted or renamed away"
  if (code === "EISDIR") return "it is a directory now"
  if (code === "EACCES" || code === "EPERM") return "permission denied"
  return e instanceof Error ? e.message : String(e)
}

/**
 * Read and parse the file (`allowEmpty`: a file without entries is valid); a message for the log when
 * it cannot be used, and `unreadable`, why, when it could not even be read.
 */
export const loadUsers = (
  path: string,
  allowEmpty = false,
): { readonly users: Users } | { readonly problem: string; readonly unreadable?: string } => {
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch (e) {
    return { problem: `cannot read the auth file ${path}: ${e instanceof Error ? e.message : String(e)}`, unreadable: unreadable(e) }
  }
  const parsed = parseHtpasswd(text, path, { allowEmpty })
  return parsed.ok ? { users: parsed.users } : { problem: parsed.problems.join("; ") }
}

const versionOf = (s: Stats): string => `${s.mtimeMs}:${s.size}:${s.ino}`
const fileVersion = (path: string): string => {
  try {
    return versionOf(statSync(path))
  } catch {
    return "0:0:0" // missing: what watchFile reports for a missing file (loadUsers says why)
  }
}

export class ProxyAuth {
  readonly authenticator: Authenticator
  private currentPath: string
  private readonly log: AccessLog
  private readonly verifier: Verifier
  private readonly now: () => number
  private readonly goneWarnIntervalMs: number
  /** When the last "cannot read" warning was written, and how many were left out since. */
  private goneWarnedAt = Number.NEGATIVE_INFINITY
  private goneUnlogged = 0
  /** Users in force now (for the warnings). */
  private userCount: number
  /** The verifier was made here (no shared one was given): `close` closes it. */
  private readonly ownsVerifier: boolean
  private readonly pollMs: number
  private readonly onChange: (current: Stats, previous: Stats) => void
  /** The version of the file last read (mtime, size, inode), so a change is read once, by whichever comes first. */
  private version: string

  constructor(options: ProxyAuthOptions) {
    this.currentPath = options.path
    this.log = options.log
    this.now = options.now
    this.goneWarnIntervalMs = options.goneWarnIntervalMs ?? GONE_WARN_INTERVAL_MS
    this.pollMs = options.pollMs ?? AUTH_FILE_POLL_MS
    this.ownsVerifier = options.verifier === undefined
    this.verifier =
      options.verifier ?? new FairVerifier({ onError: (error) => options.log.message("error", `proxy authentication: ${error.message}`) })
    this.version = fileVersion(options.path)
    const loaded = loadUsers(options.path)
    if ("problem" in loaded)
      this.log.message("error", `proxy authentication: ${loaded.problem}; every request gets 407 until the file is fixed`)
    this.userCount = "users" in loaded ? loaded.users.size : 0
    this.authenticator = new Authenticator({
      users: "users" in loaded ? loaded.users : new Map(),
      verifier: this.verifier,
      counters: options.counters,
      now: options.now,
    })
    // The poller compares with what was last read, not with its own previous look: after a reload on
    // SIGHUP (reload() below) the same change is not read, logged and the cache dropped a second time.
    this.onChange = (current) => {
      if (versionOf(current) === this.version) return
      this.reload()
    }
    watchFile(this.path, { interval: this.pollMs, persistent: false }, this.onChange)
  }

  /** The users file it reads and watches. */
  get path(): string {
    return this.currentPath
  }

  /** A reload named another users file: watch that one instead, and take its users now. */
  follow(path: string): void {
    if (path === this.currentPath) return this.reload()
    unwatchFile(this.currentPath, this.onChange)
    this.currentPath = path
    watchFile(path, { interval: this.pollMs, persistent: false }, this.onChange)
    this.reload()
  }

  /** Read the file again (it changed, or a reload asks). */
  reload(): void {
    this.version = fileVersion(this.path)
    const loaded = loadUsers(this.path, true)
    if ("problem" in loaded) {
      if (loaded.unreadable !== undefined) return this.warnUnreadable(loaded.unreadable)
      this.log.message(
        "error",
        `proxy authentication: the auth file changed but cannot be used, keeping the previous users: ${loaded.problem}`,
      )
      return
    }
    this.authenticator.replaceUsers(loaded.users)
    this.userCount = loaded.users.size
    if (loaded.users.size === 0) {
      this.log.message("warn", `proxy authentication: ${this.path} has no user now: every request gets 407 until one is added`)
      return
    }
    this.log.message(
      "info",
      `proxy authentication: ${this.path} reloaded (${loaded.users.size} user${loaded.users.size === 1 ? "" : "s"}), cached credentials dropped`,
    )
  }

  /** The file cannot be read any more: the users stay, and the operator must know it (rate-limited). */
  private warnUnreadable(why: string): void {
    const now = this.now()
    if (now < this.goneWarnedAt + this.goneWarnIntervalMs) {
      this.goneUnlogged++
      return
    }
    const unlogged =
      this.goneUnlogged === 0 ? "" : ` (${this.goneUnlogged} more such change${this.goneUnlogged === 1 ? "" : "s"} since the last warning)`
    this.goneWarnedAt = now
    this.goneUnlogged = 0
    const users = `${this.userCount} user${this.userCount === 1 ? "" : "s"}`
    this.log.message(
      "warn",
      `proxy authentication: cannot read ${this.path} any more (${why}): the ${users} read from it before ${this.userCount === 1 ? "stays" : "stay"} in force and can still log in; ` +
        `put a valid file back at that path to change them (a file without entries lets nobody in), or stop the proxy${unlogged}`,
    )
  }

  close(): void {
    unwatchFile(this.currentPath, this.onChange)
    if (this.ownsVerifier) this.verifier.close()
  }
}
