/**
 * Hooks: the module of an embedding program's hooks (docs/library.md), as a worker loads it.
 *
 * Every worker imports the module itself (functions cannot cross to a thread) before it listens, and
 * takes its `authenticate` and `route` exports (or those of its default export, for a CommonJS module).
 * A module that cannot be imported, or that exports neither function, stops the start with a sentence
 * that says so: the supervisor reports it as the start-up failure, so `startProxy` rejects with it.
 */
import type { AuthenticateFunction } from "./auth/HookAuthenticator.ts"
import type { RouteFunction } from "./dial/RouteHook.ts"

export interface Hooks {
  readonly authenticate?: AuthenticateFunction
  readonly route?: RouteFunction
}

const firstLine = (e: unknown): string => {
  const text = e instanceof Error ? e.message : String(e)
  return text.split("\n")[0] ?? text
}

/** Import the hooks module at `url` and take its hooks; rejects with a one-line reason. */
export const loadHooks = async (url: string): Promise<Hooks> => {
  let module: Record<string, unknown>
  try {
    module = (await import(url)) as Record<string, unknown>
  } catch (e) {
    throw new Error(`cannot load the hooks module ${url}: ${firstLine(e)}`)
  }
  const fallback = typeof module["default"] === "object" && module["default"] !== null ? (module["default"] as Record<string, unknown>) : {}
  const pick = (name: string): unknown => module[name] ?? fallback[name]
  const hooks: { authenticate?: AuthenticateFunction; route?: RouteFunction } = {}
  for (const name of ["authenticate", "route"] as const) {
    const hook = pick(name)
    if (hook === undefined) continue
    if (typeof hook !== "function") throw new Error(`the hooks module ${url}: its export ${name} is not a function`)
    hooks[name] = hook as never
  }
  if (hooks.authenticate === undefined && hooks.route === undefined) {
    throw new Error(`the hooks module ${url} exports neither authenticate nor route (e.g. export function route({ host }) { ... })`)
  }
  return hooks
}
