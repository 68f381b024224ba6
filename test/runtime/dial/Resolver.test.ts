/**
 * The Resolver's rules, with the real c-ares resolver asking a DNS server this test starts on
 * 127.0.0.1 (test/e2e/support/dns.ts). No query ever goes to the system's servers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach } from "vitest"
import { type DnsAnswer, startDnsServer, type TestDnsServer } from "../../e2e/support/dns.ts"
import { until } from "../../e2e/support/wire.ts"
import {
  type DnsCounters,
  makeResolve,
  parseHostsFile,
  type ResolveError,
  type Resolved,
  Resolver,
  type ResolverOptions,
} from "../../../src/runtime/dial/Resolver.ts"

const servers: Array<TestDnsServer> = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

interface Outcome {
  readonly error: ResolveError | undefined
  readonly addresses: ReadonlyArray<Resolved>
}

/** A resolver asking a fresh loopback DNS server that knows `table`; a fake clock for the cache. */
const setup = async (table: Record<string, DnsAnswer>, options: Partial<ResolverOptions> = {}) => {
  const dns = await startDnsServer(table)
  servers.push(dns)
  const stats: DnsCounters = { dnsQueries: 0, dnsCacheHits: 0, dnsFailures: 0 }
  const clock = { ms: 1_000 }
  const resolve = makeResolve({ hostsFile: false, servers: [dns.address], stats, now: () => clock.ms, ...options })
  const run = (host: string) => new Promise<Outcome>((done) => resolve(host, (error, addresses) => done({ error, addresses })))
  return { dns, stats, clock, resolve, run }
}

const v4 = (address: string): Resolved => ({ address, family: 4 })
const v6 = (address: string): Resolved => ({ address, family: 6 })

describe("makeResolve: names answered without DNS", () => {
  it("passes IP literals through, IPv6 with or without brackets", async () => {
    const r = await setup({})
    assert.deepStrictEqual((await r.run("192.0.2.7")).addresses, [v4("192.0.2.7")])
    assert.deepStrictEqual((await r.run("2001:db8::1")).addresses, [v6("2001:db8::1")])
    assert.deepStrictEqual((await r.run("[::1]")).addresses, [v6("::1")])
    assert.deepStrictEqual(r.dns.questions, [])
  })

  it("fails .invalid names at once without a query (RFC 6761)", async () => {
    const r = await setup({ "foo.invalid": { addresses: ["127.0.0.1"] } })
    for (const name of ["invalid", "foo.invalid", "A.B.INVALID", "x.invalid."]) {
      const { error } = await r.run(name)
      assert.strictEqual(error?._tag, "ResolveError")
      assert.strictEqual(error?.reason, "invalid")
    }
    assert.deepStrictEqual(r.dns.questions, [])
  })

  it("looks names up in the core's spelling; a name with an empty label fails at once, no query", async () => {
    const r = await setup({ "internal.test": { addresses: ["127.0.0.3"] } }, { hosts: { "Origin.Test.": "127.0.0.1" } })
    assert.deepStrictEqual((await r.run("origin.test")).addresses, [v4("127.0.0.1")])
    assert.deepStrictEqual((await r.run("ORIGIN.test.")).addresses, [v4("127.0.0.1")])
    for (const name of ["origin.test..", "internal.test..", "internal..test", ".internal.test", "."]) {
      const { error } = await r.run(name)
      assert.strictEqual(error?.reason, "invalid", name)
    }
    assert.deepStrictEqual(r.dns.questions, [])
    assert.throws(() => makeResolve({ hosts: { "a..b": "127.0.0.1" }, hostsFile: false }))
  })

  it("resolves localhost and *.localhost to loopback without a query", async () => {
    const r = await setup({})
    for (const name of ["localhost", "LocalHost", "app.localhost", "localhost."]) {
      assert.deepStrictEqual((await r.run(name)).addresses, [v4("127.0.0.1")])
    }
    assert.deepStrictEqual(r.dns.questions, [])
  })

  it("uses the static hosts map case-insensitively, before the reserved names", async () => {
    const r = await setup({}, { hosts: { "origin.test": "127.0.0.1", "V6.Test": "::1", "special.localhost": "127.0.0.2" } })
    assert.deepStrictEqual((await r.run("ORIGIN.test")).addresses, [v4("127.0.0.1")])
    assert.deepStrictEqual((await r.run("v6.test")).addresses, [v6("::1")])
    assert.deepStrictEqual((await r.run("special.localhost")).addresses, [v4("127.0.0.2")])
    assert.deepStrictEqual(r.dns.questions, [])
  })

  it("rejects a hosts map entry that is not an IP", () => {
    assert.throws(() => makeResolve({ hosts: { a: "b.example" }, hostsFile: false }))
  })

  it("reads the hosts file once; the hosts map wins over it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hctunnel-hosts-"))
    const file = join(dir, "hosts")
    writeFileSync(file, "# comment\n127.0.0.5 filed.test alias.test # trailing\n::1 filed.test\n127.0.0.6 both.test\nnot-an-ip bad.test\n")
    const r = await setup({}, { hostsFile: file, hosts: { "both.test": "127.0.0.7" } })
    writeFileSync(file, "127.0.0.9 filed.test\n") // read once: a later change is not seen
    assert.deepStrictEqual((await r.run("Filed.Test")).addresses, [v4("127.0.0.5"), v6("::1")])
    assert.deepStrictEqual((await r.run("alias.test")).addresses, [v4("127.0.0.5")])
    assert.deepStrictEqual((await r.run("both.test")).addresses, [v4("127.0.0.7")])
    assert.deepStrictEqual(r.dns.questions, [])
    assert.strictEqual((await r.run("bad.test")).error?.reason, "notfound") // asked DNS, which says NXDOMAIN
  })

  it("parses hosts-file text", () => {
    const parsed = parseHostsFile("127.0.0.1 localhost\n\n  ::1\tlocalhost ip6-localhost  \n#10.0.0.1 gone\n")
    assert.deepStrictEqual(parsed.get("localhost"), [v4("127.0.0.1"), v6("::1")])
    assert.deepStrictEqual(parsed.get("ip6-localhost"), [v6("::1")])
    assert.isFalse(parsed.has("gone"))
  })
})

