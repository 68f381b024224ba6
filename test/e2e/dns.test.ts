/**
 * DNS of the real proxy (issue 9 §4), against a DNS server this test starts on 127.0.0.1
 * (support/dns.ts, given with --dns-server): the system's servers are never asked.
 *
 * - Starvation: while lookups of names whose server never answers hang, a name the server answers
 *   and a name in --hosts still get through (asserted while the hanging ones are still pending; no
 *   timing threshold), and the hanging ones end in 502/504.
 * - Happy Eyeballs: a name answering AAAA ::1 (nothing listens there) and A 127.0.0.1 (the origin)
 *   still reaches its origin.
 * - A bad --dns-server is one line naming the flag, exit 1.
 */
import { spawnSync } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startDnsServer, type TestDnsServer } from "./support/dns.ts"
import { type HttpOrigin, startHttpOrigin } from "./support/origins.ts"
import { cleanEnv } from "./support/env.ts"
import { CLI, type Proxy, ROOT, startProxy } from "./support/proxy.ts"
import { Conn, get, openTunnel, until } from "./support/wire.ts"

const HANGING = ["hang1.test", "hang2.test", "hang3.test", "hang4.test", "hang5.test", "hang6.test"]

let dns: TestDnsServer
let origin: HttpOrigin
let proxy: Proxy

beforeAll(async () => {
  ;[dns, origin] = await Promise.all([
    startDnsServer({
      ...Object.fromEntries(HANGING.map((name) => [name, "never" as const])),
      "fast.test": { addresses: ["127.0.0.1"] },
      "dual.test": { addresses: ["::1", "127.0.0.1"] },
    }),
    startHttpOrigin("dns"),
  ])
  // One worker: every lookup shares its resolver, as the four libuv threads were shared before.
  // connectTimeout 6 s: the resolver gives a silent server two tries of 2 s, then 502.
  proxy = await startProxy({
    workers: 1,
    connectTimeoutMs: 6_000,
    extraArgs: ["--dns-server", dns.address, "--hosts", "mapped.test=127.0.0.1"],
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([dns?.close(), origin?.close()])
})

/** GET /small of the origin by `name` through the proxy, on a new connection. */
const fetchSmall = async (name: string, timeoutMs = 20_000) => {
  const c = await Conn.open(proxy.port)
  try {
    await c.write(get(`http://${name}:${origin.port}/small`))
    return await c.readResponse({ timeoutMs })
  } finally {
    c.destroy()
  }
}

describe("DNS through the real proxy", () => {
  it("names that hang do not starve the others: answered and --hosts names connect while they hang", async () => {
    let settled = 0
    const hanging = HANGING.map((name) =>
      fetchSmall(name).then((r) => {
        settled++
        return r.status
      }),
    )
    // Every hanging name is being asked (both families) before the others start.
    await until("the DNS server to be asked every hanging name", () => HANGING.every((name) => dns.questions.some((q) => q.name === name)))

    const fast = await fetchSmall("fast.test")
    const mapped = await fetchSmall("mapped.test")
    const tunnel = await openTunnel(proxy.port, `fast.test:${origin.port}`)
    tunnel.destroy()
    expect(fast.status).toBe(200)
    expect(fast.body.toString()).toBe("hello from dns\n")
    expect(mapped.status).toBe(200)
    expect(settled).toBe(0) // the hanging lookups are still pending

    const statuses = await Promise.all(hanging)
    for (const status of statuses) expect([502, 504]).toContain(status)
  })

  it("Happy Eyeballs: AAAA ::1 has no listener, A 127.0.0.1 has the origin: the request succeeds", async () => {
    const r = await fetchSmall("dual.test")
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe("hello from dns\n")
    expect(
      dns.questions
        .filter((q) => q.name === "dual.test")
        .map((q) => q.type)
        .sort(),
    ).toEqual(["A", "AAAA"])
  })

  it("a name the server does not know gets 502 'could not resolve'", async () => {
    const r = await fetchSmall("unknown.test")
    expect(r.status).toBe(502)
    expect(r.body.toString()).toContain("could not resolve host")
  })
})

describe("--dns-server validation", () => {
  it.each([
    [["--dns-server", "dns.example"], /--dns-server dns\.example: .*is not a DNS server.*a name is not allowed/],
    [["--dns-server", "127.0.0.1:70000"], /--dns-server 127\.0\.0\.1:70000: .*expected an integer from 1 to 65535/],
  ])("%j is one line naming the flag, exit 1", (args, message) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: cleanEnv(), encoding: "utf8", timeout: 20_000 })
    expect(r.status).toBe(1)
    const [first, ...rest] = r.stderr.trim().split("\n")
    expect(first).toMatch(message) // the error in one line, then only the pointer to --help
    expect(rest).toEqual(["(see hctunnel --help)"])
    expect(r.stdout).not.toMatch(/listening/)
  })
})
