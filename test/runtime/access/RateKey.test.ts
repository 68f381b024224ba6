/** rateKeyOf: an IPv4 client by its address, an IPv6 client by its /64. */
import { describe, expect, it } from "vitest"
import { rateKeyOf } from "../../../src/runtime/access/RateKey.ts"

describe("rateKeyOf", () => {
  it("an IPv4 client is its address, also when it arrives IPv4-mapped on a dual-stack socket", () => {
    expect(rateKeyOf("127.0.0.2")).toBe("127.0.0.2")
    expect(rateKeyOf("::ffff:127.0.0.2")).toBe("127.0.0.2")
    expect(rateKeyOf("127.0.0.3")).not.toBe(rateKeyOf("127.0.0.2"))
  })

  it("every address of one IPv6 /64 is one client; the next /64 is another", () => {
    const key = rateKeyOf("2001:db8:1:2::1")
    expect(key).toBe("2001:db8:1:2::/64")
    expect(rateKeyOf("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe(key)
    expect(rateKeyOf("2001:DB8:1:2:a:b:c:d")).toBe(key)
    expect(rateKeyOf("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64")
    expect(rateKeyOf("::1")).toBe("::/64")
  })

  it("what is not an address is its own key", () => {
    expect(rateKeyOf("?")).toBe("?")
    expect(rateKeyOf("")).toBe("")
  })
})