describe("makeResolve: DNS with c-ares", () => {
  it("asks A and AAAA and answers every address, IPv6 first", async () => {
    const r = await setup({ "both.test": { addresses: ["127.0.0.1", "::1", "127.0.0.2"] } })
    const { error, addresses } = await r.run("both.test")
    assert.isUndefined(error)
    assert.deepStrictEqual(addresses, [v6("::1"), v4("127.0.0.1"), v4("127.0.0.2")])
    assert.deepStrictEqual(r.dns.questions.map((q) => q.type).sort(), ["A", "AAAA"])
    assert.strictEqual(r.stats.dnsQueries, 2)
  })

  it("caches an answer for its TTL, within the min/max clamp", async () => {
    const r = await setup(
      {
        "ttl.test": { addresses: ["127.0.0.1"], ttl: 30 },
        "zero.test": { addresses: ["127.0.0.1"], ttl: 0 },
        "long.test": { addresses: ["127.0.0.1"], ttl: 86_400 },
      },
      { minTtlMs: 1_000, maxTtlMs: 60_000 },
    )
    for (const name of ["ttl.test", "zero.test", "long.test"]) await r.run(name)
    assert.strictEqual(r.stats.dnsQueries, 6)
    r.clock.ms += 999 // every entry still fresh (zero.test is kept the minimum, 1 s)
    for (const name of ["ttl.test", "zero.test", "long.test"]) assert.deepStrictEqual((await r.run(name)).addresses, [v4("127.0.0.1")])
    assert.strictEqual(r.stats.dnsQueries, 6)
    assert.strictEqual(r.stats.dnsCacheHits, 3)
    r.clock.ms += 29_001 // 30 s after the answers: ttl.test and zero.test expired, long.test (clamped to 60 s) not
    for (const name of ["ttl.test", "zero.test", "long.test"]) await r.run(name)
    assert.strictEqual(r.stats.dnsQueries, 10)
    r.clock.ms += 31_000 // long.test is past the 60 s maximum
    await r.run("long.test")
    assert.strictEqual(r.stats.dnsQueries, 12)
  })

  it("remembers a failure for the negative TTL only", async () => {
    const r = await setup({}, { negativeTtlMs: 2_000 })
    const first = await r.run("missing.test")
    assert.strictEqual(first.error?.reason, "notfound")
    assert.strictEqual(first.error?.code, "ENOTFOUND")
    assert.deepStrictEqual(first.addresses, [])
    assert.strictEqual((await r.run("missing.test")).error?.reason, "notfound")
    assert.strictEqual(r.stats.dnsQueries, 2)
    assert.strictEqual(r.stats.dnsCacheHits, 1)
    assert.strictEqual(r.stats.dnsFailures, 1)
    r.clock.ms += 2_000
    await r.run("missing.test")
    assert.strictEqual(r.stats.dnsQueries, 4)
  })

  it("keeps a bounded number of names, dropping the oldest", async () => {
    const r = await setup(
      { "a.test": { addresses: ["127.0.0.1"] }, "b.test": { addresses: ["127.0.0.1"] }, "c.test": { addresses: ["127.0.0.1"] } },
      { cacheEntries: 2 },
    )
    for (const name of ["a.test", "b.test", "c.test"]) await r.run(name)
    await r.run("c.test")
    await r.run("b.test")
    assert.strictEqual(r.stats.dnsCacheHits, 2)
    await r.run("a.test") // dropped when c.test came in: asked again
    assert.strictEqual(r.stats.dnsQueries, 8)
  })

  it("coalesces concurrent lookups of one name into one query", async () => {
    const r = await setup({ "shared.test": { addresses: ["127.0.0.1"], delayMs: 20 } })
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => r.run("SHARED.test")))
    for (const o of outcomes) assert.deepStrictEqual(o.addresses, [v4("127.0.0.1")])
    assert.strictEqual(r.dns.questions.length, 2)
    assert.strictEqual(r.stats.dnsQueries, 2)
  })

  it("fails a name whose server never answers after its tries, as a failure (not 'no such name')", async () => {
    const r = await setup({ "hang.test": "never" }, { queryTimeoutMs: 100, tries: 2 })
    const { error } = await r.run("hang.test")
    assert.strictEqual(error?.reason, "failed")
    assert.strictEqual(error?.code, "ETIMEOUT")
    assert.strictEqual(r.stats.dnsFailures, 1)
    assert.strictEqual(r.dns.questions.filter((q) => q.type === "A").length, 2) // two tries
  })

  it("caps the names asked at once: the rest wait their turn, and a full queue fails at once", async () => {
    const r = await setup(
      { "hang1.test": "never", "hang2.test": "never", "fast.test": { addresses: ["127.0.0.1"] } },
      { maxQueries: 2, maxQueued: 1, queryTimeoutMs: 300, tries: 1 },
    )
    const order: Array<string> = []
    const track = (name: string) =>
      r.run(name).then((o) => {
        order.push(name)
        return o
      })
    const hanging = [track("hang1.test"), track("hang2.test")]
    const fast = track("fast.test") // queued behind the two hanging names
    const overflow = await r.run("overflow.test") // the queue (1) is full
    assert.strictEqual(overflow.error?.code, "EBUSY")
    assert.deepStrictEqual(order, [])
    assert.deepStrictEqual((await fast).addresses, [v4("127.0.0.1")])
    // fast.test was asked only once a slot was free: after a hanging name gave up.
    assert.notStrictEqual(order[0], "fast.test")
    for (const h of await Promise.all(hanging)) assert.strictEqual(h.error?.code, "ETIMEOUT")
    assert.isFalse(r.dns.questions.some((q) => q.name === "overflow.test"))
  })

  it("answers with the family that came when the other never does (RFC 8305 resolution delay)", async () => {
    // The AAAA question would time out only after 60 s (longer than this test may run): the answer
    // goes out with the A records a moment after they came.
    const r = await setup({ "no6.test": { addresses: ["127.0.0.1", "::1"], never: ["AAAA"] } }, { queryTimeoutMs: 60_000, tries: 1 })
    const { error, addresses } = await r.run("no6.test")
    assert.isUndefined(error)
    assert.deepStrictEqual(addresses, [v4("127.0.0.1")])
    assert.strictEqual(r.stats.dnsFailures, 0)
  })
})

