/**
 * The Authenticator with the real bcrypt verifier thread and hashes made by the real `htpasswd -B`:
 * verdicts, the cache, coalescing, the rate limit, reloads. The clock is a variable (the `now` option).
 */
import { bcryptVerify } from "hash-wasm"
import { execFileSync } from "node:child_process"
import { afterEach, describe, expect, it } from "vitest"
import {
  type AuthCounters,
  type AuthVerdict,
  Authenticator,
  bcryptCost,
  decodeBasic,
  decoyFor,
} from "../../../src/runtime/auth/Authenticator.ts"
import { BcryptVerifier } from "../../../src/runtime/auth/BcryptVerifier.ts"
import { FailureLimit, FAILURE_LIMIT } from "../../../src/runtime/auth/FailureLimit.ts"
import { type Checked, FairVerifier, PENDING_PER_CLIENT, type Verifier } from "../../../src/runtime/auth/FairVerifier.ts"
import { parseHtpasswd, type Users } from "../../../src/runtime/auth/Htpasswd.ts"
import { PortVerifier, VerifierHub } from "../../../src/runtime/auth/VerifierHub.ts"

const usersOf = (pairs: Record<string, string>): Users => {
  const text = Object.entries(pairs)
    .map(([u, p]) => execFileSync("/usr/bin/htpasswd", ["-nbB", "-C", "4", u, p], { encoding: "utf8" }).trim())
    .join("\n")
  const r = parseHtpasswd(text, "test")
  if (!r.ok) throw new Error(r.problems.join("\n"))
  return r.users
}
const basic = (userPass: string): string => `Basic ${Buffer.from(userPass, "utf8").toString("base64")}`

const verifiers: Array<{ close(): void }> = []
afterEach(() => {
  for (const v of verifiers.splice(0)) v.close()
})

const setup = (users = usersOf({ alice: "secret", zoë: "mot de passe" })) => {
  const counters: AuthCounters = { authOk: 0, authCached: 0, authFailed: 0, authRateLimited: 0, authVerifications: 0 }
  const verifier = new FairVerifier()
  verifiers.push(verifier)
  const clock = { now: 0 }
  const auth = new Authenticator({ users, verifier, counters, now: () => clock.now })
  /** The verdict, whether it comes at once or from the verifier thread. */
  const ask = (credentials: string | undefined, address = "10.0.0.1"): Promise<{ verdict: AuthVerdict; atOnce: boolean }> =>
    new Promise((resolve) => {
      const now = auth.authenticate(credentials, address, { authVerdict: (verdict) => resolve({ verdict, atOnce: false }) })
      if (now !== undefined) resolve({ verdict: now, atOnce: true })
    })
  return { auth, counters, clock, ask, verifier }
}

describe("decodeBasic", () => {
  it("decodes Basic credentials (scheme case-insensitive, UTF-8) and refuses anything else", () => {
    expect(decodeBasic(basic("alice:se:cret"))).toEqual({ user: "alice", password: "se:cret" })
    expect(decodeBasic(`bAsIc ${Buffer.from("zoë:x").toString("base64")}`)).toEqual({ user: "zoë", password: "x" })
    expect(decodeBasic("Bearer abc")).toBeUndefined()
    expect(decodeBasic("Basic !!!")).toBeUndefined()
    expect(decodeBasic(basic("no-colon"))).toBeUndefined()
    expect(decodeBasic(basic(":empty-user"))).toBeUndefined()
    expect(decodeBasic(`Basic ${Buffer.from([0x61, 0x3a, 0xff]).toString("base64")}`)).toBeUndefined() // not UTF-8
    expect(decodeBasic(basic(`a:${"x".repeat(5000)}`))).toBeUndefined()
  })
  it("accepts canonical base64 only: no stray bits in the last character, padding where it is due", () => {
    expect(basic("a:bc")).toBe("Basic YTpiYw==")
    expect(decodeBasic("Basic YTpiYw==")).toEqual({ user: "a", password: "bc" })
    expect(Buffer.from("YTpiYx==", "base64").toString()).toBe("a:bc") // what a lenient decoder makes of it
    expect(decodeBasic("Basic YTpiYx==")).toBeUndefined() // stray bits
    expect(decodeBasic("Basic YTpiYw")).toBeUndefined() // padding missing
    expect(decodeBasic("Basic YTpiYw=")).toBeUndefined()
    expect(decodeBasic("Basic YTpi-_==")).toBeUndefined() // the URL-safe alphabet
  })
})

