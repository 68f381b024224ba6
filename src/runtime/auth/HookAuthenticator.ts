/**
 * HookAuthenticator: the runtime's answer to the core's `Authenticate` when an embedding program gives an
 * `authenticate` hook (docs/library.md) instead of a users file. One per worker.
 *
 * The same rules as the users file's Authenticator, with the hook in bcrypt's place:
 *   1. no `Proxy-Authorization`                      -> `missing` (407)
 *   2. the same value was accepted lately             -> `Authenticated` at once, from the cache
 *   3. this client used up its attempts               -> `rate-limited` (407), the hook not asked
 *   4. not `Basic base64(user:password)`, canonical   -> `invalid` at once (counted as an attempt)
 *   5. the same value is being checked for another connection: it waits for that answer
 *   6. otherwise the hook is asked `{ user, password, client }` (counted as an attempt, given back if right):
 *      `true` -> `Authenticated(user)`; `{ user: "name" }` -> `Authenticated(name)`; `false` -> `invalid`
 *      (407); a throw, a rejection, any other answer, or none within the hook timeout -> `unavailable`
 *      (503), with the error in the worker's log (HookProblems.ts), never to the client.
 * Accepted values are cached like the users file's verdicts: keyed by SHA-256(secret || header value), for
 * CACHE_TTL_MS, at most CACHE_MAX of them. Refusals are not cached (the failure limit bounds them).
 *
 * It must never throw into the socket adapter and never answer one `Authenticate` twice.
 */
import { hash, randomBytes } from "node:crypto"
import type { HookProblems } from "../observe/HookProblems.ts"
import { rateKeyOf } from "../access/RateKey.ts"
import { describeHookError, type HookOutcome, type HookTiming, callHook } from "../timers/HookCall.ts"
import {
  type AuthCounters,
  type AuthVerdict,
  type AuthWaiter,
  type Authenticator,
  CACHE_MAX,
  CACHE_TTL_MS,
  decodeBasic,
  malformed,
  missing,
  rateLimited,
} from "./Authenticator.ts"
import { FailureLimit } from "./FailureLimit.ts"

/** What the worker's connections need of an authenticator: the users file's, or this one. */
export type ProxyAuthenticator = Pick<Authenticator, "authenticate">

/** What the hook is told. */
export interface AuthenticateRequest {
  readonly user: string
  readonly password: string
  /** The client's IP address (the PROXY protocol header's, when there is one). */
  readonly client: string
}

/** What the hook may answer: accept (optionally under another name), or refuse. */
export type AuthenticateAnswer = boolean | { readonly user: string }

export type AuthenticateFunction = (request: AuthenticateRequest) => AuthenticateAnswer | PromiseLike<AuthenticateAnswer>

const failedHook: AuthVerdict = { _tag: "AuthenticationFailed", reason: "unavailable", message: "the proxy's authenticate hook failed" }
const oddAnswer: AuthVerdict = {
  _tag: "AuthenticationFailed",
  reason: "unavailable",
  message: "the proxy's authenticate hook gave an answer it does not understand",
}

export class HookAuthenticator implements ProxyAuthenticator {
  private readonly hook: AuthenticateFunction
  private readonly timing: HookTiming
  private readonly problems: HookProblems
  private readonly counters: AuthCounters
  private readonly now: () => number
  private readonly failures: FailureLimit
  private readonly timedOut: AuthVerdict
  /** Prefixed to every value before hashing: the cache keys cannot be brute-forced without it. */
  private readonly secret = randomBytes(32).toString("base64")
  private readonly cache = new Map<string, { readonly verdict: AuthVerdict; readonly expiresAt: number }>()
  /** Cache key -> connections waiting for the hook's answer on that value. */
  private readonly inFlight = new Map<string, Array<AuthWaiter>>()

  constructor(options: {
    readonly hook: AuthenticateFunction
    readonly timing: HookTiming
    readonly problems: HookProblems
    readonly counters: AuthCounters
    readonly now: () => number
  }) {
    this.hook = options.hook
    this.timing = options.timing
    this.problems = options.problems
    this.counters = options.counters
    this.now = options.now
    this.failures = new FailureLimit(options.now)
    this.timedOut = {
      _tag: "AuthenticationFailed",
      reason: "unavailable",
      message: `the proxy's authenticate hook did not answer within ${options.timing.timeoutMs} ms`,
    }
  }