describe("makeResolve: a late family", () => {
  it("goes out with the first family, and the cache gets both once the late one is in, without asking again", async () => {
    const r = await setup({ "late6.test": { addresses: ["127.0.0.1", "::1"], delayMs: { AAAA: 200 } } })
    assert.deepStrictEqual((await r.run("late6.test")).addresses, [v4("127.0.0.1")])
    await until("the late AAAA answer to reach the cache", async () => (await r.run("late6.test")).addresses.length === 2)
    assert.deepStrictEqual((await r.run("late6.test")).addresses, [v6("::1"), v4("127.0.0.1")])
    assert.strictEqual(r.stats.dnsQueries, 2)
    assert.strictEqual(r.dns.questions.length, 2)
  })
})

describe("Resolver service", () => {
  it.effect("resolves through the layer", () =>
    Effect.gen(function* () {
      const resolver = yield* Resolver
      assert.deepStrictEqual(yield* resolver.resolve("origin.test"), [v4("10.9.8.7")])
      const failed = yield* Effect.exit(resolver.resolve("nothing.invalid"))
      assert.isTrue(Exit.isFailure(failed))
    }).pipe(Effect.provide(Resolver.layer({ hosts: { "origin.test": "10.9.8.7" }, hostsFile: false, servers: ["127.0.0.1:1"] }))),
  )
})
