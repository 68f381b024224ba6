/**
 * The destination policy as a pure function: every default range (and its IPv4-mapped, -compatible
 * and NAT64 forms), the default ports, rule syntax, precedence, name rules and the proxy's own sockets.
 * Nothing here dials anything: these addresses are only ever handed to `check`.
 */
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import {
  check,
  checkName,
  checkUnresolved,
  allowedAddresses,
  defaultPortOpen,
  type DestinationKind,
  type DestinationPolicy,
  isExposed,
  isLoopbackAddress,
  makePolicy,
} from "../../../src/runtime/dial/DestinationPolicy.ts"
import { parseRule, RuleError, splitRules } from "../../../src/runtime/dial/DestinationRules.ts"
import { specialRanges } from "../../../src/runtime/dial/SpecialRanges.ts"

const LOOPBACK_LISTEN = [{ host: "127.0.0.1", port: 8888 }]
const EXPOSED_LISTEN = [{ host: "0.0.0.0", port: 3128 }]
const INTERFACES = ["127.0.0.1", "::1", "192.168.1.20", "fe80::1234", "2606:4700::20"]

/** The default client allow list (loopback only). */
const LOOPBACK_CLIENTS = ["127.0.0.0/8", "::1/128"]

const exposed = (allowTo: Array<string> = [], denyTo: Array<string> = []): DestinationPolicy =>
  makePolicy({ allowTo, denyTo, listen: EXPOSED_LISTEN, clientAllow: ["10.0.0.0/8"], interfaces: INTERFACES })
const local = (allowTo: Array<string> = [], denyTo: Array<string> = []): DestinationPolicy =>
  makePolicy({ allowTo, denyTo, listen: LOOPBACK_LISTEN, clientAllow: LOOPBACK_CLIENTS, interfaces: INTERFACES })

/** 16 address bytes as text: dotted IPv4 for the mapped form, else eight hex groups. */
const addressText = (b: Uint8Array): string => {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return Array.from(b.subarray(12)).join(".")
  const groups: Array<string> = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16))
  return groups.join(":")
}

/** The name of the first table entry that holds `b` (the table's own order, v4 entries for mapped addresses). */
const nameAt = (b: Uint8Array): string | undefined => {
  const v4 = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff
  return specialRanges.find((r) => r.text.includes(":") !== v4 && inCidr(r.cidr, b))?.name
}
const inCidr = (cidr: { readonly bytes: Uint8Array; readonly prefix: number }, b: Uint8Array): boolean => {
  for (let bit = 0; bit < cidr.prefix; bit++) {
    const m = 0x80 >> (bit & 7)
    if ((cidr.bytes[bit >> 3]! & m) !== (b[bit >> 3]! & m)) return false
  }
  return true
}

/** The verdict as "allowed" or "<kind>:<rule>" for compact tables. */
const verdict = (policy: DestinationPolicy, address: string, port: number, kind: DestinationKind = "connect", host = address): string => {
  const d = check(policy, { host, address, port, kind })
  return d === undefined ? "allowed" : `${d.kind}:${d.rule}`
}

describe("rule syntax", () => {
  it.each([
    ["*", "Any", undefined],
    ["*:25", "Any", [[25, 25]]],
    ["*:*", "Any", undefined],
    ["10.0.0.0/8", "Network", undefined],
    ["10.0.0.0/8:22", "Network", [[22, 22]]],
    ["127.0.0.1:8080-8090", "Network", [[8080, 8090]]],
    [
      "example.com:80,443",
      "Name",
      [
        [80, 80],
        [443, 443],
      ],
    ],
    ["Example.COM.", "Name", undefined],
    ["*.example.com", "Suffix", undefined],
    [
      "*.example.com:443,8000-8100",
      "Suffix",
      [
        [443, 443],
        [8000, 8100],
      ],
    ],
    ["[fd00::/8]:443", "Network", [[443, 443]]],
    ["[::1]", "Network", undefined],
    ["fd00::/8", "Network", undefined],
    ["::1", "Network", undefined],
    ["[::ffff:127.0.0.1]:22", "Network", [[22, 22]]],
  ])("%s", (text, tag, ports) => {
    const rule = parseRule(text)
    expect(rule.address._tag).toBe(tag)
    expect(rule.ports).toEqual(ports)
  })

  it.each([
    [""],
    ["   "],
    ["10.0.0.0/33"],
    ["10.0.0.1/8"],
    ["*:0"],
    ["*:65536"],
    ["*:22-21"],
    ["*:ssh"],
    ["*:"],
    ["example.com:80,,443"],
    ["fd00::/8:443"],
    ["*:*,443"],
    ["[fd00::/8"],
    ["[fd00::/8]443"],
    ["[example.com]:80"],
    ["exa mple.com"],
    ["-bad.example"],
    ["*.*.example.com"],
    ["ex*ample.com"],
    ["127.1"],
    ["2130706433"],
    ["0x7f.1"],
    ["http://example.com"],
  ])("rejects %j with a RuleError", (text) => {
    expect(() => parseRule(text)).toThrow(RuleError)
  })

  it("says what is wrong and what is allowed", () => {
    expect(() => parseRule("*:ssh")).toThrow(/"ssh" is not a port: use N, N-M/)
    expect(() => parseRule("fd00::/8:443")).toThrow(/brackets/)
    expect(() => parseRule("127.1")).toThrow(/write an IPv4 address in full/)
  })

  it("splits comma lists, keeping port lists with their rule", () => {
    expect(splitRules("10.0.0.0/8:80,443,*:25")).toEqual(["10.0.0.0/8:80,443", "*:25"])
    expect(splitRules("a.example, b.example:22,8000-8080 ,[fd00::/8]:443,80")).toEqual([
      "a.example",
      "b.example:22,8000-8080",
      "[fd00::/8]:443,80",
    ])
    expect(splitRules("*:*,443")).toEqual(["*:*,443"]) // then a bad rule, reported as such
    expect(parseRule("fe80::1:22").ports).toBeUndefined() // a whole IPv6 address: ports need brackets
    expect(splitRules("")).toEqual([])
  })
})

