/**
 * Htpasswd: reads the user file of `--auth-file`, as Apache's `htpasswd -B` writes it.
 *
 * Owns the file format and its error messages. One `user:hash` entry per line; blank lines and lines
 * starting with `#` are skipped. Only bcrypt hashes (`$2y$`, `$2b$`, `$2a$`) are accepted: the other
 * formats htpasswd can write (Apache MD5 `$apr1$`, `{SHA}`, crypt, plain text) are fast to brute-force,
 * and a proxy that accepted them would make a stolen file a list of passwords. Each refused line is
 * named, with the command that makes a bcrypt entry.
 *
 * Pure string work: the caller reads the file (the CLI at start-up, each worker when it changes).
 */

/** A parsed file: user name -> bcrypt hash, in file order. */
export type Users = ReadonlyMap<string, string>

export type HtpasswdResult = { readonly ok: true; readonly users: Users } | { readonly ok: false; readonly problems: ReadonlyArray<string> }

/** `$2y$10$` + 22 characters of salt + 31 of hash, in bcrypt's base64 alphabet. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/

/** What a refused hash looks like it is, for the message. */
const describeHash = (hash: string): string => {
  if (hash.startsWith("$apr1$")) return "an Apache MD5 ($apr1$) hash (htpasswd -m, its default)"
  if (hash.startsWith("{SHA}")) return "a SHA-1 ({SHA}) hash (htpasswd -s)"
  if (/^\$(1|5|6)\$/.test(hash)) return `a crypt ${hash.startsWith("$1$") ? "MD5" : hash.startsWith("$5$") ? "SHA-256" : "SHA-512"} hash`
  if (/^\$2[a-z]?\$/.test(hash)) return "a malformed bcrypt hash"
  if (hash === "") return "an empty password field"
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return "a DES crypt hash or a plain-text password (htpasswd -d or -p)"
  return "a plain-text password or an unknown format (htpasswd -p)"
}

/**
 * Parse an htpasswd file. `name` is how messages refer to the file (its path). A file without entries is
 * a problem at start-up (surely a mistake), but not with `allowEmpty`: a running proxy whose file lost its
 * last user (`htpasswd -D`) must let nobody in, not keep the users it had.
 */
export const parseHtpasswd = (text: string, name: string, options: { readonly allowEmpty?: boolean } = {}): HtpasswdResult => {
  const users = new Map<string, string>()
  const lineOf = new Map<string, number>()
  const problems: Array<string> = []
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, index) => {
    const line = raw.trim()
    const n = index + 1
    if (line === "" || line.startsWith("#")) return
    const colon = line.indexOf(":")
    if (colon <= 0) {
      problems.push(`${name}: line ${n} is not a "user:hash" entry`)
      return
    }
    const user = line.slice(0, colon)
    const hash = line.slice(colon + 1)
    if (!BCRYPT.test(hash)) {
      problems.push(
        `${name}: line ${n} (user ${JSON.stringify(user)}) has ${describeHash(hash)}; only bcrypt is accepted. ` +
          `Make a bcrypt entry with: htpasswd -B ${name} ${user}  (htpasswd -B -c ${name} ${user} starts a new file)`,
      )
      return
    }
    const first = lineOf.get(user)
    if (first !== undefined) {
      problems.push(`${name}: user ${JSON.stringify(user)} appears twice (lines ${first} and ${n}); keep one entry`)
      return
    }
    lineOf.set(user, n)
    users.set(user, hash)
  })
  if (problems.length > 0) return { ok: false, problems }
  if (users.size === 0 && options.allowEmpty !== true) {
    return {
      ok: false,
      problems: [`${name} has no user: add one with htpasswd -B ${name} USER (htpasswd -B -c ${name} USER starts a new file)`],
    }
  }
  return { ok: true, users }
}