describe("Authenticator", () => {
  it("no credentials: 'missing' at once, nothing verified", async () => {
    const { ask, counters } = setup()
    expect(await ask(undefined)).toEqual({
      verdict: { _tag: "AuthenticationFailed", reason: "missing", message: "proxy authentication required" },
      atOnce: true,
    })
    expect(counters).toMatchObject({ authFailed: 1, authVerifications: 0 })
  })

  it("the right password: Authenticated after bcrypt, then at once from the cache", async () => {
    const { ask, counters, auth } = setup()
    expect(await ask(basic("alice:secret"))).toEqual({ verdict: { _tag: "Authenticated", user: "alice" }, atOnce: false })
    expect(await ask(basic("alice:secret"))).toEqual({ verdict: { _tag: "Authenticated", user: "alice" }, atOnce: true })
    expect(await ask(basic("zoë:mot de passe"))).toMatchObject({ verdict: { _tag: "Authenticated", user: "zoë" } })
    expect(counters).toEqual({ authOk: 3, authCached: 1, authFailed: 0, authRateLimited: 0, authVerifications: 2 })
    expect(auth.cached).toBe(2)
  })

  it("a wrong password and an unknown user are both verified (same cost) and refused; neither is cached", async () => {
    const { ask, counters, auth } = setup()
    expect((await ask(basic("alice:nope"))).verdict).toMatchObject({
      reason: "invalid",
      message: 'wrong user name or password (user "alice")',
    })
    expect((await ask(basic("mallory:secret"))).verdict).toMatchObject({ reason: "invalid" })
    expect(counters).toMatchObject({ authFailed: 2, authVerifications: 2, authOk: 0 })
    expect(auth.cached).toBe(0)
  })

  it("the same credentials asked for by several connections at once are verified once", async () => {
    const { ask, counters } = setup()
    const answers = await Promise.all([ask(basic("alice:secret")), ask(basic("alice:secret")), ask(basic("alice:secret"))])
    expect(answers.map((a) => a.verdict)).toEqual(Array(3).fill({ _tag: "Authenticated", user: "alice" }))
    expect(counters).toMatchObject({ authOk: 3, authVerifications: 1 })
  })

  it(`after ${FAILURE_LIMIT} failures from one address it refuses without verifying until the window ends; other addresses and cached values pass`, async () => {
    const { ask, counters, clock } = setup()
    await ask(basic("alice:secret"), "10.0.0.9") // cached before the attack
    for (let i = 0; i < FAILURE_LIMIT - 1; i++) await ask(basic(`alice:wrong${i}`), "10.0.0.1")
    await ask("Basic !!", "10.0.0.1") // malformed counts too
    const verifications = counters.authVerifications
    const limited = await ask(basic("alice:another"), "10.0.0.1")
    expect(limited).toMatchObject({ atOnce: true, verdict: { reason: "rate-limited" } })
    expect(counters.authVerifications).toBe(verifications)
    expect(counters.authRateLimited).toBe(1)
    expect((await ask(basic("alice:secret"), "10.0.0.1")).verdict).toEqual({ _tag: "Authenticated", user: "alice" }) // cached
    expect((await ask(basic("zoë:mot de passe"), "10.0.0.2")).verdict._tag).toBe("Authenticated")
    clock.now += 60_000 // the window is over
    expect((await ask(basic("zoë:mot de passe"), "10.0.0.1")).verdict._tag).toBe("Authenticated")
  })

  it("cached verdicts expire, and are dropped when the users change", async () => {
    const { ask, auth, clock, counters } = setup()
    await ask(basic("alice:secret"))
    clock.now += 5 * 60_000
    expect(await ask(basic("alice:secret"))).toMatchObject({ atOnce: false }) // expired: verified again
    expect(counters.authVerifications).toBe(2)
    auth.replaceUsers(usersOf({ alice: "changed" }))
    expect(auth.cached).toBe(0)
    expect((await ask(basic("alice:secret"))).verdict).toMatchObject({ reason: "invalid" })
    expect((await ask(basic("alice:changed"))).verdict).toEqual({ _tag: "Authenticated", user: "alice" })
  })

  it("a verifier that cannot check answers 'unavailable' (503), not 'invalid'", async () => {
    const { ask, verifier } = setup()
    verifier.close()
    expect((await ask(basic("alice:secret"))).verdict).toMatchObject({ reason: "unavailable" })
  })
})

