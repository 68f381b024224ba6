/**
 * The auth/ folder owns who a client is: the answer to the core's `Authenticate` action (this file), the
 * users file (Htpasswd.ts) and its reloads (ProxyAuth.ts), the failure limit (FailureLimit.ts), and the
 * bcrypt verifier thread with what shares it between clients and workers (BcryptVerifier.ts,
 * verifier-thread.ts, FairVerifier.ts, VerifierHub.ts). May import: timers/, observe/, access/, src/core.
 *
 * Authenticator: the runtime's answer to the core's `Authenticate` action, for one worker.
 *
 * Owns the users of `--auth-file`, the cache of verified credentials, this worker's side of the
 * failure limit, and the coalescing of verifications. A verdict is, in this order:
 *   1. no `Proxy-Authorization`               -> `missing` (not a failure: it is how a challenge starts)
 *   2. the value was verified lately          -> `Authenticated` at once, from the cache
 *   3. this client used up its attempts       -> `rate-limited`, without verifying
 *   4. not `Basic base64(user:password)` in canonical base64, or a password that is empty or longer than
 *      bcrypt's 72 bytes                    -> `invalid` at once (each counted as an attempt)
 *   5. the same value is being verified for another connection: it waits for that verdict (not counted)
 *   6. this client has PENDING_PER_CLIENT verifications pending in this worker -> `rate-limited` at once
 *   7. otherwise an attempt starts: counted at once (FailureLimit.ts: given back if it proves right),
 *      and bcrypt runs off the event loop, on the process's verifier thread behind its FairVerifier,
 *      which applies the same limits for the whole process and gives each client its turn.
 * A client is its rate key (access/RateKey.ts): an IPv4 address, or an IPv6 /64.
 * An unknown user is checked against a decoy hash with the cost of the costliest entry of the file, and
 * always fails: the time an answer takes does not tell which user names exist, whatever the entries' costs.
 * Cached verdicts are keyed by SHA-256(secret || header value), the secret drawn at start, so memory
 * holds no password and no digest that could be brute-forced offline (an HMAC would do too, but Node's
 * createHmac costs many times what one-shot `crypto.hash` does, on every request: docs/performance.md,
 * "Figures behind the code's comments"); entries expire (CACHE_TTL_MS), the cache
 * is bounded (CACHE_MAX, oldest dropped first), and it is emptied whenever the users change.
 *
 * It must never block (bcrypt runs on the verifier thread), never throw into the socket adapter, and
 * never answer one `Authenticate` twice.
 */
import { hash, randomBytes } from "node:crypto"
import type { Event } from "../../core/events.ts"
import { rateKeyOf } from "../access/RateKey.ts"
import { type Checked, PENDING_PER_CLIENT, type Verifier } from "./FairVerifier.ts"
import { FailureLimit } from "./FailureLimit.ts"
import type { Users } from "./Htpasswd.ts"

/** A verdict event for the core. */
export type AuthVerdict = Extract<Event, { _tag: "Authenticated" } | { _tag: "AuthenticationFailed" }>

/** Whoever waits for a verdict that could not be given at once (a Connection). */
export interface AuthWaiter {
  authVerdict(verdict: AuthVerdict): void
}

/** Counters this module keeps (part of the worker's stats, protocol.ts WorkerStats). */
export interface AuthCounters {
  /** Requests accepted (from the cache or after bcrypt). */
  authOk: number
  /** Requests refused with 407 (missing, invalid, rate-limited credentials). */
  authFailed: number
  /** Of authOk: answered from the cache, without bcrypt. */
  authCached: number
  /** Of authFailed: refused without verifying, because of the client's failures or pending verifications. */
  authRateLimited: number
  /** bcrypt verifications run. */
  authVerifications: number
}

export const CACHE_TTL_MS = 5 * 60_000
export const CACHE_MAX = 10_000
/** Distinct verifications of one worker waiting for the verifier thread before new ones are answered 503. */
export const PENDING_MAX = 64
/** bcrypt reads this many bytes of a password: a longer one cannot be checked (hash-wasm refuses it). */
export const MAX_PASSWORD_BYTES = 72
/** Longer Proxy-Authorization values are refused without decoding. */
const MAX_CREDENTIALS_LENGTH = 4096

export interface AuthenticatorOptions {
  readonly users: Users
  readonly verifier: Verifier
  readonly counters: AuthCounters
  /** The clock (Deadlines.now): cache expiry and the rate-limit window. */
  readonly now: () => number
  readonly failureLimit?: number
  readonly failureWindowMs?: number
  readonly cacheTtlMs?: number
}

interface Cached {
  /** The verdict itself, handed out as is: a cache hit allocates nothing. */
  readonly verdict: AuthVerdict
  readonly expiresAt: number
}

