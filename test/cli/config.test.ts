/**
 * The configuration table: what each layer accepts, what it refuses (with the message a person reads),
 * the order of the layers, and the safety rule (no non-loopback listener without an explicit --allow).
 */
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { defaultLimits } from "../../src/core/limits.ts"
import { checkSafety, ConfigError, type ConfigInputs, type HctunnelConfig, loadConfig } from "../../src/cli/config.ts"
import { parseDurationMs } from "../../src/cli/parsers.ts"
import { envName, settings } from "../../src/cli/settings.ts"
import { checkNodeVersion } from "../../src/cli/node-version.ts"

const load = (inputs: Partial<ConfigInputs>): { ok: true; config: HctunnelConfig } | { ok: false; problems: ReadonlyArray<string> } => {
  const exit = Effect.runSyncExit(loadConfig({ flags: {}, env: {}, ...inputs }).pipe(Effect.flatMap(checkSafety)))
  if (Exit.isSuccess(exit)) return { ok: true, config: exit.value }
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || !(error.error instanceof ConfigError)) throw new Error(`unexpected failure: ${String(exit.cause)}`)
  return { ok: false, problems: error.error.problems }
}
const good = (inputs: Partial<ConfigInputs>): HctunnelConfig => {
  const r = load(inputs)
  if (!r.ok) throw new Error(`expected a valid configuration, got:\n${r.problems.join("\n")}`)
  return r.config
}
const problems = (inputs: Partial<ConfigInputs>): ReadonlyArray<string> => {
  const r = load(inputs)
  if (r.ok) throw new Error(`expected a configuration error, got ${JSON.stringify(r.config)}`)
  return r.problems
}
const file = (value: unknown, name = "hctunnel.json") => ({ name, text: typeof value === "string" ? value : JSON.stringify(value) })

describe("defaults", () => {
  it("are safe and complete", () => {
    const c = good({})
    expect(c.listen).toEqual([{ host: "127.0.0.1", port: 8888 }])
    expect(c.allow).toEqual(["127.0.0.0/8", "::1/128"])
    expect(c.allowExplicit).toBe(false)
    expect(c.workers).toBeGreaterThanOrEqual(1)
    expect(c.workers).toBeLessThanOrEqual(64)
    expect(c.graceMs).toBe(10_000)
    expect(c.logFormat).toBe("text")
    expect(c.logLevel).toBe("info")
    expect(c.via).toBe("hctunnel")
    expect(c.statsIntervalMs).toBe(10_000)
    expect(c.hosts).toEqual({})
    expect(c.limits).toEqual(defaultLimits)
  })

  it("every Limits field is a setting with a flag and an env var", () => {
    for (const key of Object.keys(defaultLimits)) {
      const s = settings.find((x) => x.key === key)
      expect(s, key).toBeDefined()
      expect(s?.env).toBe(envName(key))
    }
    expect(envName("keepAliveTimeout")).toBe("HCTUNNEL_KEEP_ALIVE_TIMEOUT")
  })
})