describe("Authenticator: attempts are counted when they start (issue 17)", () => {
  it(`a burst of guesses from one address: at most ${PENDING_PER_CLIENT} verified at once, the rest 407 at once; never more than ${FAILURE_LIMIT} per window`, async () => {
    const { ask, counters } = setup()
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(basic(`alice:guess${i}`), "10.0.0.1")))
    expect(burst.every((a) => a.verdict._tag === "AuthenticationFailed" && a.verdict.reason !== "unavailable")).toBe(true)
    expect(burst.filter((a) => !a.atOnce)).toHaveLength(PENDING_PER_CLIENT)
    expect(burst.filter((a) => a.atOnce).map((a) => a.verdict)).toEqual(
      Array(40 - PENDING_PER_CLIENT).fill(expect.objectContaining({ reason: "rate-limited", message: expect.stringMatching(/pending/) })),
    )
    expect(counters.authVerifications).toBe(PENDING_PER_CLIENT)
    // One guess at a time from now on: the window allows FAILURE_LIMIT in all, counting the burst's.
    const answers = []
    for (let i = 0; i < 2 * FAILURE_LIMIT; i++) answers.push(await ask(basic(`alice:again${i}`), "10.0.0.1"))
    expect(counters.authVerifications).toBe(FAILURE_LIMIT)
    expect(answers.at(-1)).toMatchObject({
      atOnce: true,
      verdict: { reason: "rate-limited", message: expect.stringMatching(/too many failed/) },
    })
  })

  it("a right password gives its attempt back: a user who logs in again and again is never limited", async () => {
    const { ask, auth, counters } = setup()
    const users = usersOf({ alice: "secret" })
    for (let i = 0; i < 2 * FAILURE_LIMIT; i++) {
      auth.replaceUsers(users) // the cache is dropped: every login is verified
      expect((await ask(basic("alice:secret"))).verdict).toEqual({ _tag: "Authenticated", user: "alice" })
    }
    expect(counters.authVerifications).toBe(2 * FAILURE_LIMIT)
  })

  it("an IPv6 client is counted by its /64: new addresses in it get no new attempts", async () => {
    const { ask } = setup()
    for (let i = 1; i <= FAILURE_LIMIT; i++) await ask(basic(`alice:wrong${i}`), `2001:db8:1:2::${i.toString(16)}`)
    expect(await ask(basic("alice:secret"), "2001:db8:1:2:ffff::1")).toMatchObject({ atOnce: true, verdict: { reason: "rate-limited" } })
    expect((await ask(basic("alice:secret"), "2001:db8:1:3::1")).verdict._tag).toBe("Authenticated") // the next /64
  })
})

describe("Authenticator: passwords bcrypt cannot check (issue 17)", () => {
  it("an empty password or one over 72 bytes: 407 'invalid' at once, saying why, nothing verified; 72 bytes are verified", async () => {
    const long = "é".repeat(40) // 80 bytes in UTF-8
    const first72 = Buffer.from(long).subarray(0, 72).toString()
    const { ask, counters } = setup(usersOf({ alice: "secret", max: first72, long }))
    expect(await ask(basic(`alice:${"x".repeat(73)}`))).toMatchObject({
      atOnce: true,
      verdict: { reason: "invalid", message: expect.stringMatching(/^password longer than 72 bytes: bcrypt cannot check it/) },
    })
    expect(await ask(basic(`long:${long}`))).toMatchObject({ atOnce: true, verdict: { reason: "invalid" } })
    expect(await ask(basic("alice:"))).toMatchObject({ atOnce: true, verdict: { reason: "invalid", message: "empty password" } })
    expect(counters.authVerifications).toBe(0)
    expect((await ask(basic(`max:${first72}`))).verdict).toEqual({ _tag: "Authenticated", user: "max" })
    // htpasswd -B hashed only the first 72 bytes of the long one: those log in.
    expect((await ask(basic(`long:${first72}`))).verdict).toEqual({ _tag: "Authenticated", user: "long" })
  })
})

