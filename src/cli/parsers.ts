/**
 * The value parsers of the configuration: a raw input (a string from a flag or an env var, or a JSON
 * value from the config file) -> the typed value, or a message saying what was wrong and what is allowed.
 *
 * Owns the syntax of every kind of value (integers, durations, sizes, choices, listen addresses, CIDRs,
 * host maps, DNS servers, destination rules) and the words of their error messages, which the tests
 * compare byte for byte. It never knows which setting a value belongs to nor where it came from (the
 * loader in config.ts prefixes that), and does no IO.
 */
import { isIP } from "node:net"
import { hostPort } from "../runtime/access/Peer.ts"
import type { ListenAddress } from "../runtime/protocol.ts"
import { parseRule, splitRules } from "../runtime/dial/DestinationRules.ts"
import { CidrError, normalizeCidr } from "../runtime/access/Cidr.ts"

/** Either the parsed value or a message saying what was wrong and what is allowed. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string }
export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
export const bad = (message: string): Parsed<never> => ({ ok: false, message })

export const show = (u: unknown): string => (typeof u === "string" ? JSON.stringify(u) : String(JSON.stringify(u) ?? u))

export const integer =
  (min: number, max: number, what: string) =>
  (u: unknown): Parsed<number> => {
    const n = typeof u === "number" ? u : typeof u === "string" && /^\s*-?\d+\s*$/.test(u) ? Number(u) : Number.NaN
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      return bad(`${show(u)} is not a valid ${what}: expected an integer from ${min} to ${max}`)
    }
    return ok(n)
  }

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  milli: 1,
  millis: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
}

/** "10s", "10 seconds", "1.5m", "250ms", or a bare number of milliseconds ("10000" or 10000). */
export const parseDurationMs = (u: unknown): number | undefined => {
  if (typeof u === "number") return Number.isFinite(u) && u >= 0 ? Math.round(u) : undefined
  if (typeof u !== "string") return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(u)
  if (m === null) return undefined
  const unit = (m[2] ?? "").toLowerCase()
  const factor = unit === "" ? 1 : DURATION_UNITS[unit]
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor)
}

export const formatDurationMs = (ms: number): string =>
  ms % 3_600_000 === 0 && ms > 0
    ? `${ms / 3_600_000}h`
    : ms % 60_000 === 0 && ms > 0
      ? `${ms / 60_000}m`
      : ms % 1000 === 0 && ms > 0
        ? `${ms / 1000}s`
        : `${ms}ms`

export const duration =
  (minMs: number, maxMs: number) =>
  (u: unknown): Parsed<number> => {
    const ms = parseDurationMs(u)
    if (ms === undefined) {
      return bad(
        `${show(u)} is not a duration: expected a number with a unit such as "250ms", "10s", "10 seconds", "5m", "1h", or a plain number of milliseconds`,
      )
    }
    if (ms < minMs || ms > maxMs) {
      return bad(`${show(u)} is out of range: expected a duration from ${formatDurationMs(minMs)} to ${formatDurationMs(maxMs)}`)
    }
    return ok(ms)
  }

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 * 1024,
  mb: 1024 * 1024,
  mib: 1024 * 1024,
}
export const formatBytes = (n: number): string =>
  n % (1024 * 1024) === 0 && n > 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 && n > 0 ? `${n / 1024} KiB` : `${n} bytes`

export const size =
  (min: number, max: number) =>
  (u: unknown): Parsed<number> => {
    let n: number | undefined
    if (typeof u === "number") n = u
    else if (typeof u === "string") {
      const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(u)
      const factor = m === null ? undefined : SIZE_UNITS[(m[2] ?? "").toLowerCase()]
      if (m !== null && factor !== undefined) n = Number(m[1]) * factor
    }
    if (n === undefined || !Number.isSafeInteger(n)) {
      return bad(`${show(u)} is not a size: expected a number of bytes, optionally with a KiB or MiB suffix (e.g. 65536 or "64KiB")`)
    }
    if (n < min || n > max) return bad(`${show(u)} is out of range: expected a size from ${formatBytes(min)} to ${formatBytes(max)}`)
    return ok(n)
  }