describe("good values", () => {
  const cases: ReadonlyArray<readonly [string, Partial<ConfigInputs>, (c: HctunnelConfig) => unknown, unknown]> = [
    ["--port sets the port of the default address", { flags: { port: "9000" } }, (c) => c.listen, [{ host: "127.0.0.1", port: 9000 }]],
    ["--port 0 (a free port)", { flags: { port: "0" } }, (c) => c.listen[0]?.port, 0],
    [
      "repeated --listen, IPv6 in brackets",
      { flags: { listen: ["127.0.0.1:1", "[::1]:2"] } },
      (c) => c.listen,
      [
        { host: "127.0.0.1", port: 1 },
        { host: "::1", port: 2 },
      ],
    ],
    [
      "--port applies to every --listen",
      { flags: { listen: ["127.0.0.1:1", "[::1]:2"], port: "3" } },
      (c) => c.listen.map((a) => a.port),
      [3, 3],
    ],
    ["HCTUNNEL_LISTEN is comma-separated", { env: { HCTUNNEL_LISTEN: "127.0.0.1:5, [::1]:6" } }, (c) => c.listen.length, 2],
    ["--workers 4", { flags: { workers: "4" } }, (c) => c.workers, 4],
    ["duration with unit: 10s", { flags: { idleTimeout: "10s" } }, (c) => c.limits.idleTimeout, 10_000],
    ["duration in words: 10 seconds", { flags: { idleTimeout: "10 seconds" } }, (c) => c.limits.idleTimeout, 10_000],
    ["duration as bare milliseconds", { flags: { connectTimeout: "2500" } }, (c) => c.limits.connectTimeout, 2500],
    ["duration as a JSON number (ms)", { file: file({ headTimeout: 1500 }) }, (c) => c.limits.headTimeout, 1500],
    ["duration in minutes", { env: { HCTUNNEL_KEEP_ALIVE_TIMEOUT: "2m" } }, (c) => c.limits.keepAliveTimeout, 120_000],
    ["size with KiB", { flags: { maxHeadBytes: "128KiB" } }, (c) => c.limits.maxHeadBytes, 131_072],
    ["size as a JSON number", { file: file({ maxBufferedBytes: 4096 }) }, (c) => c.limits.maxBufferedBytes, 4096],
    ["--shutdown-grace 0 (close at once)", { flags: { shutdownGrace: "0" } }, (c) => c.graceMs, 0],
    ["log level is case-insensitive", { flags: { logLevel: "DEBUG" } }, (c) => c.logLevel, "debug"],
    ["a bare address in --allow becomes a /32", { flags: { allow: ["192.168.1.5"] } }, (c) => c.allow, ["192.168.1.5/32"]],
    ["IPv6 CIDR in --allow", { flags: { allow: ["fd00::/8", "::1/128"] } }, (c) => c.allow, ["fd00::/8", "::1/128"]],
    [
      "--hosts name=address, repeated",
      { flags: { hosts: ["a.test=127.0.0.1", "B.test=::1"] } },
      (c) => c.hosts,
      { "a.test": "127.0.0.1", "b.test": "::1" },
    ],
    ["hosts as a JSON object", { file: file({ hosts: { "o.test": "127.0.0.2" } }) }, (c) => c.hosts, { "o.test": "127.0.0.2" }],
    ["--via token", { flags: { via: "edge-1" } }, (c) => c.via, "edge-1"],
    ["no --dns-server: the system's", {}, (c) => c.dnsServers, []],
    [
      "--dns-server, repeated, with and without ports",
      { flags: { dnsServers: ["127.0.0.1:5353", "::1", "[::1]:53", "127.0.0.2"] } },
      (c) => c.dnsServers,
      ["127.0.0.1:5353", "::1", "[::1]:53", "127.0.0.2"],
    ],
    [
      "HCTUNNEL_DNS_SERVER comma-separated",
      { env: { HCTUNNEL_DNS_SERVER: "127.0.0.1:5353, 127.0.0.2" } },
      (c) => c.dnsServers,
      ["127.0.0.1:5353", "127.0.0.2"],
    ],
    ["dnsServers as a JSON array", { file: file({ dnsServers: ["[::1]:5353"] }) }, (c) => c.dnsServers, ["[::1]:5353"]],
  ]
  for (const [name, inputs, pick, expected] of cases) {
    it(name, () => expect(pick(good(inputs))).toEqual(expected))
  }
})