describe("Authenticator: an unknown user costs what the costliest user costs (issue 17)", () => {
  const withCost = (user: string, password: string, cost: number): string =>
    execFileSync("/usr/bin/htpasswd", ["-nbB", "-C", String(cost), user, password], { encoding: "utf8" }).trim()
  const parse = (lines: string[]): Users => {
    const r = parseHtpasswd(lines.join("\n"), "test")
    if (!r.ok) throw new Error(r.problems.join("\n"))
    return r.users
  }

  it("decoyFor: a well-formed bcrypt hash with the highest cost of the file, matching no user's hash", async () => {
    const users = parse([withCost("cheap", "a", 4), withCost("dear", "b", 7), withCost("middle", "c", 5)])
    const decoy = decoyFor(users)
    expect(decoy).toMatch(/^\$2b\$07\$[./A-Za-z0-9]{53}$/)
    expect(bcryptCost(decoy)).toBe(7)
    expect([...users.values()]).not.toContain(decoy)
    expect(decoyFor(users)).not.toBe(decoy) // a random salt and digest each time
    expect(decoyFor(new Map())).toBe("")
    // bcrypt takes it as a hash to compute (a malformed one would be refused at once, which is fast).
    expect(await bcryptVerify({ password: "b", hash: decoy })).toBe(false)
  })

  it("an unknown user's password is checked against that decoy, not the first entry's hash; a new file makes a new one", async () => {
    const users = parse([withCost("cheap", "a", 4), withCost("dear", "b", 6)])
    const seen: string[] = []
    const real = new FairVerifier()
    verifiers.push(real)
    const recording: Verifier = {
      verify: (client, password, hash, done: (answer: Checked) => void) => {
        seen.push(hash)
        real.verify(client, password, hash, done)
      },
      get pending() {
        return real.pending
      },
      close: () => real.close(),
    }
    const counters: AuthCounters = { authOk: 0, authCached: 0, authFailed: 0, authRateLimited: 0, authVerifications: 0 }
    const auth = new Authenticator({ users, verifier: recording, counters, now: () => 0 })
    const verdict = await new Promise<AuthVerdict>((resolve) => {
      const now = auth.authenticate(basic("nobody:a"), "10.0.0.1", { authVerdict: resolve })
      if (now !== undefined) resolve(now)
    })
    expect(verdict).toMatchObject({ reason: "invalid" })
    expect(seen).toEqual([auth.decoyHash])
    expect(bcryptCost(seen[0]!)).toBe(6)
    expect(seen[0]).not.toBe(users.get("cheap"))
    auth.replaceUsers(parse([withCost("cheap", "a", 4), withCost("dearer", "b", 8)]))
    expect(bcryptCost(auth.decoyHash)).toBe(8)
  })
})