describe("a loopback-only proxy (the default)", () => {
  const policy = local()
  it.each([
    ["127.0.0.1", 22],
    ["127.0.0.1", 8889],
    ["10.1.2.3", 22],
    ["169.254.169.254", 80],
    ["::1", 25],
    ["93.184.216.34", 25],
    ["192.168.1.20", 8888], // not a wildcard listener: another address on its port is someone else
  ])("allows %s:%i", (address, port) => {
    expect(verdict(policy, address, port)).toBe("allowed")
    expect(verdict(policy, address, port, "http")).toBe("allowed")
  })

  it("denies its own socket, and the unspecified address on its port", () => {
    expect(verdict(policy, "127.0.0.1", 8888)).toBe("self:self")
    expect(verdict(policy, "::ffff:127.0.0.1", 8888, "http")).toBe("self:self")
    expect(verdict(policy, "0.0.0.0", 8888)).toBe("self:self")
    expect(verdict(policy, "::", 8888)).toBe("self:self")
    expect(verdict(policy, "127.0.0.2", 8888)).toBe("allowed")
  })

  it("no allow rule opens its own socket", () => {
    expect(verdict(local(["*", "127.0.0.1:8888"]), "127.0.0.1", 8888)).toBe("self:self")
  })

  it("applies deny rules", () => {
    const p = local([], ["*:25", "10.0.0.0/8", "*.corp.example", "db.example:5432"])
    expect(verdict(p, "93.184.216.34", 25)).toBe("rule:*:25")
    expect(verdict(p, "10.9.9.9", 443)).toBe("rule:10.0.0.0/8")
    expect(verdict(p, "::ffff:10.9.9.9", 443)).toBe("rule:10.0.0.0/8")
    expect(verdict(p, "93.184.216.34", 443, "connect", "git.corp.example")).toBe("rule:*.corp.example")
    expect(verdict(p, "93.184.216.34", 5432, "connect", "db.example")).toBe("rule:db.example:5432")
    expect(verdict(p, "93.184.216.34", 5433, "connect", "db.example")).toBe("allowed")
    expect(verdict(p, "93.184.216.34", 443)).toBe("allowed")
  })

  it("IPv4-compatible and -mapped spellings of a rule match every spelling of the address", () => {
    const p = local([], ["::127.0.0.1", "[::ffff:10.0.0.0/104]:22"])
    for (const address of ["127.0.0.1", "::127.0.0.1", "::ffff:127.0.0.1", "::7f00:1"])
      expect(verdict(p, address, 80), address).toBe("rule:::127.0.0.1")
    for (const address of ["10.1.1.1", "::10.1.1.1", "::ffff:a01:101"])
      expect(verdict(p, address, 22), address).toBe("rule:[::ffff:10.0.0.0/104]:22")
    expect(verdict(p, "::1", 80)).toBe("allowed")
  })
})

