/**
 * Proxy authentication (--auth-file), end to end: the built proxy, a user file made by the real
 * `htpasswd -B`, and real clients (curl, undici's ProxyAgent, Python requests), for plain HTTP and
 * CONNECT. Every origin is on loopback; the TLS origin is reached as 127.0.0.1 (its certificate names it).
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, unlinkSync } from "node:fs"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fetch, ProxyAgent } from "undici"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Cert, makeCert } from "./support/cert.ts"
import { type Closable, type EchoBody, type HttpOrigin, startHttpOrigin, startTlsOrigin } from "./support/origins.ts"
import { type Proxy, startProxy } from "./support/proxy.ts"
import { curl, run } from "./support/run.ts"
import { Conn } from "./support/wire.ts"

const HTPASSWD = "/usr/bin/htpasswd"
/** A user file entry made by the real htpasswd (bcrypt; cost 5 keeps the suite quick). */
const addUser = (file: string, user: string, password: string, create = false): void => {
  execFileSync(HTPASSWD, [create ? "-bBc" : "-bB", "-C", "5", file, user, password], { stdio: "ignore" })
}

let dir: string
let usersFile: string
let proxy: Proxy
let origin: HttpOrigin
let tls: Closable
let cert: Cert

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hctunnel-auth-"))
  usersFile = join(dir, "users.htpasswd")
  addUser(usersFile, "alice", "wonder land", true)
  addUser(usersFile, "bob", "builder")
  // Cost 14: a verification takes about a second, long enough to see whether it blocks the worker.
  execFileSync(HTPASSWD, ["-bB", "-C", "14", usersFile, "slow", "poke"], { stdio: "ignore" })
  cert = await makeCert()
  ;[origin, tls, proxy] = await Promise.all([
    startHttpOrigin("a"),
    startTlsOrigin(cert.key, cert.cert),
    // One worker: the cache and the counters under test are per worker.
    startProxy({ workers: 1, graceMs: 2000, extraArgs: ["--auth-file", usersFile] }),
  ])
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([origin?.close(), tls?.close()])
  await cert?.remove()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const o = (path: string): string => `http://127.0.0.1:${origin.port}${path}`
const status = async (args: ReadonlyArray<string>): Promise<string> => {
  const r = await curl(proxy.url, ["-o", "/dev/null", "-w", "%{http_code}", ...args])
  return r.stdout.toString()
}

/** The next stats line (SIGUSR1 prints one at once), as numbers by name. */
const stats = async (p: Proxy): Promise<Record<string, number>> => {
  const before = p.stdout.length
  process.kill(p.pid, "SIGUSR1")
  const line = await p.waitForLine((l) => / stats pid=/.test(l) && p.stdout.lastIndexOf(l) >= before)
  const out: Record<string, number> = {}
  for (const m of line.matchAll(/ (\w+)=(\d+)(?= |$)/g)) out[m[1]!] = Number(m[2])
  return out
}

