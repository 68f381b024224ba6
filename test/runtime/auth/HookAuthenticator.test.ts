/**
 * The authenticate hook's authenticator (HookAuthenticator.ts) with plain functions as hooks and a clock
 * that is a variable: verdicts, renaming, the cache, coalescing, the failure limit, and a hook that throws,
 * answers nonsense or never answers (its deadline fired by hand). And HookCall, the call of any hook.
 */
import { describe, expect, it } from "vitest"
import type { AuthCounters, AuthVerdict, AuthWaiter } from "../../../src/runtime/auth/Authenticator.ts"
import { FAILURE_LIMIT } from "../../../src/runtime/auth/FailureLimit.ts"
import { type AuthenticateFunction, HookAuthenticator } from "../../../src/runtime/auth/HookAuthenticator.ts"
import { AccessLog } from "../../../src/runtime/observe/AccessLog.ts"
import { HookProblems } from "../../../src/runtime/observe/HookProblems.ts"
import { Deadlines } from "../../../src/runtime/timers/Deadlines.ts"
import { callHook, type HookOutcome } from "../../../src/runtime/timers/HookCall.ts"

const basic = (userPass: string): string => `Basic ${Buffer.from(userPass, "utf8").toString("base64")}`

const setup = (hook: AuthenticateFunction, timeoutMs = 1_000) => {
  let now = 0
  const deadlines = new Deadlines({ clock: () => now })
  const lines: Array<string> = []
  const log = new AccessLog({ format: "text", level: "info", write: (chunk) => void lines.push(chunk), batchMs: 0 })
  const counters: AuthCounters = { authOk: 0, authCached: 0, authFailed: 0, authRateLimited: 0, authVerifications: 0 }
  const auth = new HookAuthenticator({
    hook,
    timing: { deadlines, timeoutMs },
    problems: new HookProblems(log, () => now),
    counters,
    now: () => now,
  })
  const verdicts: Array<AuthVerdict> = []
  const waiter: AuthWaiter = { authVerdict: (v) => void verdicts.push(v) }
  return {
    auth,
    counters,
    verdicts,
    waiter,
    deadlines,
    advance: (ms: number) => {
      now += ms
      deadlines.fire(now)
    },
    logged: () => {
      log.flush()
      return lines.join("")
    },
  }
}