describe("an exposed proxy: default ranges", () => {
  const policy = exposed()
  // Every range, at its edges, in every IPv6 form that leads to it.
  it.each([
    ["0.0.0.0", "unspecified"],
    ["0.255.255.255", "unspecified"],
    ["10.0.0.0", "private"],
    ["10.255.255.255", "private"],
    ["100.64.0.1", "private"],
    ["100.127.255.255", "private"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["169.254.169.254", "link-local"],
    ["169.254.0.1", "link-local"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.0.1", "private"],
    ["192.168.255.255", "private"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["fec0::1", "private"],
    ["ff02::1", "multicast"],
    // IPv4-mapped IPv6, dotted and hex
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "link-local"],
    ["::ffff:a9fe:a9fe", "link-local"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:0.0.0.0", "unspecified"],
    ["0:0:0:0:0:ffff:192.168.1.1", "private"],
    ["[::ffff:127.0.0.1]", "loopback"],
    // IPv4-compatible IPv6 (deprecated)
    ["::127.0.0.1", "loopback"],
    ["::7f00:1", "loopback"],
    ["::169.254.169.254", "link-local"],
    ["::10.0.0.1", "private"],
    ["::0.0.0.2", "unspecified"],
    // NAT64 (RFC 6052)
    ["64:ff9b::127.0.0.1", "loopback"],
    ["64:ff9b::a9fe:a9fe", "link-local"],
    ["64:ff9b::10.1.1.1", "private"],
  ])("denies %s (%s)", (address, range) => {
    expect(verdict(policy, address, 443)).toBe(`range:${range}`)
    expect(verdict(policy, address, 80, "http")).toBe(`range:${range}`)
  })

  // Issue 17, item 13: the entries the audit found missing, with the word each denial gives.
  it.each([
    ["64:ff9b:1::1", "nat64-local"],
    ["64:ff9b:1:ffff::a00:1", "nat64-local"],
    ["::ffff:0:a00:1", "ipv4-translated"],
    ["::ffff:0:808:808", "ipv4-translated"],
    ["2002:c0a8:101::1", "6to4"],
    ["2002::", "6to4"],
    ["198.18.0.1", "benchmarking"],
    ["198.19.255.255", "benchmarking"],
    ["::ffff:198.18.0.1", "benchmarking"],
    ["192.0.0.1", "ietf-protocol"],
    ["192.0.0.170", "ietf-protocol"],
    ["192.0.0.255", "ietf-protocol"],
    ["100::1", "discard"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"],
    ["2001:db8::1", "documentation"],
    ["3fff::1", "documentation"],
    ["192.0.2.1", "documentation"],
    ["203.0.113.255", "documentation"],
    ["2001:2::1", "benchmarking"],
    ["2001:1::1", "ietf-protocol"],
    ["2001:1ff::1", "ietf-protocol"],
    ["5f00::1", "srv6-sid"],
    ["192.88.99.1", "6to4-relay"],
    ["168.63.129.16", "cloud-metadata"],
    ["::ffff:168.63.129.16", "cloud-metadata"],
  ])("denies %s (%s)", (address, range) => {
    expect(verdict(policy, address, 443)).toBe(`range:${range}`)
    expect(verdict(policy, address, 80, "http")).toBe(`range:${range}`)
  })

  it("a NAT64 address leading into a new range is denied like the IPv4 address", () => {
    expect(verdict(policy, "64:ff9b::c612:1", 443)).toBe("range:benchmarking") // 198.18.0.1
    expect(verdict(policy, "64:ff9b::a83f:8110", 443)).toBe("range:cloud-metadata") // 168.63.129.16
    expect(verdict(policy, "64:ff9b::c000:201", 443)).toBe("range:documentation") // 192.0.2.1
  })

  it("every entry of the table is denied at its first and its last address, in the range it names or one inside it", () => {
    for (const r of specialRanges) {
      const lo = Uint8Array.from(r.cidr.bytes)
      const hi = Uint8Array.from(r.cidr.bytes)
      for (let bit = r.cidr.prefix; bit < 128; bit++) hi[bit >> 3]! |= 0x80 >> (bit & 7)
      for (const b of [lo, hi]) {
        const v = verdict(policy, addressText(b), 443)
        expect(v, `${r.text} at ${addressText(b)}`).toMatch(/^range:/)
      }
      expect(verdict(policy, addressText(lo), 443), r.text).toBe(`range:${nameAt(lo)}`)
    }
  })

  it.each([
    ["93.184.216.34"],
    ["9.255.255.255"],
    ["11.0.0.0"],
    ["100.63.255.255"],
    ["100.128.0.0"],
    ["126.255.255.255"],
    ["128.0.0.0"],
    ["169.253.255.255"],
    ["172.15.255.255"],
    ["172.32.0.0"],
    ["192.167.255.255"],
    ["223.255.255.255"],
    ["2606:4700::1111"],
    ["2a00:1450:4001:82a::200e"],
    ["2001:200::1"],
    ["2003::1"],
    ["64:ff9b:2::1"],
    ["192.0.1.255"],
    ["192.0.3.0"],
    ["198.17.255.255"],
    ["198.20.0.0"],
    ["168.63.129.15"],
    ["168.63.129.17"],
    ["::ffff:93.184.216.34"],
    ["64:ff9b::93.184.216.34"],
    ["fbff::1"],
    ["fe00::1"],
  ])("allows the public address %s on the default ports", (address) => {
    expect(verdict(policy, address, 443)).toBe("allowed")
    expect(verdict(policy, address, 80, "http")).toBe("allowed")
  })

  it("a name that resolves into a range is denied like the address (the check is on what is dialled)", () => {
    expect(verdict(policy, "127.0.0.1", 443, "connect", "origin.test")).toBe("range:loopback")
    expect(verdict(policy, "10.0.0.5", 80, "http", "intranet.example")).toBe("range:private")
    expect(verdict(policy, "127.0.0.1", 80, "http", "foo.localhost")).toBe("range:loopback")
  })

  it("names the rule and the flag that would allow it", () => {
    expect(check(policy, { host: "127.0.0.1", address: "127.0.0.1", port: 22, kind: "connect" })?.message).toBe(
      "destination 127.0.0.1:22 denied: loopback (allow it with --allow-to 127.0.0.0/8:22)",
    )
    expect(check(policy, { host: "origin.test", address: "127.0.0.1", port: 8080, kind: "http" })?.message).toBe(
      "destination origin.test:8080 (127.0.0.1) denied: loopback (allow it with --allow-to 127.0.0.0/8:8080)",
    )
    expect(check(policy, { host: "::ffff:127.0.0.1", address: "::ffff:127.0.0.1", port: 443, kind: "connect" })?.message).toBe(
      "destination [::ffff:127.0.0.1]:443 denied: loopback (allow it with --allow-to 127.0.0.0/8:443)",
    )
    expect(check(policy, { host: "fe80::1", address: "fe80::1", port: 443, kind: "connect" })?.message).toBe(
      "destination [fe80::1]:443 denied: link-local (allow it with --allow-to [fe80::/10]:443)",
    )
    expect(check(policy, { host: "64:ff9b::7f00:1", address: "64:ff9b::7f00:1", port: 443, kind: "connect" })?.message).toBe(
      "destination [64:ff9b::7f00:1]:443 denied: loopback (through NAT64) (allow it with --allow-to [64:ff9b::7f00:1]:443)",
    )
    expect(check(policy, { host: "example.com", address: "93.184.216.34", port: 22, kind: "connect" })?.message).toBe(
      "destination example.com:22 (93.184.216.34) denied: port 22: CONNECT is allowed to port 443 only by default (allow it with --allow-to example.com:22)",
    )
  })

  it("every hint it gives does allow the destination", () => {
    const cases: Array<[string, string, number, DestinationKind]> = [
      ["127.0.0.1", "127.0.0.1", 22, "connect"],
      ["origin.test", "127.0.0.1", 8080, "http"],
      ["::ffff:127.0.0.1", "::ffff:127.0.0.1", 443, "connect"],
      ["fe80::1", "fe80::1", 22, "connect"],
      ["64:ff9b::7f00:1", "64:ff9b::7f00:1", 443, "connect"],
      ["::127.0.0.1", "::127.0.0.1", 443, "connect"],
      ["example.com", "93.184.216.34", 22, "connect"],
      ["93.184.216.34", "93.184.216.34", 25, "http"],
      ["2606:4700::1", "2606:4700::1", 22, "connect"],
      ["2001:db8::1", "2001:db8::1", 443, "connect"],
      ["168.63.129.16", "168.63.129.16", 80, "http"],
      ["169.254.169.254", "169.254.169.254", 80, "http"],
    ]
    for (const [host, address, port, kind] of cases) {
      const d = check(policy, { host, address, port, kind })
      const hint = /--allow-to (\S+)\)$/.exec(d?.message ?? "")?.[1]
      expect(hint, `${host} ${address}:${port}`).toBeDefined()
      expect(check(exposed([hint!]), { host, address, port, kind }), `${hint}`).toBeUndefined()
    }
  })
})

describe("an exposed proxy: default ports", () => {
  const policy = exposed()
  it("CONNECT: 443 only", () => {
    expect(verdict(policy, "93.184.216.34", 443)).toBe("allowed")
    for (const port of [22, 25, 80, 8080, 8443, 1025, 65535]) expect(verdict(policy, "93.184.216.34", port), String(port)).toBe("port:port")
  })
  it("plain HTTP: Squid's Safe_ports", () => {
    for (const port of [80, 21, 443, 70, 210, 280, 488, 591, 777, 1025, 8080, 65535]) {
      expect(verdict(policy, "93.184.216.34", port, "http"), String(port)).toBe("allowed")
    }
    for (const port of [1, 22, 23, 25, 79, 81, 1024, 444])
      expect(verdict(policy, "93.184.216.34", port, "http"), String(port)).toBe("port:port")
  })
  it("defaultPortOpen is the same table", () => {
    expect(defaultPortOpen("connect", 443)).toBe(true)
    expect(defaultPortOpen("connect", 80)).toBe(false)
    expect(defaultPortOpen("http", 1024)).toBe(false)
    expect(defaultPortOpen("http", 1025)).toBe(true)
  })
})

describe("an exposed proxy: allow rules", () => {
  it("an address rule without ports opens the range on every port", () => {
    const p = exposed(["10.0.0.0/8"])
    expect(verdict(p, "10.1.2.3", 22)).toBe("allowed")
    expect(verdict(p, "10.1.2.3", 25, "http")).toBe("allowed")
    expect(verdict(p, "::ffff:10.1.2.3", 22)).toBe("allowed")
    expect(verdict(p, "11.1.2.3", 22)).toBe("port:port")
    expect(verdict(p, "192.168.1.1", 443)).toBe("range:private")
  })

  it("an address rule with ports opens only those", () => {
    const p = exposed(["127.0.0.0/8:22,8000-8100"])
    expect(verdict(p, "127.0.0.1", 22)).toBe("allowed")
    expect(verdict(p, "127.0.0.1", 8050, "http")).toBe("allowed")
    expect(verdict(p, "127.0.0.1", 8101, "http")).toBe("range:loopback")
    expect(verdict(p, "127.0.0.1", 443)).toBe("range:loopback")
  })

  it("`*` opens ports but never a special range (that needs an explicit address)", () => {
    const p = exposed(["*:22", "*"])
    expect(verdict(p, "93.184.216.34", 22)).toBe("allowed")
    expect(verdict(p, "93.184.216.34", 25)).toBe("allowed")
    expect(verdict(p, "127.0.0.1", 22)).toBe("range:loopback")
    expect(verdict(p, "169.254.169.254", 80, "http")).toBe("range:link-local")
    expect(verdict(exposed(["0.0.0.0/0", "::/0"]), "169.254.169.254", 80, "http")).toBe("allowed")
  })

  it("name and suffix rules open what the name resolves to, whatever range", () => {
    const p = exposed(["intranet.example", "*.svc.example:8080"])
    expect(verdict(p, "10.0.0.5", 22, "connect", "intranet.example")).toBe("allowed")
    expect(verdict(p, "10.0.0.5", 22, "connect", "INTRANET.example.")).toBe("allowed")
    expect(verdict(p, "10.0.0.6", 8080, "http", "api.svc.example")).toBe("allowed")
    expect(verdict(p, "10.0.0.6", 8081, "http", "api.svc.example")).toBe("range:private")
    expect(verdict(p, "10.0.0.6", 8080, "http", "svc.example")).toBe("range:private") // *.suffix: subdomains only
    expect(verdict(p, "10.0.0.6", 8080, "http", "evilsvc.example")).toBe("range:private")
    expect(verdict(p, "10.0.0.5", 22)).toBe("range:private") // the address alone is not the name
  })

  it("deny wins over allow, in whatever order they are given", () => {
    const p = exposed(["10.0.0.0/8", "*:25"], ["10.0.0.66", "*:25"])
    expect(verdict(p, "10.0.0.65", 22)).toBe("allowed")
    expect(verdict(p, "10.0.0.66", 22)).toBe("rule:10.0.0.66")
    expect(verdict(p, "93.184.216.34", 25)).toBe("rule:*:25")
  })

  it("its own sockets: every local address on its port, whatever the rules", () => {
    const p = exposed(["0.0.0.0/0", "::/0", "*"])
    for (const address of ["127.0.0.1", "127.0.0.9", "192.168.1.20", "::ffff:192.168.1.20", "0.0.0.0"]) {
      expect(verdict(p, address, 3128, "http"), address).toBe("self:self")
    }
    // 0.0.0.0 is IPv4 only: the IPv6 interface addresses are not its
    expect(verdict(p, "2606:4700::20", 3128)).toBe("allowed")
    expect(verdict(p, "192.168.1.21", 3128)).toBe("allowed")
    expect(verdict(p, "192.168.1.20", 3129)).toBe("allowed")
    const dual = makePolicy({ listen: [{ host: "::", port: 3128 }], clientAllow: LOOPBACK_CLIENTS, interfaces: INTERFACES })
    for (const address of ["2606:4700::20", "fe80::1234", "::1", "192.168.1.20", "127.0.0.1"]) {
      expect(verdict(dual, address, 3128, "http"), address).toBe("self:self")
    }
  })
})

describe("every socket the process listens on is self (issue 17, item 14)", () => {
  const admin = [{ host: "127.0.0.1", port: 9090 }]
  it("the admin endpoint is denied as self, even with everything on loopback allowed", () => {
    for (const p of [
      makePolicy({ listen: LOOPBACK_LISTEN, ownSockets: admin, clientAllow: LOOPBACK_CLIENTS, allowTo: ["127.0.0.0/8"] }),
      makePolicy({ listen: EXPOSED_LISTEN, ownSockets: admin, clientAllow: ["10.0.0.0/8"], allowTo: ["127.0.0.0/8", "*"] }),
    ]) {
      expect(verdict(p, "127.0.0.1", 9090)).toBe("self:self")
      expect(verdict(p, "127.0.0.1", 9090, "http", "origin.test")).toBe("self:self")
      expect(check(p, { host: "127.0.0.1", port: 9090, kind: "connect" })?.kind).toBe("self") // through a parent too
      expect(verdict(p, "0.0.0.0", 9090)).toBe("self:self")
      expect(verdict(p, "127.0.0.1", 9091)).toBe("allowed")
    }
  })
  it("an admin endpoint on a wildcard address is every local address on its port", () => {
    const p = makePolicy({
      listen: LOOPBACK_LISTEN,
      ownSockets: [{ host: "0.0.0.0", port: 9090 }],
      clientAllow: LOOPBACK_CLIENTS,
      interfaces: INTERFACES,
    })
    for (const address of ["127.0.0.1", "127.0.0.2", "192.168.1.20"]) expect(verdict(p, address, 9090), address).toBe("self:self")
  })
  it("it does not make the proxy exposed: it serves no proxying", () => {
    expect(
      makePolicy({ listen: LOOPBACK_LISTEN, ownSockets: [{ host: "0.0.0.0", port: 9090 }], clientAllow: LOOPBACK_CLIENTS }).exposed,
    ).toBe(false)
  })
})

describe("checkName: before resolving", () => {
  it("denies by name, suffix and `*` rules, and leaves the rest to check", () => {
    const p = exposed(["*"], ["*:25", "*.internal.example", "db.example:5432", "10.0.0.0/8"])
    expect(checkName(p, { host: "mail.example", port: 25, kind: "connect" })?.rule).toBe("*:25")
    expect(checkName(p, { host: "a.internal.example", port: 443, kind: "connect" })?.rule).toBe("*.internal.example")
    expect(checkName(p, { host: "db.example", port: 5432, kind: "connect" })?.message).toBe(
      "destination db.example:5432 denied: rule --deny-to db.example:5432 (deny rules win over --allow-to rules)",
    )
    expect(checkName(p, { host: "db.example", port: 5433, kind: "connect" })).toBeUndefined()
    expect(checkName(p, { host: "10.1.1.1", port: 443, kind: "connect" })).toBeUndefined() // an address rule: check
    expect(checkName(local(), { host: "anything", port: 25, kind: "http" })).toBeUndefined()
  })
})

describe("names in one spelling (issue 17, item 4)", () => {
  const p = local([], ["internal.test", "*.corp.test"])
  it("a name rule matches whatever the case and one trailing dot, before and after resolving", () => {
    for (const host of ["internal.test", "Internal.TEST", "internal.test.", "a.corp.test", "A.Corp.Test."]) {
      expect(checkName(p, { host, port: 443, kind: "connect" })?.kind, host).toBe("rule")
      expect(check(p, { host, address: "93.184.216.34", port: 443, kind: "connect" })?.kind, host).toBe("rule")
      expect(checkUnresolved(p, { host, port: 443, kind: "connect" })?.kind, host).toBe("rule")
    }
  })
  it("a name with an empty label is denied wherever a rule or a default is judged (the core answers it 400)", () => {
    for (const policy of [p, exposed(), exposed(["*"])]) {
      for (const host of ["internal.test..", "internal..test", ".internal.test", "."]) {
        const destination = { host, port: 443, kind: "connect" as const }
        expect(check(policy, { ...destination, address: "93.184.216.34" })?.rule, host).toBe("malformed name")
        expect(checkUnresolved(policy, destination)?.rule, host).toBe("malformed name")
      }
    }
    expect(checkName(p, { host: "internal.test..", port: 443, kind: "connect" })?.message).toBe(
      "destination internal.test..:443 denied: a host name with an empty label (no rule can allow it)",
    )
  })
})

describe("check without an address (a parent proxy resolves)", () => {
  it("applies IP-literal rules, ranges and ports to literals, names and ports to names", () => {
    const p = exposed(["intranet.example"], ["*.blocked.example"])
    expect(check(p, { host: "127.0.0.1", port: 443, kind: "connect" })?.kind).toBe("range")
    expect(check(p, { host: "[::1]", port: 443, kind: "connect" })?.kind).toBe("range")
    expect(check(p, { host: "localhost", port: 443, kind: "connect" })?.kind).toBe("range")
    expect(check(p, { host: "a.localhost", port: 443, kind: "connect" })?.kind).toBe("range")
    expect(check(p, { host: "example.com", port: 443, kind: "connect" })).toBeUndefined()
    expect(check(p, { host: "example.com", port: 22, kind: "connect" })?.kind).toBe("port")
    expect(check(p, { host: "intranet.example", port: 22, kind: "connect" })).toBeUndefined()
    expect(check(p, { host: "x.blocked.example", port: 443, kind: "connect" })?.kind).toBe("rule")
    expect(checkUnresolved(p, { host: "10.0.0.1", port: 443, kind: "connect" })?.rule).toBe("private")
    expect(checkUnresolved(p, { host: "example.com", port: 443, kind: "connect" })).toBeUndefined()
  })
})

describe("listen addresses", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.5.5.5", true],
    ["::1", true],
    ["::ffff:127.0.0.1", true],
    ["localhost", true],
    ["0.0.0.0", false],
    ["::", false],
    ["192.168.1.20", false],
  ])("%s is loopback: %s", (host, loopback) => {
    expect(isLoopbackAddress(host)).toBe(loopback)
    expect(makePolicy({ listen: [{ host, port: 1 }], clientAllow: LOOPBACK_CLIENTS }).exposed).toBe(!loopback)
  })
  it("one non-loopback listen address makes the proxy exposed", () => {
    expect(
      makePolicy({
        listen: [
          { host: "127.0.0.1", port: 1 },
          { host: "10.0.0.1", port: 1 },
        ],
        clientAllow: LOOPBACK_CLIENTS,
      }).exposed,
    ).toBe(true)
  })
})