/** Verdicts the users file and the authenticate hook give alike (HookAuthenticator.ts). */
export const missing: AuthVerdict = { _tag: "AuthenticationFailed", reason: "missing", message: "proxy authentication required" }
export const rateLimited: AuthVerdict = {
  _tag: "AuthenticationFailed",
  reason: "rate-limited",
  message: "too many failed attempts from this address: try again later",
}
const busy: AuthVerdict = {
  _tag: "AuthenticationFailed",
  reason: "rate-limited",
  message: "too many password checks pending from this address: wait for their answers",
}
export const malformed: AuthVerdict = {
  _tag: "AuthenticationFailed",
  reason: "invalid",
  message: "malformed credentials: expected Basic base64(user:password), in canonical base64",
}
const emptyPassword: AuthVerdict = { _tag: "AuthenticationFailed", reason: "invalid", message: "empty password" }
const tooLong: AuthVerdict = {
  _tag: "AuthenticationFailed",
  reason: "invalid",
  message:
    `password longer than ${MAX_PASSWORD_BYTES} bytes: bcrypt cannot check it; ` +
    `use at most ${MAX_PASSWORD_BYTES} bytes (htpasswd -B hashed only the first ${MAX_PASSWORD_BYTES} of a longer one)`,
}
const overloaded: AuthVerdict = { _tag: "AuthenticationFailed", reason: "unavailable", message: "too many credentials to check right now" }
const unchecked: AuthVerdict = { _tag: "AuthenticationFailed", reason: "unavailable", message: "the credentials could not be checked" }

/**
 * `Basic dXNlcjpwYXNz` -> { user, password }, or undefined. Only canonical base64 (RFC 4648 §3.5) is
 * accepted: padded to a multiple of 4, and no bits set beyond the data in the last character (`YR==`
 * decodes as `YQ==` does, and is refused), so one user:password pair has one spelling, the one every
 * client sends, and one cache entry.
 */
export const decodeBasic = (value: string): { readonly user: string; readonly password: string } | undefined => {
  if (value.length > MAX_CREDENTIALS_LENGTH) return undefined
  const m = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(value)
  if (m === null || m[1] === undefined || m[1].length % 4 !== 0) return undefined
  const decoded = Buffer.from(m[1], "base64")
  if (decoded.toString("base64") !== m[1]) return undefined
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(decoded)
  } catch {
    return undefined
  }
  const colon = text.indexOf(":")
  if (colon <= 0) return undefined
  return { user: text.slice(0, colon), password: text.slice(colon + 1) }
}

export class Authenticator {
  private users: Users
  /** What an unknown user's password is checked against (decoyFor): its verdict is failure whatever bcrypt says. */
  private decoy: string
  private readonly verifier: Verifier
  private readonly counters: AuthCounters
  private readonly now: () => number
  private readonly cacheTtlMs: number
  /** Prefixed to every value before hashing: the cache keys cannot be brute-forced without it. */
  private readonly secret = randomBytes(32).toString("base64")
  private readonly cache = new Map<string, Cached>()
  private readonly failures: FailureLimit
  /** Client (rate key) -> its verifications started by this worker and not answered yet. */
  private readonly pendingOf = new Map<string, number>()
  /** Cache key -> connections waiting for the verification of that value. */
  private readonly inFlight = new Map<string, Array<AuthWaiter>>()
  /** Bumped when the users change: a verification started before answers its waiters but is not cached. */
  private generation = 0

  constructor(options: AuthenticatorOptions) {
    this.users = options.users
    this.decoy = decoyFor(options.users)
    this.verifier = options.verifier
    this.counters = options.counters
    this.now = options.now
    this.failures = new FailureLimit(options.now, options.failureLimit, options.failureWindowMs)
    this.cacheTtlMs = options.cacheTtlMs ?? CACHE_TTL_MS
  }

  /** Verified values remembered now (tests, stats). */
  get cached(): number {
    return this.cache.size
  }

  /** The hash an unknown user's password is checked against now (tests). */
  get decoyHash(): string {
    return this.decoy
  }

  /** New users (the file changed): every cached verdict is forgotten. */
  replaceUsers(users: Users): void {
    this.users = users
    this.decoy = decoyFor(users)
    this.cache.clear()
    this.generation++
  }