/** Promises settle after the current turn: wait for them. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("HookAuthenticator", () => {
  it("answers at once without asking the hook: no credentials (missing), malformed credentials (invalid)", () => {
    let asked = 0
    const s = setup(() => {
      asked++
      return true
    })
    expect(s.auth.authenticate(undefined, "127.0.0.1", s.waiter)).toMatchObject({ reason: "missing" })
    expect(s.auth.authenticate("Bearer x", "127.0.0.1", s.waiter)).toMatchObject({ reason: "invalid" })
    expect(asked).toBe(0)
    expect(s.counters.authFailed).toBe(2)
  })

  it("a synchronous hook answers during the call; an acceptance is cached, a refusal is not", () => {
    const asked: Array<string> = []
    const s = setup(({ user, password, client }) => {
      asked.push(`${user}:${password}@${client}`)
      return user === "alice" && password === "secret"
    })
    expect(s.auth.authenticate(basic("alice:secret"), "10.0.0.1", s.waiter)).toEqual({ _tag: "Authenticated", user: "alice" })
    expect(s.auth.authenticate(basic("alice:secret"), "10.0.0.1", s.waiter)).toEqual({ _tag: "Authenticated", user: "alice" })
    expect(s.auth.authenticate(basic("alice:wrong"), "10.0.0.1", s.waiter)).toEqual({
      _tag: "AuthenticationFailed",
      reason: "invalid",
      message: 'wrong user name or password (user "alice")',
    })
    expect(s.auth.authenticate(basic("alice:wrong"), "10.0.0.1", s.waiter)).toMatchObject({ reason: "invalid" })
    expect(asked).toEqual(["alice:secret@10.0.0.1", "alice:wrong@10.0.0.1", "alice:wrong@10.0.0.1"])
    expect(s.counters).toMatchObject({ authOk: 2, authCached: 1, authFailed: 2, authVerifications: 3 })
    expect(s.verdicts).toEqual([])
  })

  it("{ user } renames the user; the cache forgets an entry after its time", () => {
    let asked = 0
    const s = setup(() => {
      asked++
      return { user: "robert" }
    })
    expect(s.auth.authenticate(basic("bob:pw"), "127.0.0.1", s.waiter)).toEqual({ _tag: "Authenticated", user: "robert" })
    s.advance(5 * 60_000 + 1)
    s.auth.authenticate(basic("bob:pw"), "127.0.0.1", s.waiter)
    expect(asked).toBe(2)
  })

  it("an async hook: connections with the same credentials wait for one call, and all get its verdict", async () => {
    let release: (ok: boolean) => void = () => {}
    let asked = 0
    const s = setup(
      () =>
        new Promise<boolean>((resolve) => {
          asked++
          release = resolve
        }),
    )
    expect(s.auth.authenticate(basic("alice:secret"), "127.0.0.1", s.waiter)).toBeUndefined()
    expect(s.auth.authenticate(basic("alice:secret"), "127.0.0.2", s.waiter)).toBeUndefined()
    expect(asked).toBe(1)
    release(true)
    await turn()
    expect(s.verdicts).toEqual([
      { _tag: "Authenticated", user: "alice" },
      { _tag: "Authenticated", user: "alice" },
    ])
    expect(s.auth.authenticate(basic("alice:secret"), "127.0.0.1", s.waiter)).toEqual({ _tag: "Authenticated", user: "alice" })
    expect(s.counters).toMatchObject({ authOk: 3, authCached: 1 })
  })

  it("a client that used up its attempts is refused without asking the hook", () => {
    let asked = 0
    const s = setup(() => {
      asked++
      return false
    })
    for (let i = 0; i < FAILURE_LIMIT; i++) s.auth.authenticate(basic(`alice:guess${i}`), "192.0.2.7", s.waiter)
    expect(s.auth.authenticate(basic("alice:one-more"), "192.0.2.7", s.waiter)).toMatchObject({ reason: "rate-limited" })
    expect(asked).toBe(FAILURE_LIMIT)
    expect(s.counters.authRateLimited).toBe(1)
  })

  it("a hook that throws, rejects or answers nonsense gives 'unavailable' (503), and the log says why", async () => {
    const s = setup(({ user }) => {
      if (user === "throws") throw new Error("the database is down")
      if (user === "rejects") return Promise.reject(new TypeError("bad"))
      return "yes" as never
    })
    expect(s.auth.authenticate(basic("throws:x"), "127.0.0.1", s.waiter)).toEqual({
      _tag: "AuthenticationFailed",
      reason: "unavailable",
      message: "the proxy's authenticate hook failed",
    })
    expect(s.auth.authenticate(basic("rejects:x"), "127.0.0.1", s.waiter)).toBeUndefined()
    await turn()
    expect(s.verdicts).toEqual([{ _tag: "AuthenticationFailed", reason: "unavailable", message: "the proxy's authenticate hook failed" }])
    expect(s.auth.authenticate(basic("odd:x"), "127.0.0.1", s.waiter)).toMatchObject({
      reason: "unavailable",
      message: "the proxy's authenticate hook gave an answer it does not understand",
    })
    // One line per hook per interval: the first failure, with its error; the others are counted for the next line.
    expect(s.logged()).toBe('ERROR authenticate hook: failed for user "throws": Error: the database is down\n')
    expect(s.counters.authFailed).toBe(0)
  })

  it("a hook that never answers gives 'unavailable' when its deadline passes, and its late answer is dropped", async () => {
    let release: (ok: boolean) => void = () => {}
    const s = setup(
      () =>
        new Promise<boolean>((resolve) => {
          release = resolve
        }),
      250,
    )
    expect(s.auth.authenticate(basic("alice:secret"), "127.0.0.1", s.waiter)).toBeUndefined()
    s.advance(249)
    expect(s.verdicts).toEqual([])
    s.advance(1)
    expect(s.verdicts).toEqual([
      { _tag: "AuthenticationFailed", reason: "unavailable", message: "the proxy's authenticate hook did not answer within 250 ms" },
    ])
    release(true)
    await turn()
    expect(s.verdicts).toHaveLength(1)
    expect(s.auth.cached).toBe(0)
  })
})

describe("callHook", () => {
  const timing = () => ({ deadlines: new Deadlines({ clock: () => 0 }), timeoutMs: 100 })

  it("answers a plain value or a throw during the call, and returns nothing to cancel", () => {
    const outcomes: Array<HookOutcome<number>> = []
    expect(
      callHook(
        () => 7,
        undefined,
        timing(),
        (o) => void outcomes.push(o),
      ),
    ).toBeUndefined()
    expect(
      callHook(
        () => {
          throw new Error("no")
        },
        undefined,
        timing(),
        (o) => void outcomes.push(o),
      ),
    ).toBeUndefined()
    expect(outcomes).toEqual([
      { ok: true, value: 7 },
      { ok: false, timedOut: false, error: new Error("no") },
    ])
  })

  it("a cancelled call is never answered, neither by its promise nor by its deadline", async () => {
    const t = timing()
    const outcomes: Array<HookOutcome<number>> = []
    const pending = callHook(
      () => Promise.resolve(1),
      undefined,
      t,
      (o) => void outcomes.push(o),
    )
    expect(pending).toBeDefined()
    pending?.cancel()
    await turn()
    t.deadlines.fire(1_000)
    expect(outcomes).toEqual([])
    expect(t.deadlines.size).toBe(0)
  })
})