describe("curl --proxy-user", () => {
  it("407 with the Basic challenge without credentials, for plain HTTP and CONNECT", async () => {
    const r = await curl(proxy.url, ["-i", o("/small?none")])
    const text = r.stdout.toString()
    expect(text).toMatch(/^HTTP\/1\.1 407 Proxy Authentication Required\r\n/)
    expect(text).toMatch(/\r\nProxy-Authenticate: Basic realm="hctunnel", charset="UTF-8"\r\n/)
    const tunnel = await curl(proxy.url, ["-p", "-o", "/dev/null", "-w", "%{http_connect}", o("/small?none-tunnel")])
    expect(tunnel.stdout.toString()).toBe("407")
    expect(origin.seen.some((s) => s.url.startsWith("/small?none"))).toBe(false)
  })

  it("200 with the right password, plain HTTP and CONNECT; the origin never sees Proxy-Authorization", async () => {
    expect(await status(["--proxy-user", "alice:wonder land", o("/small?plain")])).toBe("200")
    expect(await status(["-p", "--proxy-user", "alice:wonder land", o("/small?tunnel")])).toBe("200")
    for (const url of ["/small?plain", "/small?tunnel"]) {
      const seen = origin.seen.find((s) => s.url === url)
      expect(seen, url).toBeDefined()
      expect(seen?.headers["proxy-authorization"]).toBeUndefined()
    }
    // The access log names the user.
    await proxy.waitForLine((l) => l.startsWith("alice@127.0.0.1:") && l.includes("/small?plain") && / 200 /.test(l))
    await proxy.waitForLine((l) => l.startsWith("alice@127.0.0.1:") && l.includes(" CONNECT ") && / 200 /.test(l))
  })

  it("407 with a wrong password or an unknown user", async () => {
    expect(await status(["--proxy-user", "alice:wrong", o("/small?wrong")])).toBe("407")
    const tunnel = await curl(proxy.url, [
      "-p",
      "--proxy-user",
      "mallory:builder",
      "-o",
      "/dev/null",
      "-w",
      "%{http_connect}",
      o("/small?unknown"),
    ])
    expect(tunnel.stdout.toString()).toBe("407")
    await proxy.waitForLine((l) => l.includes("/small?wrong") && / 407 .*unauthenticated wrong user name or password/.test(l))
  })

  it("retries on the same connection after the challenge (--proxy-anyauth)", async () => {
    const r = await curl(proxy.url, ["-v", "--proxy-anyauth", "--proxy-user", "bob:builder", o("/small?anyauth")])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toBe("hello from a\n")
    expect(r.stderr).toMatch(/< HTTP\/1\.1 407 /)
    expect(r.stderr).toMatch(/Re-using existing connection/)
    // Both lines come from the same client port: one connection.
    const challenged = await proxy.waitForLine((l) => l.includes("/small?anyauth") && / 407 /.test(l))
    const served = await proxy.waitForLine((l) => l.includes("/small?anyauth") && / 200 /.test(l))
    expect(served.split(" ")[0]).toBe(`bob@${challenged.split(" ")[0]}`)
  })

  it("a cached verdict: more requests with the same credentials run no new bcrypt verification", async () => {
    expect(await status(["--proxy-user", "bob:builder", o("/small?warm")])).toBe("200")
    const before = await stats(proxy)
    for (let i = 0; i < 3; i++) expect(await status(["--proxy-user", "bob:builder", o(`/small?cached${i}`)])).toBe("200")
    const after = await stats(proxy)
    expect(after["auth_verifications"]).toBe(before["auth_verifications"])
    expect(after["auth_cached"]! - before["auth_cached"]!).toBe(3)
    expect(after["auth_ok"]! - before["auth_ok"]!).toBe(3)
  })
})

describe("credentials bcrypt cannot check, and non-canonical base64 (issue 17)", () => {
  it("a password over 72 bytes: 407 at once saying why, and the access log line says it", async () => {
    const r = await curl(proxy.url, ["-i", "--proxy-user", `alice:${"x".repeat(73)}`, o("/small?long-password")])
    expect(r.stdout.toString()).toMatch(/^HTTP\/1\.1 407 [\s\S]*password longer than 72 bytes: bcrypt cannot check it/)
    await proxy.waitForLine((l) => l.includes("/small?long-password") && / 407 .*unauthenticated password longer than 72 bytes/.test(l))
  })

  it("Basic credentials in non-canonical base64 are refused as malformed, even when they decode to a right password", async () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    const canonical = Buffer.from("alice:wonder land").toString("base64") // 17 bytes: "...=", 2 spare bits in the last character
    // The same character with its lowest (spare) bit set.
    const stray = `${canonical.slice(0, -2)}${alphabet[alphabet.indexOf(canonical.at(-2)!) + 1]}=`
    expect(Buffer.from(stray, "base64").toString()).toBe("alice:wonder land") // what a lenient decoder makes of it
    const ask = async (value: string): Promise<number> => {
      const c = await Conn.open(proxy.port)
      try {
        await c.write(`GET ${o("/small?base64")} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nProxy-Authorization: Basic ${value}\r\n\r\n`)
        return (await c.readResponse()).status
      } finally {
        c.destroy()
      }
    }
    expect(await ask(canonical)).toBe(200)
    expect(await ask(stray)).toBe(407)
    await proxy.waitForLine((l) => l.includes("/small?base64") && / 407 .*malformed credentials: .*canonical base64/.test(l))
  })
})

describe("bcrypt runs off the worker's event loop", () => {
  it("while a slow verification runs, the same worker serves cached credentials", { timeout: 30_000 }, async () => {
    expect(await status(["--proxy-user", "bob:builder", o("/small?warm-for-slow")])).toBe("200")
    const verifications = (await stats(proxy))["auth_verifications"]!
    const order: string[] = []
    const slow = status(["--proxy-user", "slow:poke", o("/small?slow-user")]).then((code) => {
      order.push("slow")
      return code
    })
    // Wait until the slow verification has started (the counter moves when it is handed to the verifier).
    for (let i = 0; i < 50 && (await stats(proxy))["auth_verifications"] === verifications; i++) await new Promise((r) => setTimeout(r, 20))
    expect(order).toEqual([])
    for (let i = 0; i < 3; i++) expect(await status(["--proxy-user", "bob:builder", o(`/small?during-slow${i}`)])).toBe("200")
    order.push("cached")
    expect(await slow).toBe("200")
    expect(order).toEqual(["cached", "slow"])
  })
})

