/**
 * RouteHook: an embedding program's `route` function (docs/library.md), asked once per `Connect` before
 * anything is resolved or dialled: who may pass, and through which parent proxy.
 *
 * Owns the meaning of its answers and what happens when there is none:
 *   undefined (or null)          -> as configured (`--upstream` and `--no-upstream`, else direct);
 *   { deny: "message" }          -> refused, 403 with that message (the core's `denied`, row C11);
 *   { upstream: "http://..." }   -> through that parent proxy (user:password in the URL become its credentials);
 *   { upstream: null }           -> direct, whatever `--upstream` says;
 *   anything else, a throw, a rejection, or no answer within the hook timeout
 *                                -> `unrouted`: 503 with a sentence that says which (row UP4), and the
 *                                   error itself in the worker's log (HookProblems.ts), never to the client.
 * A parent's URL is parsed once and remembered (up to PARENTS_MAX of them), so a hook that picks among a
 * few parents costs no parsing per request. The destination policy is the Dialer's business, after this.
 */
import { describeHookError, type HookOutcome, type HookTiming, callHook, type PendingHook } from "../timers/HookCall.ts"
import type { HookProblems } from "../observe/HookProblems.ts"
import { basicAuthorization, parseUpstreamUrl } from "./ParentUrl.ts"
import { type Parent, parentOf } from "./Upstream.ts"

/** What the hook is told of one request or tunnel. */
export interface RouteRequest {
  /** The request's method ("CONNECT" for a tunnel). */
  readonly method: string
  readonly host: string
  readonly port: number
  /** A CONNECT tunnel (true), or a plain HTTP request (false). */
  readonly tunnel: boolean
  /** The authenticated user, when proxy authentication is on. */
  readonly user: string | undefined
  /** The client's IP address (the PROXY protocol header's, when there is one). */
  readonly client: string
}

/** What the hook may answer. */
export type RouteAnswer = undefined | null | { readonly deny: string } | { readonly upstream: string | null }

export type RouteFunction = (request: RouteRequest) => RouteAnswer | PromiseLike<RouteAnswer>

/** The hook's decision, as the Dialer acts on it. */
export type Route =
  | { readonly _tag: "Configured" }
  | { readonly _tag: "Direct" }
  | { readonly _tag: "Through"; readonly parent: Parent }
  | { readonly _tag: "Deny"; readonly message: string }
  | { readonly _tag: "Unrouted"; readonly message: string }

const CONFIGURED: Route = { _tag: "Configured" }
const DIRECT: Route = { _tag: "Direct" }
const INVALID_PARENT: Route = { _tag: "Unrouted", message: "the proxy's route hook named an invalid parent proxy" }

/** Parent URLs remembered, parsed (a hook names a few; a hook that makes up a new one per request is not cached past this). */
const PARENTS_MAX = 1_000
/** The longest deny message sent to a client (a longer one is cut). */
const DENY_MAX = 512

/** A deny message fit for a response body: one line of printable text, not empty, not endless. */
const denyText = (text: string): string => {
  const line = text.replace(/[\x00-\x1f\x7f]+/g, " ").trim()
  if (line === "") return "denied by the proxy's route hook"
  return line.length > DENY_MAX ? `${line.slice(0, DENY_MAX)}…` : line
}

export class RouteHook {
  private readonly route: RouteFunction
  private readonly timing: HookTiming
  private readonly problems: HookProblems
  private readonly parents = new Map<string, Route>()
  private readonly timedOut: Route

  constructor(route: RouteFunction, timing: HookTiming, problems: HookProblems) {
    this.route = route
    this.timing = timing
    this.problems = problems
    this.timedOut = { _tag: "Unrouted", message: `the proxy's route hook did not answer within ${timing.timeoutMs} ms` }
  }

  /**
   * Ask the hook about `request`; `answer` gets the decision once. Returns undefined when it was given
   * during the call (a synchronous hook), else the pending call (cancel it when the request goes away).
   */
  ask(request: RouteRequest, answer: (route: Route) => void): PendingHook | undefined {
    return callHook(this.route, request, this.timing, (outcome) => answer(this.decide(request, outcome)))
  }

  private decide(request: RouteRequest, outcome: HookOutcome<RouteAnswer>): Route {
    const where = `${request.tunnel ? "CONNECT" : request.method} ${request.host}:${request.port}`
    if (!outcome.ok) {
      if (outcome.timedOut) {
        this.problems.report("route", `no answer within ${this.timing.timeoutMs} ms for ${where}`)
        return this.timedOut
      }
      this.problems.report("route", `failed for ${where}: ${describeHookError(outcome.error)}`)
      return { _tag: "Unrouted", message: "the proxy's route hook failed" }
    }
    const value: unknown = outcome.value
    if (value === undefined || value === null) return CONFIGURED
    if (typeof value === "object") {
      if ("deny" in value && typeof value.deny === "string") return { _tag: "Deny", message: denyText(value.deny) }
      if ("upstream" in value) {
        if (value.upstream === null) return DIRECT
        if (typeof value.upstream === "string") return this.parent(value.upstream, where)
      }
    }
    this.problems.report(
      "route",
      `answered ${describeHookError(value)} for ${where}: expected undefined, { deny: "message" } or { upstream: "http://host:port" | null }`,
    )
    return { _tag: "Unrouted", message: "the proxy's route hook gave an answer it does not understand" }
  }

  /** The parent a URL names, parsed once (a URL that does not parse is reported each time). */
  private parent(url: string, where: string): Route {
    const known = this.parents.get(url)
    if (known !== undefined) return known
    const parsed = parseUpstreamUrl(url)
    if (!parsed.ok) {
      this.problems.report("route", `named an invalid parent proxy for ${where}: ${parsed.message}`)
      return INVALID_PARENT
    }
    const { host, port, user, password } = parsed.value
    const authorization = user === undefined ? undefined : basicAuthorization(user, password ?? "")
    const route: Route = { _tag: "Through", parent: parentOf(authorization === undefined ? { host, port } : { host, port, authorization }) }
    if (this.parents.size >= PARENTS_MAX) this.parents.delete(this.parents.keys().next().value as string)
    this.parents.set(url, route)
    return route
  }
}