describe("bad values: the message names the source, the value, what is wrong and what is allowed", () => {
  const cases: ReadonlyArray<readonly [string, Partial<ConfigInputs>, RegExp]> = [
    ["--port 70000", { flags: { port: "70000" } }, /^--port 70000: "70000" is not a valid port: expected an integer from 0 to 65535$/],
    ["--port abc", { flags: { port: "abc" } }, /^--port abc: "abc" is not a valid port: expected an integer from 0 to 65535$/],
    ["--workers 0", { flags: { workers: "0" } }, /^--workers 0: .*expected an integer from 1 to 64$/],
    ["--workers 100 from the env", { env: { HCTUNNEL_WORKERS: "100" } }, /^HCTUNNEL_WORKERS=100: .*expected an integer from 1 to 64$/],
    [
      "a duration without sense",
      { flags: { idleTimeout: "soon" } },
      /^--idle-timeout soon: "soon" is not a duration: expected .*"10s".*milliseconds$/,
    ],
    ["a duration with an unknown unit", { flags: { connectTimeout: "10 fortnights" } }, /is not a duration/],
    [
      "a duration out of range",
      { flags: { connectTimeout: "2h" } },
      /^--connect-timeout 2h: "2h" is out of range: expected a duration from 1ms to 1h$/,
    ],
    [
      "a listen address without port",
      { flags: { listen: ["127.0.0.1"] } },
      /^--listen 127.0.0.1: "127.0.0.1" is not a listen address: expected host:port/,
    ],
    ["a listen address with a name", { flags: { listen: ["example.com:80"] } }, /is not an IP address/],
    [
      "a bad log level",
      { flags: { logLevel: "loud" } },
      /^--log-level loud: "loud" is not allowed: expected one of debug, info, warn, error, none$/,
    ],
    [
      "a bad log format",
      { env: { HCTUNNEL_LOG_FORMAT: "xml" } },
      /^HCTUNNEL_LOG_FORMAT=xml: "xml" is not allowed: expected one of text, json$/,
    ],
    ["a CIDR with a bad prefix", { flags: { allow: ["10.0.0.0/33"] } }, /^--allow 10.0.0.0\/33: .*prefix length must be 0..32/],
    ["not a CIDR", { flags: { allow: ["everyone"] } }, /"everyone" is not a CIDR/],
    [
      "a size too small",
      { flags: { maxHeadBytes: "10" } },
      /^--max-head-bytes 10: "10" is out of range: expected a size from 1 KiB to 16 MiB$/,
    ],
    ["a via with a space", { flags: { via: "my proxy" } }, /Via pseudonym must be an HTTP token/],
    ["a host mapping to a name", { flags: { hosts: ["a.test=b.test"] } }, /is not a host mapping/],
    [
      "a DNS server given by name",
      { flags: { dnsServers: ["dns.example:53"] } },
      /^--dns-server dns.example:53: "dns.example:53" is not a DNS server: expected an IP address .*\(a name is not allowed\)$/,
    ],
    [
      "a DNS server port out of range",
      { flags: { dnsServers: ["127.0.0.1:0"] } },
      /^--dns-server 127.0.0.1:0: "0" is not a valid port: expected an integer from 1 to 65535$/,
    ],
    [
      "a DNS server from the env",
      { env: { HCTUNNEL_DNS_SERVER: "127.0.0.1:70000" } },
      /^HCTUNNEL_DNS_SERVER=127.0.0.1:70000: .*expected an integer from 1 to 65535$/,
    ],
    [
      "a wrong JSON type in the file",
      { file: file({ workers: "many" }) },
      /^hctunnel.json: "workers": "many": "many" is not a valid number of workers/,
    ],
    [
      "an unknown key in the file",
      { file: file({ idle_timeout: "5s" }) },
      /^hctunnel.json: unknown key "idle_timeout" \(did you mean "idleTimeout"\?\); known keys: listen, /,
    ],
    ["bad JSON, with the file name", { file: file('{"workers": 2,', "my.json") }, /^my.json is not valid JSON: /],
    ["a JSON array instead of an object", { file: file([1, 2], "list.json") }, /^list.json must hold a JSON object/],
  ]
  for (const [name, inputs, expected] of cases) {
    it(name, () => {
      const p = problems(inputs)
      expect(p).toHaveLength(1)
      expect(p[0]).toMatch(expected)
    })
  }

  it("reports every problem at once", () => {
    const p = problems({ flags: { port: "70000", workers: "0" }, env: { HCTUNNEL_LOG_LEVEL: "loud" }, file: file({ nope: 1 }) })
    expect(p).toHaveLength(4)
    expect(p.join("\n")).toMatch(/--port 70000/)
    expect(p.join("\n")).toMatch(/--workers 0/)
    expect(p.join("\n")).toMatch(/HCTUNNEL_LOG_LEVEL=loud/)
    expect(p.join("\n")).toMatch(/unknown key "nope"/)
  })

  it("the error message says 'invalid configuration' and lists the problems", () => {
    const e = new ConfigError({ reason: "invalid", problems: ["a", "b"] })
    expect(e.message).toBe("invalid configuration:\n  - a\n  - b")
  })
})