describe("undici ProxyAgent with a token", () => {
  const token = `Basic ${Buffer.from("alice:wonder land").toString("base64")}`

  it("through a tunnel (CONNECT) and in absolute form", async () => {
    for (const proxyTunnel of [true, false]) {
      const agent = new ProxyAgent({ uri: proxy.url, token, proxyTunnel })
      try {
        const res = await fetch(o(`/echo?undici-${proxyTunnel}`), { method: "POST", body: "payload", dispatcher: agent })
        expect(res.status).toBe(200)
        const echo = (await res.json()) as EchoBody
        expect(echo.length).toBe(7)
        expect(echo.headers["proxy-authorization"]).toBeUndefined()
      } finally {
        await agent.close()
      }
    }
  })

  it("without the token: 407 in absolute form, a refused tunnel", async () => {
    const plain = new ProxyAgent({ uri: proxy.url, proxyTunnel: false })
    const tunnel = new ProxyAgent({ uri: proxy.url })
    const wrong = new ProxyAgent({ uri: proxy.url, token: `Basic ${Buffer.from("alice:nope").toString("base64")}`, proxyTunnel: false })
    try {
      // undici turns a 407 from its proxy into an error, whatever the mode.
      const refused = async (url: string, dispatcher: ProxyAgent): Promise<string> => {
        try {
          const res = await fetch(url, { dispatcher })
          return `status ${res.status}`
        } catch (e) {
          return String((e as { cause?: unknown }).cause ?? e)
        }
      }
      expect(await refused(o("/small?undici-none"), plain)).toMatch(/Proxy Authentication Required \(407\)/)
      expect(await refused(o("/small?undici-wrong"), wrong)).toMatch(/Proxy Authentication Required \(407\)/)
      // A refused CONNECT: the tunnel is not opened (undici reports it as a cancelled request); the proxy said 407.
      const connects407 = () => proxy.stdout.filter((l) => l.includes(" CONNECT ") && / 407 /.test(l)).length
      const before = connects407()
      expect(await refused(o("/small?undici-none-tunnel"), tunnel)).not.toMatch(/^status /)
      await proxy.waitForLine(() => connects407() > before)
    } finally {
      await Promise.all([plain.close(), tunnel.close(), wrong.close()])
    }
    expect(origin.seen.some((s) => s.url.startsWith("/small?undici-none") || s.url === "/small?undici-wrong")).toBe(false)
  })
})

describe("python requests with credentials in the proxy URL", () => {
  it("HTTP and HTTPS (CONNECT): 200 with them, 407 with a wrong password", async () => {
    const script = [
      "import sys, json, requests",
      "port, http_url, https_url, ca = sys.argv[1:5]",
      "s = requests.Session()",
      "s.trust_env = False",
      "def proxies(user): return {'http': f'http://{user}@127.0.0.1:{port}', 'https': f'http://{user}@127.0.0.1:{port}'}",
      "good = proxies('alice:wonder%20land')",
      "a = s.get(http_url, proxies=good, timeout=20)",
      "b = s.get(https_url, proxies=good, verify=ca, timeout=20)",
      "c = s.get(http_url + '-wrong', proxies=proxies('alice:nope'), timeout=20)",
      "try:",
      "    s.get(https_url, proxies=proxies('alice:nope'), verify=ca, timeout=20)",
      "    d = 'tunnel opened'",
      "except requests.exceptions.ProxyError as e:",
      "    d = '407' if '407' in str(e) else str(e)",
      "print(json.dumps({'a': [a.status_code, a.text], 'b': [b.status_code, b.text], 'c': c.status_code, 'd': d}))",
    ].join("\n")
    const r = await run("python3", [
      "-c",
      script,
      String(proxy.port),
      o("/small?python"),
      `https://127.0.0.1:${tls.port}/small`,
      cert.certFile,
    ])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout.toString()) as { a: [number, string]; b: [number, string]; c: number; d: string }
    expect(out.a).toEqual([200, "hello from a\n"])
    expect(out.b).toEqual([200, "hello over tls\n"])
    expect(out.c).toBe(407)
    expect(out.d).toBe("407")
    expect(origin.seen.find((s) => s.url === "/small?python")?.headers["proxy-authorization"]).toBeUndefined()
  })
})

