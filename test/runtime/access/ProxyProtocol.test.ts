/**
 * The PROXY protocol parser, table-driven: every valid and invalid v1/v2 form, each fed whole, byte
 * by byte and at every split point, with and without bytes after the header.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  formatIPv6,
  parseProxyHeader,
  type ProxyHeader,
  type ProxyParse,
  V1_MAX_BYTES,
  V2_SIGNATURE,
} from "../../../src/runtime/access/ProxyProtocol.ts"

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s)
const concat = (...parts: ReadonlyArray<Uint8Array | ReadonlyArray<number>>): Uint8Array => {
  const out: Array<number> = []
  for (const p of parts) out.push(...p)
  return Uint8Array.from(out)
}
const u16 = (n: number): Array<number> => [n >> 8, n & 0xff]

/** A v2 header: version/command byte, family byte, address block (its length is written for it). */
const v2 = (versionCommand: number, family: number, block: ReadonlyArray<number>, length = block.length): Uint8Array =>
  concat(V2_SIGNATURE, [versionCommand, family], u16(length), block)
const ipv4Block = (src: ReadonlyArray<number>, dst: ReadonlyArray<number>, sport: number, dport: number): Array<number> => [
  ...src,
  ...dst,
  ...u16(sport),
  ...u16(dport),
]
const ipv6Block = (src: ReadonlyArray<number>, dst: ReadonlyArray<number>, sport: number, dport: number): Array<number> => [
  ...src,
  ...dst,
  ...u16(sport),
  ...u16(dport),
]
const v6 = (...words: ReadonlyArray<number>): Array<number> => words.flatMap(u16)

const PROXY = 0x21
const LOCAL = 0x20
const TCP4 = 0x11
const TCP6 = 0x21

