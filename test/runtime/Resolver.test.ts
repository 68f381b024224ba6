import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { makeResolve, type ResolveError, type Resolved, Resolver } from "../../src/runtime/Resolver.ts"

/** A resolver whose system lookup records calls and never touches the network. */
const recording = (hosts: Record<string, string> = {}) => {
  const queries: Array<string> = []
  const resolve = makeResolve({
    hosts,
    lookup: (host, cb) => {
      queries.push(host)
      queueMicrotask(() => cb(Object.assign(new Error("nope"), { code: "ENOTFOUND" }), "", 0))
    },
  })
  const run = (host: string) =>
    new Promise<{ error: ResolveError | undefined; result: Resolved | undefined }>((done) =>
      resolve(host, (error, result) => done({ error, result })))
  return { queries, run }
}

describe("makeResolve", () => {
  it("passes IP literals through, IPv6 with or without brackets", async () => {
    const r = recording()
    assert.deepStrictEqual((await r.run("192.0.2.7")).result, { address: "192.0.2.7", family: 4 })
    assert.deepStrictEqual((await r.run("2001:db8::1")).result, { address: "2001:db8::1", family: 6 })
    assert.deepStrictEqual((await r.run("[::1]")).result, { address: "::1", family: 6 })
    assert.deepStrictEqual(r.queries, [])
  })

  it("fails .invalid names at once without a query (RFC 6761)", async () => {
    const r = recording()
    for (const name of ["invalid", "foo.invalid", "A.B.INVALID", "x.invalid."]) {
      const { error } = await r.run(name)
      assert.strictEqual(error?._tag, "ResolveError")
      assert.strictEqual(error?.reason, "invalid")
    }
    assert.deepStrictEqual(r.queries, [])
  })

  it("resolves localhost and *.localhost to loopback without a query", async () => {
    const r = recording()
    for (const name of ["localhost", "LocalHost", "app.localhost", "localhost."]) {
      assert.deepStrictEqual((await r.run(name)).result, { address: "127.0.0.1", family: 4 })
    }
    assert.deepStrictEqual(r.queries, [])
  })

  it("uses the static hosts map case-insensitively, before the reserved names", async () => {
    const r = recording({ "origin.test": "127.0.0.1", "V6.Test": "::1", "special.localhost": "127.0.0.2" })
    assert.deepStrictEqual((await r.run("ORIGIN.test")).result, { address: "127.0.0.1", family: 4 })
    assert.deepStrictEqual((await r.run("v6.test")).result, { address: "::1", family: 6 })
    assert.deepStrictEqual((await r.run("special.localhost")).result, { address: "127.0.0.2", family: 4 })
    assert.deepStrictEqual(r.queries, [])
  })

  it("rejects a hosts map entry that is not an IP", () => {
    assert.throws(() => makeResolve({ hosts: { a: "b.example" } }))
  })

  it("asks the system lookup for other names and maps its failure", async () => {
    const r = recording()
    const { error } = await r.run("other.test")
    assert.deepStrictEqual(r.queries, ["other.test"])
    assert.strictEqual(error?.reason, "notfound")
    assert.strictEqual(error?.code, "ENOTFOUND")
  })
})

describe("Resolver service", () => {
  it.effect("resolves through the layer", () =>
    Effect.gen(function*() {
      const resolver = yield* Resolver
      assert.deepStrictEqual(yield* resolver.resolve("origin.test"), { address: "10.9.8.7", family: 4 })
      const failed = yield* Effect.exit(resolver.resolve("nothing.invalid"))
      assert.isTrue(Exit.isFailure(failed))
    }).pipe(Effect.provide(Resolver.layer({
      hosts: { "origin.test": "10.9.8.7" },
      lookup: (_h, cb) => cb(Object.assign(new Error("no"), { code: "ENOTFOUND" }), "", 0),
    }))))
})