describe("rate limiting and reloading (a proxy of their own)", () => {
  it("after 10 failures from one address, 407 without verifying, even for the right password; other addresses are not affected", async () => {
    const own = await startProxy({ workers: 1, graceMs: 2000, extraArgs: ["--auth-file", usersFile] })
    try {
      const via = (address: string, user: string) =>
        curl(own.url, ["--interface", address, "-o", "/dev/null", "-w", "%{http_code}", "--proxy-user", user, o("/small?limit")])
      for (let i = 0; i < 10; i++) expect((await via("127.0.0.2", "alice:wrong")).stdout.toString()).toBe("407")
      const before = await stats(own)
      expect((await via("127.0.0.2", "alice:wonder land")).stdout.toString()).toBe("407")
      const after = await stats(own)
      expect(after["auth_rate_limited"]! - before["auth_rate_limited"]!).toBe(1)
      expect(after["auth_verifications"]).toBe(before["auth_verifications"])
      await own.waitForLine((l) => l.startsWith("127.0.0.2:") && l.includes("too many failed attempts"))
      expect((await via("127.0.0.3", "alice:wonder land")).stdout.toString()).toBe("200")
    } finally {
      await own.stop()
    }
  })

  it("behind a load balancer (PROXY protocol) the limit counts the client the header names, not the balancer", async () => {
    const own = await startProxy({
      workers: 1,
      graceMs: 2000,
      extraArgs: ["--auth-file", usersFile, "--proxy-protocol-from", "127.0.0.1/32", "--allow-to", "127.0.0.0/8"],
    })
    try {
      // Each request on a connection of its own from the balancer (127.0.0.1), for the client its header names.
      const via = async (client: string, user: string): Promise<number> => {
        const c = await Conn.open(own.port)
        try {
          const credentials = Buffer.from(user).toString("base64")
          await c.write(
            `PROXY TCP4 ${client} 127.0.0.1 40000 ${own.port}\r\n` +
              `GET ${o("/small?balanced")} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nProxy-Authorization: Basic ${credentials}\r\n\r\n`,
          )
          return (await c.readResponse()).status
        } finally {
          c.destroy()
        }
      }
      for (let i = 0; i < 10; i++) expect(await via("127.0.0.5", `alice:wrong${i}`)).toBe(407)
      expect(await via("127.0.0.5", "alice:wonder land")).toBe(407) // that client is limited...
      await own.waitForLine((l) => l.startsWith("127.0.0.5:40000 ") && l.includes("too many failed attempts"))
      expect(await via("127.0.0.6", "alice:wonder land")).toBe(200) // ...not everyone behind the balancer
    } finally {
      await own.stop()
    }
  })

  it("behind a load balancer, an IPv6 client is counted by its /64, not by each address it uses", async () => {
    const own = await startProxy({
      workers: 1,
      graceMs: 2000,
      // The PROXY headers name documentation addresses (2001:db8::/32): only bytes on loopback, nothing is sent there.
      extraArgs: [
        "--auth-file",
        usersFile,
        "--proxy-protocol-from",
        "127.0.0.1/32",
        "--allow",
        "2001:db8::/32",
        "--allow-to",
        "127.0.0.0/8",
      ],
    })
    try {
      const via = async (client: string, user: string): Promise<number> => {
        const c = await Conn.open(own.port)
        try {
          const credentials = Buffer.from(user).toString("base64")
          await c.write(
            `PROXY TCP6 ${client} ::1 40000 ${own.port}\r\n` +
              `GET ${o("/small?v6")} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nProxy-Authorization: Basic ${credentials}\r\n\r\n`,
          )
          return (await c.readResponse()).status
        } finally {
          c.destroy()
        }
      }
      for (let i = 1; i <= 10; i++) expect(await via(`2001:db8:1:2::${i.toString(16)}`, `alice:wrong${i}`)).toBe(407)
      expect(await via("2001:db8:1:2:ffff:ffff:ffff:ffff", "alice:wonder land")).toBe(407) // a new address, the same /64
      await own.waitForLine((l) => l.startsWith("[2001:db8:1:2:ffff:ffff:ffff:ffff]:40000 ") && l.includes("too many failed attempts"))
      expect(await via("2001:db8:1:3::1", "alice:wonder land")).toBe(200) // the next /64
    } finally {
      await own.stop()
    }
  })

  it("40 guesses at once from one address: 407 for each (none 503), a few verified, and a login from elsewhere is checked before the flood's", {
    timeout: 60_000,
  }, async () => {
    const file = join(dir, "flood.htpasswd")
    addUser(file, "alice", "wonder land", true)
    // Cost 12: each guess keeps the verifier busy for a while, so the flood is still being verified when the login comes.
    execFileSync(HTPASSWD, ["-bB", "-C", "12", file, "dear", "costly"], { stdio: "ignore" })
    const own = await startProxy({ workers: 1, graceMs: 2000, extraArgs: ["--auth-file", file] })
    try {
      /** One request on a connection of its own from `local`; its answer's status and detail, in the order they come. */
      const answered: Array<{ who: string; status: number; body: string }> = []
      const ask = async (local: string, who: string, user: string): Promise<void> => {
        const c = new Conn(net.connect({ host: "127.0.0.1", port: own.port, localAddress: local }))
        try {
          const credentials = Buffer.from(user).toString("base64")
          await c.write(
            `GET ${o("/small?flood")} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nProxy-Authorization: Basic ${credentials}\r\n\r\n`,
          )
          const r = await c.readResponse({ timeoutMs: 50_000 })
          answered.push({ who, status: r.status, body: r.body.toString() })
        } finally {
          c.destroy()
        }
      }
      const before = await stats(own)
      const flood = Array.from({ length: 40 }, (_, i) => ask("127.0.0.2", "flood", `dear:guess${i}`))
      // The guesses refused at once are back: the others are being verified, one by one.
      for (let i = 0; i < 500 && answered.length < 30; i++) await new Promise((r) => setTimeout(r, 20))
      const login = ask("127.0.0.3", "login", "alice:wonder land")
      await Promise.all([...flood, login])
      const after = await stats(own)
      const floods = answered.filter((a) => a.who === "flood")
      expect(floods.map((a) => a.status)).toEqual(Array(40).fill(407))
      const verified = floods.filter((a) => /wrong user name or password/.test(a.body))
      expect(verified.length).toBeGreaterThan(0)
      expect(floods.length - verified.length).toBe(floods.filter((a) => /pending|too many failed/.test(a.body)).length)
      expect(answered.find((a) => a.who === "login")?.status).toBe(200)
      // The login did not wait for the flood: some of the flood's verifications were answered after it.
      expect(answered.findIndex((a) => a.who === "login")).toBeLessThan(answered.lastIndexOf(verified.at(-1)!))
      // (Before any attempt the stats line has no auth figures.)
      expect(after["auth_verifications"]! - (before["auth_verifications"] ?? 0)).toBe(verified.length + 1)
      expect(verified.length).toBeLessThanOrEqual(10)
    } finally {
      await own.stop()
    }
  })

  it("a deleted user file keeps its users, and a warning says so", async () => {
    const file = join(dir, "deleted.htpasswd")
    addUser(file, "dave", "still here", true)
    const own = await startProxy({ workers: 1, graceMs: 2000, extraArgs: ["--auth-file", file] })
    try {
      unlinkSync(file)
      await own.waitForLine(
        /^WARN .*cannot read .*deleted\.htpasswd any more \(it was deleted or renamed away\): the 1 user read from it before stays in force/,
        15_000,
      )
      const r = await curl(own.url, ["-o", "/dev/null", "-w", "%{http_code}", "--proxy-user", "dave:still here", o("/small?deleted")])
      expect(r.stdout.toString()).toBe("200")
    } finally {
      await own.stop()
    }
  })

  it("a changed user file is reloaded and the cached verdicts dropped", async () => {
    const file = join(dir, "reload.htpasswd")
    addUser(file, "carol", "first", true)
    const own = await startProxy({ workers: 1, graceMs: 2000, extraArgs: ["--auth-file", file] })
    try {
      const get = async (user: string) =>
        (await curl(own.url, ["-o", "/dev/null", "-w", "%{http_code}", "--proxy-user", user, o("/small?reload")])).stdout.toString()
      expect(await get("carol:first")).toBe("200")
      expect(await get("carol:first")).toBe("200") // now cached
      addUser(file, "carol", "second") // htpasswd rewrites the file
      await own.waitForLine(/reloaded \(1 user\), cached credentials dropped/, 15_000)
      expect(await get("carol:first")).toBe("407")
      expect(await get("carol:second")).toBe("200")
    } finally {
      await own.stop()
    }
  })
})
