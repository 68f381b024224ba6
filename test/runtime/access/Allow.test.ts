import { describe, expect, it } from "vitest"
import { AllowList, CidrError, forbiddenResponse, parseAddress, parseCidr } from "../../../src/runtime/access/Allow.ts"

describe("parseAddress", () => {
  it("maps IPv4 into ::ffff:0:0/96 and expands IPv6", () => {
    expect(parseAddress("127.0.0.1")).toEqual(parseAddress("::ffff:127.0.0.1"))
    expect(parseAddress("::ffff:7f00:1")).toEqual(parseAddress("::ffff:127.0.0.1"))
    expect(Array.from(parseAddress("::1")!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    expect(Array.from(parseAddress("2001:db8::8:800:200c:417a")!)).toEqual([
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0x08, 0x08, 0, 0x20, 0x0c, 0x41, 0x7a,
    ])
    expect(Array.from(parseAddress("1:2:3:4:5:6:1.2.3.4")!)).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4])
    expect(Array.from(parseAddress("fe80::")!)).toEqual([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    expect(parseAddress("example.com")).toBeUndefined()
    expect(parseAddress("256.0.0.1")).toBeUndefined()
  })
})

describe("parseCidr", () => {
  it("rejects bad input with CidrError", () => {
    for (const bad of ["10.0.0.0/33", "10.0.0.1/8", "::1/129", "nope", "10.0.0.0/", "10.0.0.0/-1", "fe80::1/10"]) {
      expect(() => parseCidr(bad), bad).toThrow(CidrError)
    }
  })
  it("accepts a bare address as a single host", () => {
    expect(parseCidr("10.1.2.3").prefix).toBe(128)
    expect(parseCidr("::1").prefix).toBe(128)
  })
})

describe("AllowList", () => {
  const list = AllowList.parse(["127.0.0.0/8", "10.20.0.0/14", "::1/128", "fd00::/8"])

  it.each([
    ["127.0.0.1", true],
    ["127.255.255.254", true],
    ["128.0.0.1", false],
    ["10.20.0.1", true],
    ["10.23.255.255", true],
    ["10.24.0.0", false],
    ["10.19.255.255", false],
    ["::ffff:127.0.0.1", true], // IPv4-mapped on a dual-stack socket
    ["::ffff:10.22.1.1", true],
    ["::ffff:192.168.1.1", false],
    ["::1", true],
    ["::2", false],
    ["fd12:3456::1", true],
    ["fe80::1%lo", false],
    ["fc00::1", false],
    ["garbage", false],
  ])("%s -> %s", (addr, allowed) => {
    expect(list.allows(addr)).toBe(allowed)
  })

  it("refuses an unknown address and everyone when the list is empty", () => {
    expect(list.allows(undefined)).toBe(false)
    expect(AllowList.parse([]).allows("127.0.0.1")).toBe(false)
  })

  it("0.0.0.0/0 is all of IPv4 (mapped too) but not IPv6; ::/0 is everything", () => {
    const v4 = AllowList.parse(["0.0.0.0/0"])
    expect(v4.allows("203.0.113.9")).toBe(true)
    expect(v4.allows("::ffff:203.0.113.9")).toBe(true)
    expect(v4.allows("2001:db8::1")).toBe(false)
    expect(AllowList.parse(["::/0"]).allows("203.0.113.9")).toBe(true)
  })

  it("IPv6 rules on the mapped range match IPv4 clients", () => {
    expect(AllowList.parse(["::ffff:127.0.0.0/104"]).allows("127.1.2.3")).toBe(true)
  })

  it("gives the same verdicts when asked again, also after more distinct addresses than it remembers", () => {
    const l = AllowList.parse(["10.0.0.0/8"])
    const verdicts = () => ["10.1.2.3", "11.1.2.3", "::ffff:10.9.9.9", "bogus"].map((a) => l.allows(a))
    expect(verdicts()).toEqual([true, false, true, false])
    expect(verdicts()).toEqual([true, false, true, false])
    for (let i = 0; i < 3000; i++) expect(l.allows(`10.0.${i >> 8}.${i & 255}`)).toBe(true)
    expect(verdicts()).toEqual([true, false, true, false])
  })

  it("odd prefix lengths", () => {
    const l = AllowList.parse(["192.168.0.128/25"])
    expect(l.allows("192.168.0.128")).toBe(true)
    expect(l.allows("192.168.0.255")).toBe(true)
    expect(l.allows("192.168.0.127")).toBe(false)
  })
})

describe("forbiddenResponse", () => {
  it("is a complete 403 with Connection: close and a matching Content-Length", () => {
    const text = new TextDecoder().decode(forbiddenResponse("hctunnel"))
    const [head, body] = text.split("\r\n\r\n") as [string, string]
    expect(head.startsWith("HTTP/1.1 403 Forbidden\r\n")).toBe(true)
    expect(head).toContain("\r\nConnection: close")
    expect(head).toContain(`\r\nContent-Length: ${body.length}`)
  })
})
