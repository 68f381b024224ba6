/**
 * Cidr: the one parser of the CIDR grammar (IPv4 "10.0.0.0/8", IPv6 "fd00::/8", a bare address = one
 * host). The configuration check (src/cli/parsers.ts) and the worker's allow-list (Allow.ts) both call it,
 * so a value the configuration accepts is a value the worker can use, and a rejected value is rejected with
 * the same reason and the same suggested fix (`did you mean 10.0.0.0/8?`).
 *
 * Every address is held as 16 bytes: IPv4 in its IPv4-mapped IPv6 form (::ffff:a.b.c.d, prefix + 96), so
 * an IPv4 rule matches a client that arrives on a dual-stack socket as `::ffff:127.0.0.1`.
 *
 * Pure functions on strings and bytes; no IO, no state.
 */
import * as Data from "effect/Data"
import { isIPv4, isIPv6 } from "node:net"

export interface Cidr {
  readonly bytes: Uint8Array // 16 bytes, host bits cleared
  readonly prefix: number // 0..128, in the 16-byte form (an IPv4 /8 is 104)
}

// Data.TaggedError: already loaded in every worker (the Resolver's errors), so it costs no RSS there.
export class CidrError extends Data.TaggedError("CidrError")<{
  readonly input: string
  /** What is wrong with it, in words. */
  readonly reason: string
  /** What the person meant, when it can be guessed (the network of an address with host bits set). */
  readonly suggestion?: string | undefined
}> {
  override get message(): string {
    return `invalid CIDR ${JSON.stringify(this.input)}: ${this.reason}${this.suggestion === undefined ? "" : ` (did you mean ${this.suggestion}?)`}`
  }
}

/** Parse an IPv4 or IPv6 address (no brackets, no zone) into 16 bytes, IPv4 as IPv4-mapped; undefined if invalid. */
export const parseAddress = (text: string): Uint8Array | undefined => {
  if (isIPv4(text)) {
    const out = new Uint8Array(16)
    out[10] = 0xff
    out[11] = 0xff
    writeIPv4(text, out, 12)
    return out
  }
  if (!isIPv6(text)) return undefined
  const out = new Uint8Array(16)
  let tail = text
  // An embedded dotted quad takes the last 32 bits.
  let words = 8
  const lastColon = text.lastIndexOf(":")
  const maybeV4 = text.slice(lastColon + 1)
  let v4: string | undefined
  if (maybeV4.includes(".")) {
    v4 = maybeV4
    tail = text.slice(0, lastColon + 1)
    // "::1.2.3.4" keeps its "::"; "x:y:1.2.3.4" drops the separator before the quad.
    if (!tail.endsWith("::")) tail = tail.slice(0, -1)
    words = 6
  }
  const [head = "", rest] = tail.split("::") as [string, string | undefined]
  const headWords = head === "" ? [] : head.split(":")
  const restWords = rest === undefined || rest === "" ? [] : rest.split(":")
  const all = new Array<number>(words).fill(0)
  headWords.forEach((w, i) => {
    all[i] = parseInt(w, 16)
  })
  restWords.forEach((w, i) => {
    all[words - restWords.length + i] = parseInt(w, 16)
  })
  for (let i = 0; i < words; i++) {
    const w = all[i] ?? 0
    out[2 * i] = w >> 8
    out[2 * i + 1] = w & 0xff
  }
  if (v4 !== undefined) writeIPv4(v4, out, 12)
  return out
}

const writeIPv4 = (text: string, out: Uint8Array, at: number): void => {
  const parts = text.split(".")
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i])
}

/** The text of a 16-byte address: dotted quad for IPv4-mapped ones, else compressed IPv6. */
const formatAddress = (bytes: Uint8Array, v4: boolean): string => {
  if (v4) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
  const words: Array<number> = []
  for (let i = 0; i < 8; i++) words.push(((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number))
  // The longest run of two or more zero words becomes "::" (RFC 5952).
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j === i ? i + 1 : j
  }
  const hex = words.map((w) => w.toString(16))
  if (best < 0) return hex.join(":")
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`
}

/** Parse "addr/len" or a bare address (one host). Throws CidrError. Host bits must be zero. */
export const parseCidr = (input: string): Cidr => {
  const text = input.trim()
  const slash = text.indexOf("/")
  const addr = slash < 0 ? text : text.slice(0, slash)
  const v4 = isIPv4(addr)
  const bytes = parseAddress(addr)
  if (bytes === undefined) {
    throw new CidrError({
      input,
      reason: `expected an IPv4 or IPv6 address with an optional prefix length, such as "10.0.0.0/8", "192.168.1.5" or "fd00::/8"`,
    })
  }
  const max = v4 ? 32 : 128
  let len = max
  if (slash >= 0) {
    const lenText = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max)
      throw new CidrError({ input, reason: `the prefix length must be 0..${max} for an IPv${v4 ? 4 : 6} address` })
    len = Number(lenText)
  }
  const prefix = v4 ? len + 96 : len
  let hostBits = false
  const network = bytes.slice()
  for (let bit = prefix; bit < 128; bit++) {
    const mask = 0x80 >> (bit & 7)
    if ((network[bit >> 3] as number) & mask) {
      hostBits = true
      network[bit >> 3] = (network[bit >> 3] as number) & ~mask
    }
  }
  if (hostBits) {
    throw new CidrError({
      input,
      reason: `the address has host bits set (bits after the first ${len} must be zero)`,
      suggestion: `${formatAddress(network, v4)}/${len}`,
    })
  }
  return { bytes, prefix }
}

/** The canonical text of a valid CIDR ("10.0.0.0/8"; a bare address gets /32 or /128). Throws CidrError. */
export const normalizeCidr = (input: string): string => {
  const text = input.trim()
  const cidr = parseCidr(text)
  const slash = text.indexOf("/")
  const addr = slash < 0 ? text : text.slice(0, slash)
  return `${addr}/${isIPv4(addr) ? cidr.prefix - 96 : cidr.prefix}`
}