export const choice =
  <const L extends string>(choices: ReadonlyArray<L>) =>
  (u: unknown): Parsed<L> => {
    const s = typeof u === "string" ? u.trim().toLowerCase() : undefined
    const found = choices.find((c) => c === s)
    return found !== undefined ? ok(found) : bad(`${show(u)} is not allowed: expected one of ${choices.join(", ")}`)
  }

/** "host:port", "[v6]:port", ":port" (all interfaces is NOT implied: ":port" means 127.0.0.1). */
export const parseListen = (u: unknown): Parsed<ListenAddress> => {
  if (typeof u !== "string") return bad(`${show(u)} is not a listen address: expected a string such as "127.0.0.1:8888" or "[::1]:8888"`)
  const s = u.trim()
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]*):(\d+)$/.exec(s)
  if (m === null) {
    return bad(
      `${show(u)} is not a listen address: expected host:port such as "127.0.0.1:8888", "0.0.0.0:3128" or "[::1]:8888" (IPv6 in brackets)`,
    )
  }
  const host = m[1] === "" || m[1] === undefined ? "127.0.0.1" : m[1]
  if (isIP(host) === 0 && host !== "localhost") {
    return bad(`${show(u)}: ${JSON.stringify(host)} is not an IP address: use a numeric IPv4/IPv6 address (or "localhost")`)
  }
  const port = integer(0, 65535, "port")(m[2])
  if (!port.ok) return bad(`${show(u)}: ${port.message}`)
  return ok({ host: host === "localhost" ? "127.0.0.1" : host, port: port.value })
}

export const formatListen = (a: ListenAddress): string => hostPort(a.host, a.port)

/**
 * "10.0.0.0/8", "::1/128", or a single address ("192.168.1.5" -> "192.168.1.5/32"), checked by the parser the
 * worker uses (src/runtime/access/Cidr.ts), so a value accepted here never fails in a worker.
 */
export const parseCidr = (u: unknown): Parsed<string> => {
  if (typeof u !== "string") return bad(`${show(u)} is not a CIDR: expected a string such as "10.0.0.0/8" or "::1/128"`)
  try {
    return ok(normalizeCidr(u))
  } catch (e) {
    if (!(e instanceof CidrError)) throw e
    return bad(`${show(u)} is not a CIDR: ${e.reason}${e.suggestion === undefined ? "" : `: did you mean ${e.suggestion}?`}`)
  }
}

const VIA_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/
export const viaToken = (u: unknown): Parsed<string> =>
  typeof u === "string" && VIA_TOKEN.test(u)
    ? ok(u)
    : bad(
        `${show(u)} is not allowed: the Via pseudonym must be an HTTP token of 1 to 64 characters (letters, digits, and !#$%&'*+-.^_\`|~)`,
      )

/** A file path: a non-empty string (whether the file is usable is checked when it is read). */
export const filePath = (u: unknown): Parsed<string> =>
  typeof u === "string" && u.trim() !== "" ? ok(u.trim()) : bad(`${show(u)} is not a file path: expected a non-empty string`)

/**
 * A module to import: a file path (relative paths are resolved against the working directory when the
 * proxy starts) or a `file:` or `data:` URL. Kept as written.
 */
export const moduleSpecifier = (u: unknown): Parsed<string> => {
  if (typeof u !== "string" || u.trim() === "") return bad(`${show(u)} is not a module: expected a file path or a file: URL`)
  const text = u.trim()
  // A scheme of two letters or more (a Windows drive letter, C:\, is a path).
  if (/^[a-z][a-z0-9+.-]+:/i.test(text)) {
    let url: URL
    try {
      url = new URL(text)
    } catch {
      return bad(`${show(u)} is not a valid URL`)
    }
    if (url.protocol !== "file:" && url.protocol !== "data:")
      return bad(`${show(u)}: only file: and data: URLs can be imported by the workers`)
  }
  return ok(text)
}

