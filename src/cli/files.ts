/**
 * The files a configuration names, read for the command and the library alike: the config file, the
 * parent's credentials file and the users file of `authFile`, each read with a sentence that names the
 * file and says why it cannot be used (never its text).
 */
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import { parseHtpasswd } from "../runtime/auth/Htpasswd.ts"
import { StartupError } from "./config.ts"
import type { Parsed } from "./parsers.ts"

/** Why a file named by the configuration cannot be read, in a few words (`noSuchFile`: what to say for ENOENT). */
const whyUnreadable = (e: unknown, noSuchFile = "no such file"): string => {
  const code = (e as NodeJS.ErrnoException).code
  return code === "ENOENT"
    ? noSuchFile
    : code === "EACCES"
      ? "permission denied"
      : code === "EISDIR"
        ? "it is a directory"
        : String((e as Error).message)
}

export const readConfigFile = (path: string): Effect.Effect<{ name: string; text: string }, StartupError> =>
  Effect.try({
    try: () => ({ name: path, text: readFileSync(path, "utf8") }),
    catch: (e) => new StartupError({ reason: "config-file", message: `cannot read the config file ${path}: ${whyUnreadable(e)}` }),
  })

/** Reads a file a setting names (the parent's credentials); the message names the file, never its text. */
export const readSecretFile = (path: string): Parsed<string> => {
  try {
    return { ok: true, value: readFileSync(path, "utf8") }
  } catch (e) {
    return { ok: false, message: `--upstream-credentials-file ${path}: cannot read it: ${whyUnreadable(e)}` }
  }
}
/**
 * `--auth-file`: readable, and every entry a bcrypt hash (a refused line is named, with the htpasswd
 * command that makes a bcrypt entry). Checked here so that a bad file stops the start, with the reason.
 */
export const checkAuthFile = (path: string): Effect.Effect<void, StartupError> =>
  Effect.suspend(() => {
    let text: string
    try {
      text = readFileSync(path, "utf8")
    } catch (e) {
      const why = whyUnreadable(e, `no such file (create it with: htpasswd -B -c ${path} USER)`)
      return Effect.fail(new StartupError({ reason: "auth-file", message: `cannot read the auth file ${path} (--auth-file): ${why}` }))
    }
    const parsed = parseHtpasswd(text, path)
    if (parsed.ok) return Effect.void
    const problems = parsed.problems
    return Effect.fail(
      new StartupError({
        reason: "auth-file",
        message: `invalid auth file (--auth-file): ${problems.length === 1 ? problems[0] : `\n  - ${problems.join("\n  - ")}`}`,
      }),
    )
  })