const valid: ReadonlyArray<readonly [string, Uint8Array, ProxyHeader]> = [
  ["v1 TCP4", ascii("PROXY TCP4 203.0.113.7 192.0.2.1 51234 3128\r\n"), { version: 1, address: "203.0.113.7", port: 51234 }],
  ["v1 TCP4 extremes", ascii("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n"), { version: 1, address: "255.255.255.255", port: 65535 }],
  ["v1 TCP6", ascii("PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n"), { version: 1, address: "2001:db8::7", port: 40000 }],
  ["v1 TCP6 upper case hex", ascii("PROXY TCP6 2001:DB8::A ::1 1 2\r\n"), { version: 1, address: "2001:db8::a", port: 1 }],
  [
    "v1 TCP6 in its long form",
    ascii("PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0007 ::1 80 81\r\n"),
    { version: 1, address: "2001:db8::7", port: 80 },
  ],
  ["v1 TCP6 mapped IPv4", ascii("PROXY TCP6 ::ffff:127.0.0.2 ::1 5 6\r\n"), { version: 1, address: "::ffff:127.0.0.2", port: 5 }],
  [
    "v1 TCP6 longest line (107 bytes)",
    ascii("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
    { version: 1, address: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", port: 65535 },
  ],
  ["v1 UNKNOWN of 107 bytes", ascii(`PROXY UNKNOWN ${"x".repeat(107 - 14 - 2)}\r\n`), { version: 1, address: undefined, port: 0 }],
  ["v1 UNKNOWN", ascii("PROXY UNKNOWN\r\n"), { version: 1, address: undefined, port: 0 }],
  ["v1 UNKNOWN with addresses", ascii("PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n"), { version: 1, address: undefined, port: 0 }],
  [
    "v2 PROXY TCP4",
    v2(PROXY, TCP4, ipv4Block([203, 0, 113, 7], [192, 0, 2, 1], 51234, 3128)),
    { version: 2, address: "203.0.113.7", port: 51234 },
  ],
  [
    "v2 PROXY TCP4 with TLVs (skipped)",
    v2(PROXY, TCP4, [...ipv4Block([10, 1, 2, 3], [10, 0, 0, 1], 7, 8), 0x04, 0x00, 0x03, 1, 2, 3, 0x05, 0x00, 0x00]),
    { version: 2, address: "10.1.2.3", port: 7 },
  ],
  [
    "v2 PROXY TCP6",
    v2(PROXY, TCP6, ipv6Block(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7), v6(0, 0, 0, 0, 0, 0, 0, 1), 40000, 443)),
    { version: 2, address: "2001:db8::7", port: 40000 },
  ],
  [
    "v2 PROXY TCP6 mapped IPv4",
    v2(PROXY, TCP6, ipv6Block(v6(0, 0, 0, 0, 0, 0xffff, 0x7f00, 2), v6(0, 0, 0, 0, 0, 0, 0, 1), 9, 10)),
    { version: 2, address: "::ffff:127.0.0.2", port: 9 },
  ],
  ["v2 PROXY UNSPEC (keep the real peer)", v2(PROXY, 0x00, []), { version: 2, address: undefined, port: 0 }],
  ["v2 LOCAL (health check)", v2(LOCAL, 0x00, []), { version: 2, address: undefined, port: 0 }],
  [
    "v2 LOCAL with an address block (ignored)",
    v2(LOCAL, TCP4, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
    { version: 2, address: undefined, port: 0 },
  ],
  ["v2 LOCAL with any family (ignored)", v2(LOCAL, 0x31, [1, 2, 3]), { version: 2, address: undefined, port: 0 }],
]

const invalid: ReadonlyArray<readonly [string, Uint8Array, RegExp]> = [
  ["plain HTTP", ascii("GET http://origin.test/ HTTP/1.1\r\n\r\n"), /no PROXY protocol header/],
  ["CONNECT", ascii("CONNECT origin.test:443 HTTP/1.1\r\n\r\n"), /no PROXY protocol header/],
  ["P but not PROXY", ascii("POST http://origin.test/ HTTP/1.1\r\n\r\n"), /no PROXY protocol header/],
  ["lower-case proxy", ascii("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), /no PROXY protocol header/],
  ["v1 no space after PROXY", ascii("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), /no PROXY protocol header/],
  ["v1 two spaces", ascii("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), /expected "PROXY TCP4\|TCP6/],
  ["v1 trailing space", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), /expected "PROXY TCP4\|TCP6/],
  ["v1 missing port", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), /expected "PROXY TCP4\|TCP6/],
  ["v1 extra field", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), /expected "PROXY TCP4\|TCP6/],
  ["v1 unknown protocol", ascii("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), /unknown protocol "UDP4"/],
  ["v1 lower-case tcp4", ascii("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), /unknown protocol "tcp4"/],
  ["v1 UNKNOWNX", ascii("PROXY UNKNOWNX\r\n"), /expected "PROXY TCP4\|TCP6/],
  ["v1 bare PROXY", ascii("PROXY \r\n"), /expected "PROXY TCP4\|TCP6/],
  ["v1 TCP4 with an IPv6 address", ascii("PROXY TCP4 ::1 ::1 1 2\r\n"), /not a valid IPv4/],
  ["v1 TCP6 with an IPv4 address", ascii("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), /not a valid IPv6/],
  ["v1 TCP6 with a zone", ascii("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), /not a valid IPv6/],
  ["v1 TCP6 in brackets", ascii("PROXY TCP6 [::1] ::1 1 2\r\n"), /not a valid IPv6/],
  ["v1 octet out of range", ascii("PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n"), /not a valid IPv4/],
  ["v1 octet with a leading zero", ascii("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), /not a valid IPv4/],
  ["v1 three octets", ascii("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), /not a valid IPv4/],
  ["v1 bad destination", ascii("PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n"), /not a valid IPv4/],
  ["v1 port out of range", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), /port is not/],
  ["v1 port with a leading zero", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), /port is not/],
  ["v1 negative port", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), /port is not/],
  ["v1 hex port", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n"), /port is not/],
  ["v1 bad destination port", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"), /port is not/],
  ["v1 LF without CR", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), /not printable ASCII/],
  ["v1 CR without LF", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), /CR not followed by LF/],
  ["v1 NUL byte", ascii("PROXY TCP4 1.2.3.4\x00 5.6.7.8 1 2\r\n"), /not printable ASCII/],
  ["v1 tab", ascii("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"), /not printable ASCII/],
  ["v1 non-ASCII", Uint8Array.from([...ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), 0xc3, 0xa9, 0x0d, 0x0a]), /not printable ASCII/],
  ["v1 no CRLF within 107 bytes", ascii(`PROXY UNKNOWN ${"x".repeat(120)}\r\n`), /no CRLF within 107 bytes/],
  ["v1 line of 108 bytes", ascii(`PROXY UNKNOWN ${"x".repeat(108 - 14 - 2)}\r\n`), /no CRLF within 107 bytes/],
  [
    "v2 signature wrong in its last byte",
    concat(V2_SIGNATURE.slice(0, 11), [0x0b, PROXY, TCP4, 0, 12], ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
    /no PROXY protocol header/,
  ],
  ["v2 signature cut by a CRLF CRLF", ascii("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), /no PROXY protocol header/],
  ["v2 version 1", v2(0x11, TCP4, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /version 1/],
  ["v2 version 3", v2(0x31, TCP4, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /version 3/],
  ["v2 command 2", v2(0x22, TCP4, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /unknown command 2/],
  ["v2 command 15", v2(0x2f, TCP4, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /unknown command 15/],
  ["v2 UDP over IPv4", v2(PROXY, 0x12, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /0x12 is not TCP/],
  ["v2 UDP over IPv6", v2(PROXY, 0x22, new Array<number>(36).fill(0)), /0x22 is not TCP/],
  ["v2 UNIX stream", v2(PROXY, 0x31, new Array<number>(216).fill(0)), /0x31 is not TCP/],
  ["v2 unknown family", v2(PROXY, 0x41, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /0x41 is not TCP/],
  ["v2 unknown transport", v2(PROXY, 0x13, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /0x13 is not TCP/],
  ["v2 IPv4 block too short", v2(PROXY, TCP4, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0], 11), /11 bytes, shorter than the 12/],
  ["v2 IPv6 block too short", v2(PROXY, TCP6, new Array<number>(35).fill(0), 35), /35 bytes, shorter than the 36/],
  ["v2 IPv6 family with an IPv4 block", v2(PROXY, TCP6, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /12 bytes, shorter than the 36/],
]

/** Feed `bytes` in the pieces `cuts` makes; every answer before the last piece must be NeedMore. */
const feedInPieces = (bytes: Uint8Array, cuts: ReadonlyArray<number>): { result: ProxyParse; earlyAt: number | undefined } => {
  let seen: Uint8Array = new Uint8Array(0)
  let from = 0
  for (const cut of [...cuts, bytes.length]) {
    seen = concat(seen, bytes.subarray(from, cut))
    from = cut
    const r = parseProxyHeader(seen)
    if (r._tag !== "NeedMore") return { result: r, earlyAt: cut }
  }
  return { result: { _tag: "NeedMore" }, earlyAt: undefined }
}

const everySplit = (length: number): Array<Array<number>> => {
  const out: Array<Array<number>> = [[], Array.from({ length: length - 1 }, (_, i) => i + 1)] // whole, byte by byte
  for (let i = 1; i < length; i++) out.push([i])
  return out
}

describe("parseProxyHeader: valid headers", () => {
  for (const [name, bytes, header] of valid) {
    it(`${name}: parsed whole, byte by byte and at every split, and the rest is left alone`, () => {
      const tail = ascii("GET http://origin.test/ HTTP/1.1\r\n\r\n")
      for (const cuts of everySplit(bytes.length)) {
        const { result, earlyAt } = feedInPieces(bytes, cuts)
        expect(result, `cuts ${cuts.join(",")}`).toEqual({ _tag: "Done", header, length: bytes.length })
        expect(earlyAt).toBe(bytes.length) // never done before the header's last byte
      }
      // With the first request in the same read: the header's length says where the request starts.
      expect(parseProxyHeader(concat(bytes, tail))).toEqual({ _tag: "Done", header, length: bytes.length })
    })
  }
})

describe("parseProxyHeader: invalid headers", () => {
  for (const [name, bytes, reason] of invalid) {
    it(`${name}: refused, whole and in any pieces`, () => {
      for (const cuts of everySplit(bytes.length)) {
        const { result } = feedInPieces(bytes, cuts)
        expect(result._tag, `cuts ${cuts.join(",")}`).toBe("Invalid")
        if (result._tag === "Invalid") expect(result.reason).toMatch(reason)
      }
    })
  }

  it("a wrong first byte is refused at once (a client that is not a load balancer waits for nothing)", () => {
    expect(parseProxyHeader(ascii("G"))._tag).toBe("Invalid")
    expect(parseProxyHeader(Uint8Array.of(0x16))._tag).toBe("Invalid") // a TLS ClientHello
    expect(parseProxyHeader(ascii("PROXX"))._tag).toBe("Invalid")
    expect(parseProxyHeader(concat(V2_SIGNATURE.slice(0, 5), [0xff]))._tag).toBe("Invalid")
  })

  it("NeedMore only while the bytes can still become a header", () => {
    expect(parseProxyHeader(new Uint8Array(0))._tag).toBe("NeedMore")
    expect(parseProxyHeader(ascii("PROXY TCP4 1.2.3.4"))._tag).toBe("NeedMore")
    expect(parseProxyHeader(ascii(`PROXY UNKNOWN ${"x".repeat(V1_MAX_BYTES - 14 - 2)}`))._tag).toBe("NeedMore") // 105 bytes: CRLF may follow
    expect(parseProxyHeader(ascii(`PROXY UNKNOWN ${"x".repeat(V1_MAX_BYTES - 14 - 1)}`))._tag).toBe("Invalid") // 106 bytes without CR: too long
    expect(parseProxyHeader(V2_SIGNATURE)._tag).toBe("NeedMore")
    const header = v2(PROXY, TCP4, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))
    expect(parseProxyHeader(header.subarray(0, header.length - 1))._tag).toBe("NeedMore")
  })

  it("a v2 header as long as its 16-bit length allows is read to its end", () => {
    const block = [...ipv4Block([192, 0, 2, 9], [5, 6, 7, 8], 1234, 2), ...new Array<number>(65535 - 12).fill(0)]
    const header = v2(PROXY, TCP4, block)
    expect(parseProxyHeader(header.subarray(0, 1000))._tag).toBe("NeedMore")
    expect(parseProxyHeader(header)).toEqual({ _tag: "Done", header: { version: 2, address: "192.0.2.9", port: 1234 }, length: 65551 })
  })
})

describe("formatIPv6", () => {
  const cases: ReadonlyArray<readonly [ReadonlyArray<number>, string]> = [
    [[0, 0, 0, 0, 0, 0, 0, 1], "::1"],
    [[0, 0, 0, 0, 0, 0, 0, 0], "::"],
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], "2001:db8::1:0:0:1"], // the first of two equal runs
    [[0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1:1:1:1:1"], // one zero word is not shortened
    [[0x2001, 0, 0, 1, 0, 0, 0, 1], "2001:0:0:1::1"], // the longest run
    [[0xfe80, 0, 0, 0, 0, 0, 0, 0], "fe80::"],
    [[0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201], "::ffff:192.0.2.1"],
    [[0xabcd, 0xef01, 0x2345, 0x6789, 0xabcd, 0xef01, 0x2345, 0x6789], "abcd:ef01:2345:6789:abcd:ef01:2345:6789"],
  ]
  for (const [words, text] of cases) {
    it(text, () => expect(formatIPv6(Uint8Array.from(v6(...words)), 0)).toBe(text))
  }
})

describe("parseProxyHeader: properties over arbitrary bytes", () => {
  /** Byte strings that often start like a header, so the parser gets past its first byte. */
  const headerish = fc.oneof(
    fc.uint8Array({ maxLength: 120 }),
    fc.uint8Array({ maxLength: 80 }).map((tail) => concat(ascii("PROXY "), tail)),
    fc.uint8Array({ maxLength: 80 }).map((tail) => concat(V2_SIGNATURE, tail)),
    fc
      .constantFrom(...valid.map(([, bytes]) => bytes), ...invalid.map(([, bytes]) => bytes))
      .chain((bytes) =>
        fc
          .tuple(fc.nat({ max: bytes.length }), fc.uint8Array({ maxLength: 8 }))
          .map(([cut, noise]) => concat(bytes.subarray(0, cut), noise)),
      ),
  )

  it("never throws; Done never claims more than it was given; a verdict never changes as bytes arrive", () => {
    fc.assert(
      fc.property(headerish, fc.uint8Array({ maxLength: 40 }), (bytes, more) => {
        const first = parseProxyHeader(bytes)
        if (first._tag === "Done") expect(first.length).toBeLessThanOrEqual(bytes.length)
        const later = parseProxyHeader(concat(bytes, more))
        if (first._tag !== "NeedMore") expect(later).toEqual(first)
      }),
      { numRuns: 2000 },
    )
  })
})