describe("isExposed: who can make the proxy dial (issue 17, item 3)", () => {
  const loopback = [{ host: "127.0.0.1", port: 3128 }]
  it.each([
    ["loopback listener, loopback clients, no PROXY protocol", loopback, LOOPBACK_CLIENTS, [], false],
    ["a narrower loopback client list", loopback, ["127.0.0.1/32", "::1"], [], false],
    ["loopback written as IPv4-mapped IPv6", loopback, ["::ffff:127.0.0.0/104"], [], false],
    ["no client at all", loopback, [], [], false],
    ["a non-loopback listener", [{ host: "0.0.0.0", port: 3128 }], LOOPBACK_CLIENTS, [], true],
    ["a LAN listener beside a loopback one", [...loopback, { host: "10.0.0.1", port: 3128 }], LOOPBACK_CLIENTS, [], true],
    ["PROXY protocol trusted, even from loopback", loopback, LOOPBACK_CLIENTS, ["127.0.0.1"], true],
    ["the audit's set-up: loopback listener, PROXY from loopback, --allow 10.0.0.0/8", loopback, ["10.0.0.0/8"], ["127.0.0.1"], true],
    ["a client allow list with a LAN network", loopback, ["127.0.0.0/8", "10.0.0.0/8"], [], true],
    ["every client (--auth-file without --allow)", loopback, ["0.0.0.0/0", "::/0"], [], true],
    ["all of 127/7 is more than loopback", loopback, ["126.0.0.0/7"], [], true],
    ["the IPv6 loopback's neighbours", loopback, ["::/127"], [], true],
    ["an IPv4-compatible spelling of loopback is not taken for loopback", loopback, ["::127.0.0.1/128"], [], true],
    ["an entry that does not parse counts as exposing", loopback, ["not a network"], [], true],
  ] as const)("%s: %s", (_name, listen, clientAllow, proxyProtocolFrom, expected) => {
    expect(isExposed({ listen, clientAllow, proxyProtocolFrom })).toBe(expected)
    expect(makePolicy({ listen, clientAllow, proxyProtocolFrom }).exposed).toBe(expected)
  })

  it("an exposed proxy behind a load balancer on loopback denies loopback, private ranges and the metadata service", () => {
    const p = makePolicy({ listen: loopback, clientAllow: ["10.0.0.0/8"], proxyProtocolFrom: ["127.0.0.1"] })
    expect(verdict(p, "127.0.0.1", 22)).toBe("range:loopback")
    expect(verdict(p, "169.254.169.254", 80, "http")).toBe("range:link-local")
    expect(verdict(p, "10.1.2.3", 443)).toBe("range:private")
    expect(verdict(p, "93.184.216.34", 443)).toBe("allowed")
  })
})