describe("FairVerifier: the verifier thread shared between clients (issue 17)", () => {
  const hash = () => usersOf({ a: "pw" }).get("a")!

  it(`a client gets ${PENDING_PER_CLIENT} pending at most; another client's verification runs next, not after the flood`, async () => {
    const fair = new FairVerifier()
    verifiers.push(fair)
    const h = hash()
    const order: string[] = []
    const asked = (client: string, name: string, password: string): Promise<Checked> =>
      new Promise((resolve) =>
        fair.verify(client, password, h, (answer) => {
          order.push(name)
          resolve(answer)
        }),
      )
    const flood = Array.from({ length: PENDING_PER_CLIENT + 2 }, (_, i) => asked("10.0.0.1", `A${i}`, `guess${i}`))
    const honest = asked("10.0.0.2", "B", "pw")
    const answers = await Promise.all([...flood, honest])
    expect(answers).toEqual([...Array(PENDING_PER_CLIENT).fill("mismatch"), "busy", "busy", "match"])
    // The refused ones first (at once), then A0 (running when B arrived), then B, then the rest of A's.
    expect(order).toEqual(["A4", "A5", "A0", "B", "A1", "A2", "A3"])
  })

  it(`the failure limit holds for the whole process: ${FAILURE_LIMIT} attempts through two workers' ports, then 'limited' on either`, async () => {
    const hub = new VerifierHub({ idleMs: 50 })
    verifiers.push(hub)
    const h = hash()
    const ports = [new PortVerifier(hub.connect()), new PortVerifier(hub.connect())]
    const via = (i: number, client: string, password: string): Promise<Checked> =>
      new Promise((resolve) => ports[i % 2]!.verify(client, password, h, resolve))
    for (let i = 0; i < FAILURE_LIMIT; i++) expect(await via(i, "10.0.0.1", `wrong${i}`)).toBe("mismatch")
    expect(await via(0, "10.0.0.1", "pw")).toBe("limited")
    expect(await via(1, "10.0.0.1", "pw")).toBe("limited")
    expect(await via(0, "10.0.0.2", "pw")).toBe("match")
    // A right password does not count: that client can go on.
    for (let i = 0; i < 2 * FAILURE_LIMIT; i++) expect(await via(i, "10.0.0.2", "pw")).toBe("match")
  })
})

describe("FailureLimit", () => {
  it("counts attempts when they start, gives back the ones that proved right, forgets a window when it ends", () => {
    const clock = { now: 0 }
    const limit = new FailureLimit(() => clock.now, 3, 1000)
    expect([limit.take("a"), limit.take("a"), limit.take("a"), limit.take("a")]).toEqual([true, true, true, false])
    expect(limit.reached("a")).toBe(true)
    expect(limit.reached("b")).toBe(false)
    limit.giveBack("a")
    expect(limit.take("a")).toBe(true)
    expect(limit.reached("a")).toBe(true)
    clock.now = 1000
    expect(limit.reached("a")).toBe(false)
    expect(limit.take("a")).toBe(true)
  })
})

describe("BcryptVerifier", () => {
  it("runs on a thread started on demand and stopped when idle", async () => {
    const verifier = new BcryptVerifier({ idleMs: 10 })
    verifiers.push(verifier)
    const hash = usersOf({ a: "pw" }).get("a")!
    expect(verifier.running).toBe(false)
    const ok = await new Promise((r) => verifier.verify("pw", hash, r))
    const bad = await new Promise((r) => verifier.verify("nope", hash, r))
    expect([ok, bad]).toEqual([true, false])
    for (let i = 0; i < 200 && verifier.running; i++) await new Promise((r) => setTimeout(r, 10))
    expect(verifier.running).toBe(false)
    expect(await new Promise((r) => verifier.verify("pw", hash, r))).toBe(true) // a new thread
  })
})

describe("VerifierHub and PortVerifier: one verifier thread for every worker", () => {
  it("answers each port's requests, and 'could not check' once the hub is closed", async () => {
    const hub = new VerifierHub({ idleMs: 50 })
    const hash = usersOf({ a: "pw" }).get("a")!
    const workers = [new PortVerifier(hub.connect()), new PortVerifier(hub.connect())]
    expect(hub.connected).toBe(2)
    const answers = await Promise.all([
      new Promise((r) => workers[0]!.verify("10.0.0.1", "pw", hash, r)),
      new Promise((r) => workers[1]!.verify("10.0.0.2", "nope", hash, r)),
      new Promise((r) => workers[1]!.verify("10.0.0.2", "pw", hash, r)),
    ])
    expect(answers).toEqual(["match", "mismatch", "match"])
    workers[0]!.close()
    for (let i = 0; i < 100 && hub.connected > 1; i++) await new Promise((r) => setTimeout(r, 10))
    expect(hub.connected).toBe(1) // a worker's port closes with it
    hub.close()
    const after = await new Promise((r) => workers[1]!.verify("10.0.0.2", "pw", hash, r))
    expect(after).toBe("failed")
  })
})