describe("layering: flag > env > file > default, per key", () => {
  const f = file({ workers: 3, via: "from-file", idleTimeout: "3s", logFormat: "json" })
  const env = { HCTUNNEL_WORKERS: "2", HCTUNNEL_VIA: "from-env", HCTUNNEL_IDLE_TIMEOUT: "2s" }

  it("a flag beats the env and the file", () => {
    const c = good({ flags: { workers: "1", via: "from-flag" }, env, file: f })
    expect(c.workers).toBe(1)
    expect(c.via).toBe("from-flag")
  })
  it("the env beats the file where no flag is given", () => {
    const c = good({ flags: { workers: "1" }, env, file: f })
    expect(c.via).toBe("from-env")
    expect(c.limits.idleTimeout).toBe(2000)
  })
  it("the file beats the default where neither flag nor env is given", () => {
    const c = good({ env, file: f })
    expect(c.logFormat).toBe("json")
  })
  it("the default fills what no layer gives", () => {
    const c = good({ env, file: f })
    expect(c.logLevel).toBe("info")
    expect(c.limits.connectTimeout).toBe(defaultLimits.connectTimeout)
  })
  it("an empty env var counts as unset", () => {
    expect(good({ env: { HCTUNNEL_VIA: "" }, file: f }).via).toBe("from-file")
  })
  it("a bad value in a lower layer is ignored when a higher layer sets the key", () => {
    expect(good({ flags: { workers: "2" }, env: { HCTUNNEL_WORKERS: "zero" } }).workers).toBe(2)
  })
})

describe("safety: never an open proxy by accident", () => {
  it("refuses a non-loopback listener when allow was not set, and explains --allow", () => {
    const p = problems({ flags: { listen: ["0.0.0.0:3128"] } })
    expect(p).toHaveLength(1)
    expect(p[0]).toMatch(/refusing to listen on 0\.0\.0\.0:3128 \(not a loopback address\)/)
    expect(p[0]).toMatch(/--allow 10\.0\.0\.0\/8/)
    expect(p[0]).toMatch(/HCTUNNEL_ALLOW/)
  })
  it("refuses an IPv6 wildcard too", () => {
    expect(problems({ file: file({ listen: ["[::]:3128"] }) })[0]).toMatch(/refusing to listen on \[::\]:3128/)
  })
  it("accepts it once allow is given on any layer", () => {
    expect(good({ flags: { listen: ["0.0.0.0:3128"], allow: ["10.0.0.0/8"] } }).allow).toEqual(["10.0.0.0/8"])
    expect(good({ flags: { listen: ["0.0.0.0:3128"] }, env: { HCTUNNEL_ALLOW: "10.0.0.0/8,fd00::/8" } }).allow).toEqual([
      "10.0.0.0/8",
      "fd00::/8",
    ])
    expect(good({ file: file({ listen: ["0.0.0.0:3128"], allow: ["0.0.0.0/0"] }) }).allowExplicit).toBe(true)
  })
  it("loopback listeners need no allow", () => {
    expect(good({ flags: { listen: ["127.0.0.2:3128", "[::1]:3128"] } }).allowExplicit).toBe(false)
  })
  it("trusting PROXY protocol exposes even a loopback listener: it needs allow or --auth-file too (issue 17, item 3)", () => {
    const p = problems({ flags: { proxyProtocolFrom: ["127.0.0.1"] } })
    expect(p).toHaveLength(1)
    expect(p[0]).toMatch(/refusing to trust PROXY protocol headers from 127\.0\.0\.1\/32 .*without an explicit client allow-list/)
    expect(p[0]).toMatch(/--allow 10\.0\.0\.0\/8/)
    expect(good({ flags: { proxyProtocolFrom: ["127.0.0.1"], allow: ["10.0.0.0/8"] } }).allow).toEqual(["10.0.0.0/8"])
  })
})