describe("properties", () => {
  const octets = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
  const hex = (a: number, b: number) => ((a << 8) | b).toString(16)

  it("every IPv6 spelling of an IPv4 address gets the verdict of the address itself", () => {
    const policies = [exposed(), exposed(["10.0.0.0/8:22", "*:8080"], ["192.168.0.0/16:443"]), local([], ["100.64.0.0/10"])]
    fc.assert(
      fc.property(
        octets,
        fc.constantFrom(22, 80, 443, 8080),
        fc.constantFrom<DestinationKind>("connect", "http"),
        ([a, b, c, d], port, kind) => {
          const v4 = `${a}.${b}.${c}.${d}`
          const forms = [`::ffff:${v4}`, `::ffff:${hex(a, b)}:${hex(c, d)}`, `0:0:0:0:0:ffff:${v4}`]
          // The IPv4-compatible form of 0.0.0.0 and 0.0.0.1 is :: and ::1, addresses of their own.
          if (a + b + c > 0 || d > 1) forms.push(`::${v4}`)
          for (const policy of policies) {
            const expected = verdict(policy, v4, port, kind)
            for (const form of forms) expect(verdict(policy, form, port, kind), `${form} vs ${v4}`).toBe(expected)
          }
        },
      ),
      { numRuns: 500 },
    )
  })

  it("an exposed proxy without rules allows no IPv4 address in a special range, whatever the port", () => {
    // An oracle written independently of the range table: 0/8, 10/8, 100.64/10, 127/8, 169.254/16,
    // 172.16/12, 192.168/16, everything from 224 up (multicast, reserved, broadcast), the /24s of the
    // IANA registry, 198.18/15 and Azure's 168.63.129.16.
    const slash24 = new Set(["192.0.0", "192.0.2", "192.31.196", "192.52.193", "192.88.99", "192.175.48", "198.51.100", "203.0.113"])
    const inRange = (a: number, b: number, c: number, d: number): boolean =>
      a === 0 ||
      a === 10 ||
      (a === 100 && b >= 64 && b <= 127) ||
      a === 127 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 198 && (b === 18 || b === 19)) ||
      slash24.has(`${a}.${b}.${c}`) ||
      (a === 168 && b === 63 && c === 129 && d === 16) ||
      a >= 224
    fc.assert(
      fc.property(octets, fc.integer({ min: 1, max: 65535 }), ([a, b, c, d], port) => {
        const v = verdict(exposed(), `${a}.${b}.${c}.${d}`, port, "http")
        if (inRange(a, b, c, d)) expect(v.startsWith("range:")).toBe(true)
        else expect(v === "allowed" || v === "port:port").toBe(true)
      }),
      { numRuns: 2000 },
    )
  })
})

