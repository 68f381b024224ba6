/**
 * Cidr.ts: the one CIDR parser. The configuration check and the worker agree on every input (they call
 * the same code), and an address with host bits set is answered with the network that was meant.
 */
import { describe, expect, it } from "vitest"
import { parseCidr as configParseCidr } from "../../../src/cli/parsers.ts"
import { AllowList } from "../../../src/runtime/access/Allow.ts"
import { CidrError, normalizeCidr, parseCidr } from "../../../src/runtime/access/Cidr.ts"

const suggestion = (input: string): string | undefined => {
  try {
    parseCidr(input)
    return undefined
  } catch (e) {
    expect(e).toBeInstanceOf(CidrError)
    return (e as CidrError).suggestion
  }
}

describe("host bits set: the suggested network", () => {
  it.each([
    ["10.0.0.1/8", "10.0.0.0/8"],
    ["192.168.1.1/16", "192.168.0.0/16"],
    ["172.31.255.255/12", "172.16.0.0/12"],
    ["1.2.3.4/0", "0.0.0.0/0"],
    ["fd00::1/8", "fd00::/8"],
    ["2001:db8:1:2::5/32", "2001:db8::/32"],
    ["fe80::1:0:0:1/64", "fe80::/64"],
    ["::1/0", "::/0"],
    ["2001:db8:0:1:0:0:0:1/64", "2001:db8:0:1::/64"],
  ])("%s -> %s", (input, meant) => {
    expect(suggestion(input)).toBe(meant)
    // The suggestion is itself valid.
    expect(() => parseCidr(meant)).not.toThrow()
  })

  it("other mistakes have no suggestion", () => {
    expect(suggestion("10.0.0.0/33")).toBeUndefined()
    expect(suggestion("everyone")).toBeUndefined()
  })
})

describe("the configuration check and the worker agree", () => {
  it.each([
    "10.0.0.0/8",
    "10.0.0.1/8",
    "10.0.0.1",
    "::1",
    "::1/128",
    "fd00::/8",
    "fd00::1/8",
    "1.2.3.4/33",
    "1.2.3.4/",
    "x",
    "",
    " 10.0.0.0/8 ",
    "::ffff:10.0.0.0/104",
    "::ffff:10.0.0.1/104",
    "10.0.0.0/08",
  ])("%j", (input) => {
    const config = configParseCidr(input)
    let worker = true
    try {
      AllowList.parse(config.ok ? [config.value] : [input])
    } catch {
      worker = false
    }
    expect(config.ok).toBe(worker)
  })

  it("normalizes a bare address to one host", () => {
    expect(normalizeCidr("192.168.1.5")).toBe("192.168.1.5/32")
    expect(normalizeCidr("::1")).toBe("::1/128")
    expect(normalizeCidr(" 10.0.0.0/08 ")).toBe("10.0.0.0/8")
  })
})
