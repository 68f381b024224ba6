/**
 * The files the proxy reads and the soak rewrites: the JSON config (two valid versions that alternate on
 * SIGHUP, and a broken one that must be rejected) and the users file (bcrypt entries, rewritten to add and
 * remove a user). Both are replaced by rename, as an operator's editor or config tool would, so the proxy
 * never reads half a file.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, renameSync, writeFileSync } from "node:fs"
import { bcrypt } from "hash-wasm"
import type { ConfigName } from "../report/Ledger.ts"

export interface Ports {
  /** Denied by both configurations. */
  readonly denyAll: number
  /** Denied by configuration a only / b only. */
  readonly denyA: number
  readonly denyB: number
}

/** What differs between the two valid configurations, and what the soak's checks read from it. */
export const CONFIGS = {
  a: { via: "soak-a", idleTimeoutMs: 8000, headTimeoutMs: 6000 },
  b: { via: "soak-b", idleTimeoutMs: 9000, headTimeoutMs: 7000 },
} as const

/** Both configurations: timeouts every check can rely on. */
export const KEEP_ALIVE_TIMEOUT_MS = 30_000
export const CONNECT_TIMEOUT_MS = 6000

export const configText = (name: ConfigName, ports: Ports): string => {
  const c = CONFIGS[name]
  return `${JSON.stringify(
    {
      via: c.via,
      denyTo: [`127.0.0.1:${ports.denyAll}`, `127.0.0.1:${name === "a" ? ports.denyA : ports.denyB}`],
      idleTimeout: `${c.idleTimeoutMs}ms`,
      headTimeout: `${c.headTimeoutMs}ms`,
      keepAliveTimeout: `${KEEP_ALIVE_TIMEOUT_MS}ms`,
      connectTimeout: `${CONNECT_TIMEOUT_MS}ms`,
      logLevel: "info",
      shutdownGrace: "5s",
    },
    null,
    2,
  )}\n`
}

/** Broken configurations, each one the kind of mistake an operator makes; each must be rejected. */
export const BROKEN = [
  `{ "via": "soak-a", "idleTimeout": "soon" }\n`,
  `{ "via": "soak-b", "denyTo": ["127.0.0.1:notaport"] }\n`,
  `{ "via": "soak-a", `,
  `{ "via": "soak-b", "workerz": 2 }\n`,
]

/** Writes `text` to `file` through a temporary file and a rename. */
export const replaceFile = (file: string, text: string): void => {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`
  writeFileSync(tmp, text)
  renameSync(tmp, file)
}

export const PASSWORDS = { alice: "alice-soak-pw", carol: "carol-soak-pw" } as const

/** One bcrypt line `user:$2y$...`: the real `htpasswd -B` when installed, else hash-wasm in-process. */
export const bcryptLine = async (user: string, password: string): Promise<{ line: string; by: string }> => {
  for (const bin of ["/usr/bin/htpasswd", "/usr/local/bin/htpasswd"]) {
    if (!existsSync(bin)) continue
    const out = execFileSync(bin, ["-nbB", "-C", "5", user, password], { encoding: "utf8" }).trim()
    return { line: out, by: "htpasswd -B" }
  }
  const hash = await bcrypt({ password, salt: randomBytes(16), costFactor: 5, outputType: "encoded" })
  return { line: `${user}:${hash}`, by: "hash-wasm bcrypt (htpasswd not installed)" }
}

export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`