  /** Values accepted and remembered now (tests). */
  get cached(): number {
    return this.cache.size
  }

  authenticate(credentials: string | undefined, address: string, waiter: AuthWaiter): AuthVerdict | undefined {
    if (credentials === undefined) return this.failed(missing)
    const key = hash("sha256", this.secret + credentials, "base64")
    const hit = this.cache.get(key)
    if (hit !== undefined) {
      if (hit.expiresAt > this.now()) {
        this.counters.authOk++
        this.counters.authCached++
        return hit.verdict
      }
      this.cache.delete(key)
    }
    const client = rateKeyOf(address)
    if (this.failures.reached(client)) {
      this.counters.authRateLimited++
      return this.failed(rateLimited)
    }
    const decoded = decodeBasic(credentials)
    if (decoded === undefined) {
      this.failures.take(client)
      return this.failed(malformed)
    }
    const waiting = this.inFlight.get(key)
    if (waiting !== undefined) {
      waiting.push(waiter)
      return undefined
    }
    this.failures.take(client)
    this.counters.authVerifications++
    // An answer during the call (a plain function) is returned; a later one goes to the waiters.
    let now: AuthVerdict | undefined
    let sync = true
    const request: AuthenticateRequest = { user: decoded.user, password: decoded.password, client: address }
    callHook(this.hook, request, this.timing, (outcome) => {
      const verdict = this.judge(key, client, decoded.user, outcome)
      if (sync) now = verdict
      else this.answer(key, verdict)
    })
    sync = false
    if (now !== undefined) return this.count(now)
    this.inFlight.set(key, [waiter])
    return undefined
  }

  /** The verdict on the hook's outcome; an acceptance is remembered. */
  private judge(key: string, client: string, user: string, outcome: HookOutcome<AuthenticateAnswer>): AuthVerdict {
    if (!outcome.ok) {
      this.failures.giveBack(client)
      if (outcome.timedOut) {
        this.problems.report("authenticate", `no answer within ${this.timing.timeoutMs} ms for user ${JSON.stringify(user)}`)
        return this.timedOut
      }
      this.problems.report("authenticate", `failed for user ${JSON.stringify(user)}: ${describeHookError(outcome.error)}`)
      return failedHook
    }
    const value: unknown = outcome.value
    let name: string | undefined
    if (value === true) name = user
    else if (typeof value === "object" && value !== null && "user" in value && typeof value.user === "string" && value.user !== "") {
      name = value.user
    } else if (value !== false) {
      this.failures.giveBack(client)
      this.problems.report(
        "authenticate",
        `answered ${describeHookError(value)} for user ${JSON.stringify(user)}: expected true, false or { user: "name" }`,
      )
      return oddAnswer
    }
    if (name === undefined) {
      return { _tag: "AuthenticationFailed", reason: "invalid", message: `wrong user name or password (user ${JSON.stringify(user)})` }
    }
    this.failures.giveBack(client)
    const verdict: AuthVerdict = { _tag: "Authenticated", user: name }
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string)
    this.cache.set(key, { verdict, expiresAt: this.now() + CACHE_TTL_MS })
    return verdict
  }

  /** The hook answered later: every connection waiting for that value gets the verdict. */
  private answer(key: string, verdict: AuthVerdict): void {
    const waiting = this.inFlight.get(key) ?? []
    this.inFlight.delete(key)
    for (const waiter of waiting) {
      this.count(verdict)
      try {
        waiter.authVerdict(verdict)
      } catch {
        // A waiter's failure is its own (the Connection logs and releases itself); the others still get theirs.
      }
    }
  }

  private count(verdict: AuthVerdict): AuthVerdict {
    if (verdict._tag === "Authenticated") this.counters.authOk++
    else if (verdict.reason !== "unavailable") this.counters.authFailed++
    return verdict
  }

  private failed(verdict: AuthVerdict): AuthVerdict {
    this.counters.authFailed++
    return verdict
  }
}