  /**
   * The verdict on `credentials` (the raw Proxy-Authorization value) from client `address` (the effective
   * client: Connection.clientAddress): returned when it is known at once, else undefined and
   * `waiter.authVerdict` is called later, exactly once.
   */
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
    if (this.failures.reached(client)) return this.refused(rateLimited)
    const decoded = decodeBasic(credentials)
    const refusal =
      decoded === undefined
        ? malformed
        : decoded.password === ""
          ? emptyPassword
          : Buffer.byteLength(decoded.password, "utf8") > MAX_PASSWORD_BYTES
            ? tooLong
            : undefined
    if (decoded === undefined || refusal !== undefined) {
      this.failures.take(client)
      return this.failed(refusal ?? malformed)
    }
    const waiting = this.inFlight.get(key)
    if (waiting !== undefined) {
      waiting.push(waiter)
      return undefined
    }
    const pending = this.pendingOf.get(client) ?? 0
    if (pending >= PENDING_PER_CLIENT) return this.refused(busy)
    if (this.verifier.pending >= PENDING_MAX) return overloaded
    // The attempt counts from now (not reached: checked above, in this same turn); given back if it proves right.
    this.failures.take(client)
    this.pendingOf.set(client, pending + 1)
    this.inFlight.set(key, [waiter])
    const known = this.users.get(decoded.user)
    const generation = this.generation
    this.counters.authVerifications++
    this.verifier.verify(client, decoded.password, known ?? this.decoy, (answer) => {
      this.verified(key, generation, client, answer, known !== undefined, decoded.user)
    })
    return undefined
  }

  private verified(key: string, generation: number, client: string, answer: Checked, known: boolean, user: string): void {
    const waiting = this.inFlight.get(key) ?? []
    this.inFlight.delete(key)
    const pending = (this.pendingOf.get(client) ?? 1) - 1
    if (pending > 0) this.pendingOf.set(client, pending)
    else this.pendingOf.delete(client)
    let verdict: AuthVerdict
    switch (answer) {
      case "match":
      case "mismatch":
        if (answer === "match" && known) {
          verdict = { _tag: "Authenticated", user }
          this.failures.giveBack(client)
          if (generation === this.generation) this.remember(key, verdict)
        } else {
          verdict = {
            _tag: "AuthenticationFailed",
            reason: "invalid",
            message: `wrong user name or password (user ${JSON.stringify(user)})`,
          }
        }
        break
      case "limited":
        verdict = rateLimited
        break
      case "busy":
        verdict = busy
        break
      case "overloaded":
        this.failures.giveBack(client)
        verdict = overloaded
        break
      case "failed":
        this.failures.giveBack(client)
        verdict = unchecked
        break
    }
    for (const waiter of waiting) {
      if (verdict._tag === "Authenticated") this.counters.authOk++
      else if (verdict.reason !== "unavailable") {
        this.counters.authFailed++
        if (verdict.reason === "rate-limited") this.counters.authRateLimited++
      }
      try {
        waiter.authVerdict(verdict)
      } catch {
        // A waiter's failure is its own (the Connection logs and releases itself); the others still get theirs.
      }
    }
  }

  private failed(verdict: AuthVerdict): AuthVerdict {
    this.counters.authFailed++
    return verdict
  }

  /** A 407 without verifying, because of the client's failures or pending verifications. */
  private refused(verdict: AuthVerdict): AuthVerdict {
    this.counters.authRateLimited++
    return this.failed(verdict)
  }

  private remember(key: string, verdict: AuthVerdict): void {
    if (this.cache.size >= CACHE_MAX) {
      const oldest = this.cache.keys().next()
      if (oldest.done !== true) this.cache.delete(oldest.value)
    }
    this.cache.set(key, { verdict, expiresAt: this.now() + this.cacheTtlMs })
  }
}

/** bcrypt's base64 alphabet, in the order of the standard one (RFC 4648): the same bits, other characters. */
const STANDARD_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const BCRYPT_BASE64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
const bcryptBase64 = (bytes: Buffer): string =>
  bytes
    .toString("base64")
    .replace(/=+$/, "")
    .replace(/./g, (c) => BCRYPT_BASE64[STANDARD_BASE64.indexOf(c)]!)

/** The cost (log2 of the rounds) of a bcrypt hash `$2y$NN$...`. */
export const bcryptCost = (hash: string): number => Number(hash.slice(4, 6))

/**
 * The hash an unknown user's password is checked against: a well-formed bcrypt hash with the cost of the
 * costliest entry in `users`, a random salt and a random digest, so that checking it takes as long as
 * checking the slowest real user and no password matches it (the chance is 2^-184). Taking any one real
 * entry (the first, as before issue 17) made an unknown name answer as fast as that entry's cost, which
 * told names apart when entries have different costs. No users: "" (bcrypt refuses it at once; every
 * name is unknown then, there is nothing to tell apart).
 */
export const decoyFor = (users: Users): string => {
  let cost = -1
  for (const h of users.values()) cost = Math.max(cost, bcryptCost(h))
  if (cost < 0) return ""
  return `$2b$${String(cost).padStart(2, "0")}$${bcryptBase64(randomBytes(16))}${bcryptBase64(randomBytes(23))}`
}