describe("helpers", () => {
  it("parseDurationMs", () => {
    expect(parseDurationMs("250ms")).toBe(250)
    expect(parseDurationMs("1.5s")).toBe(1500)
    expect(parseDurationMs("1h")).toBe(3_600_000)
    expect(parseDurationMs(42)).toBe(42)
    expect(parseDurationMs("-1s")).toBeUndefined()
    expect(parseDurationMs("")).toBeUndefined()
  })
  it("checkNodeVersion", () => {
    expect(checkNodeVersion("24.21.0")).toBeUndefined()
    expect(checkNodeVersion("22.19.0")).toBeUndefined()
    expect(checkNodeVersion("v22.12.0")).toMatch(/needs Node\.js 22\.19 or newer .*this is Node\.js v22\.12\.0/)
    expect(checkNodeVersion("20.20.2")).toMatch(/SO_REUSEPORT/)
  })
})

describe("admin endpoint settings", () => {
  it('is off by default; --admin, HCTUNNEL_ADMIN and "admin" turn it on', () => {
    expect(good({}).admin).toBeUndefined()
    expect(good({}).adminAllow).toEqual(["127.0.0.0/8", "::1/128"])
    expect(good({ flags: { admin: "127.0.0.1:9090" } }).admin).toEqual({ host: "127.0.0.1", port: 9090 })
    expect(good({ env: { HCTUNNEL_ADMIN: "[::1]:0" } }).admin).toEqual({ host: "::1", port: 0 })
    expect(good({ file: file({ admin: "localhost:9100" }) }).admin).toEqual({ host: "127.0.0.1", port: 9100 })
  })
  it("a bad address names where it came from", () => {
    expect(problems({ flags: { admin: "9090" } })[0]).toMatch(/^--admin 9090: .*host:port/)
  })
  it("a non-loopback admin address needs its own allow list (--allow is not enough)", () => {
    const p = problems({ flags: { admin: "0.0.0.0:9090", allow: ["10.0.0.0/8"] } })
    expect(p).toHaveLength(1)
    expect(p[0]).toMatch(/refusing to serve the admin endpoint on 0\.0\.0\.0:9090 .*--admin-allow .*HCTUNNEL_ADMIN_ALLOW/)
    const c = good({ flags: { admin: "0.0.0.0:9090", adminAllow: ["10.0.0.5"] } })
    expect(c.adminAllow).toEqual(["10.0.0.5/32"])
    expect(c.adminAllowExplicit).toBe(true)
  })
})

describe("proxyProtocolFrom (PROXY protocol sources)", () => {
  it("is off by default", () => expect(good({}).proxyProtocolFrom).toEqual([]))
  it("is read from repeated flags, a comma-separated env var and a file array", () => {
    // With PROXY protocol the clients are remote: the safety rule wants an explicit --allow (above).
    const allow = ["10.0.0.0/8"]
    expect(good({ flags: { proxyProtocolFrom: ["10.0.0.5", "fd00::/8"], allow } }).proxyProtocolFrom).toEqual(["10.0.0.5/32", "fd00::/8"])
    expect(good({ flags: { allow }, env: { HCTUNNEL_PROXY_PROTOCOL_FROM: "10.0.0.0/24, 10.1.0.0/24" } }).proxyProtocolFrom).toEqual([
      "10.0.0.0/24",
      "10.1.0.0/24",
    ])
    expect(good({ file: file({ proxyProtocolFrom: ["127.0.0.1/32"], allow }) }).proxyProtocolFrom).toEqual(["127.0.0.1/32"])
  })
  it("names the flag and the value when a CIDR is bad", () => {
    expect(problems({ flags: { proxyProtocolFrom: ["haproxy.internal"] } })[0]).toMatch(
      /^--proxy-protocol-from haproxy.internal: "haproxy.internal" is not a CIDR/,
    )
    expect(problems({ env: { HCTUNNEL_PROXY_PROTOCOL_FROM: "10.0.0.1/8" } })[0]).toMatch(
      /^HCTUNNEL_PROXY_PROTOCOL_FROM=10.0.0.1\/8: .*host bits/,
    )
  })
})

describe("CIDRs with host bits", () => {
  it("are refused with the flag's name for allow and adminAllow too (the workers would not take them)", () => {
    expect(problems({ flags: { allow: ["10.0.0.1/8"] } })[0]).toMatch(/^--allow 10.0.0.1\/8: .*host bits.*did you mean 10.0.0.0\/8\?/)
    expect(problems({ flags: { adminAllow: ["192.168.1.1/24"] } })[0]).toMatch(/^--admin-allow 192.168.1.1\/24: .*host bits/)
  })
})