describe("allowedAddresses: several answers for one name (Happy Eyeballs)", () => {
  it("keeps the allowed ones in order; with none, the first denial", () => {
    const p = exposed()
    const answers = [
      { address: "10.0.0.1", family: 4 },
      { address: "2606:4700::1", family: 6 },
      { address: "127.0.0.1", family: 4 },
      { address: "93.184.216.34", family: 4 },
    ]
    const r = allowedAddresses(p, { host: "mixed.example", port: 443, kind: "connect" }, answers)
    expect(r.allowed.map((a) => a.address)).toEqual(["2606:4700::1", "93.184.216.34"])
    expect(r.denial).toBeUndefined()
    const none = allowedAddresses(p, { host: "inside.example", port: 443, kind: "connect" }, [
      { address: "fd00::1" },
      { address: "127.0.0.1" },
    ])
    expect(none.allowed).toEqual([])
    expect(none.denial?.message).toBe("destination inside.example:443 (fd00::1) denied: private (allow it with --allow-to [fc00::/7]:443)")
  })
})

describe("docs/security.md's table of special ranges", () => {
  it("is the code's table, entry for entry, in order", () => {
    const doc = readFileSync(new URL("../../../docs/security.md", import.meta.url), "utf8")
    const block = doc.slice(doc.indexOf("<!-- special-ranges:begin -->"), doc.indexOf("<!-- special-ranges:end -->"))
    const rows = block
      .split("\n")
      .filter((l) => l.startsWith("| `"))
      .map((l) => l.split(" | ").map((cell) => cell.replace(/^\| |`| \|$/g, "")))
    expect(rows).toEqual(specialRanges.map((r) => [r.text, r.name, r.reason]))
  })
})