/** A list from a JSON array, or from a comma-separated string (env var / flag). */
export const list =
  <T>(item: (u: unknown) => Parsed<T>, min: number) =>
  (u: unknown): Parsed<ReadonlyArray<T>> => {
    const items = Array.isArray(u)
      ? (u as ReadonlyArray<unknown>)
      : typeof u === "string"
        ? u
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "")
        : undefined
    if (items === undefined) return bad(`${show(u)} is not a list: expected a JSON array or comma-separated values`)
    if (items.length < min) return bad(`the list is empty: at least ${min} value${min === 1 ? " is" : "s are"} needed`)
    const out: Array<T> = []
    for (const i of items) {
      const r = item(i)
      if (!r.ok) return r
      out.push(r.value)
    }
    return ok(out)
  }

/** `{ "name": "address" }` from JSON, or "name=address,name2=address2" from a flag/env var. */
export const hostMap = (u: unknown): Parsed<Readonly<Record<string, string>>> => {
  const pairs: Array<readonly [unknown, unknown]> =
    typeof u === "string"
      ? u
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
          .map((p) => {
            const eq = p.indexOf("=")
            return eq === -1 ? ([p, undefined] as const) : ([p.slice(0, eq).trim(), p.slice(eq + 1).trim()] as const)
          })
      : typeof u === "object" && u !== null
        ? Object.entries(u)
        : [[u, undefined]]
  const out: Record<string, string> = {}
  for (const [name, addr] of pairs) {
    if (typeof name !== "string" || name === "" || typeof addr !== "string" || isIP(addr) === 0) {
      return bad(
        `${show(typeof name === "string" && typeof addr === "string" ? `${name}=${addr}` : u)} is not a host mapping: expected name=address with a numeric IP address, e.g. "origin.test=127.0.0.1"`,
      )
    }
    out[name.toLowerCase()] = addr
  }
  return ok(out)
}

/**
 * A DNS server: "IP", "IP:PORT" or "[v6]:PORT" (a bare IPv6 address has no port). Only IP literals:
 * a name would need DNS to find DNS. Normalised to what `dns.Resolver#setServers` takes.
 */
export const parseDnsServer = (u: unknown): Parsed<string> => {
  const expected = `expected an IP address with an optional port, such as "127.0.0.1", "127.0.0.1:5353" or "[::1]:5353"`
  if (typeof u !== "string") return bad(`${show(u)} is not a DNS server: ${expected}`)
  const s = u.trim()
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(s)
  const host = m === null ? s : m[1]!
  const portText = m === null ? undefined : m[2]
  if (isIP(host) === 0) return bad(`${show(u)} is not a DNS server: ${expected} (a name is not allowed)`)
  if (portText === undefined) return ok(host)
  const port = integer(1, 65535, "port")(portText)
  if (!port.ok) return bad(`${show(u)}: ${port.message}`)
  return ok(isIP(host) === 6 ? `[${host}]:${port.value}` : `${host}:${port.value}`)
}

/**
 * Destination rules (`--allow-to`, `--deny-to`): a JSON array holds one rule per item; a string (an env
 * var, or repeated flags joined with commas) is split where a new rule starts, since port lists have
 * commas too (`10.0.0.0/8:80,443,*:25` is two rules). Each rule is checked by DestinationPolicy's parser.
 */
export const destinationRules = (u: unknown): Parsed<ReadonlyArray<string>> => {
  const items = Array.isArray(u) ? (u as ReadonlyArray<unknown>) : typeof u === "string" ? splitRules(u) : undefined
  if (items === undefined) return bad(`${show(u)} is not a list of rules: expected a JSON array or comma-separated rules such as "*:25"`)
  const out: Array<string> = []
  for (const item of items) {
    if (typeof item !== "string") return bad(`${show(item)} is not a destination rule: expected a string such as "10.0.0.0/8:22"`)
    try {
      out.push(parseRule(item).text)
    } catch (e) {
      return bad(e instanceof Error ? e.message : String(e))
    }
  }
  return ok(out)
}
