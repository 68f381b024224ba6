/**
 * Real clients through the real proxy: curl, undici's ProxyAgent, Python requests, a ws WebSocket.
 */
import { createHash, randomBytes } from "node:crypto"
import { writeFile } from "node:fs/promises"
import net from "node:net"
import { join } from "node:path"
import { ProxyAgent, fetch } from "undici"
import { WebSocket } from "ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeCert, type Cert } from "./support/cert.ts"
import {
  bigBodySha256,
  startHttpOrigin,
  startTlsOrigin,
  startWsEcho,
  type Closable,
  type EchoBody,
  type HttpOrigin,
} from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { curl, headerOf, run, splitIncluded } from "./support/run.ts"
import { until } from "./support/wire.ts"

let proxy: Proxy
let origin: HttpOrigin
let tls: Closable
let wsEcho: Closable
let cert: Cert
let bodyFile: string
let body: Buffer
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex")

beforeAll(async () => {
  cert = await makeCert()
  ;[origin, tls, wsEcho, proxy] = await Promise.all([
    startHttpOrigin("a"),
    startTlsOrigin(cert.key, cert.cert),
    startWsEcho(),
    startProxy({ workers: 2, graceMs: 2000, extraArgs: ["--via", PSEUDONYM] }),
  ])
  body = randomBytes(300_000)
  bodyFile = join(cert.dir, "body.bin")
  await writeFile(bodyFile, body)
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([origin?.close(), tls?.close(), wsEcho?.close()])
  await cert?.remove()
})

const o = (path: string): string => `http://localhost:${origin.port}${path}`

/** The proxy's --via pseudonym: a request that carries it went through the proxy, not around it. */
const PSEUDONYM = "clients-e2e"
const VIA = `1.1 ${PSEUDONYM}`

/** The origin saw `method path` with the proxy's Via: the request came through the proxy. */
const expectSeenThroughProxy = (method: string, path: string): void => {
  const seen = origin.seen.filter((s) => s.method === method && s.url === path)
  expect(seen.map((s) => s.headers.via)).toEqual([VIA])
}

/**
 * The proxy's access log has a tunnel to `authority` among the lines written since line `from` (a tunnel
 * carries no Via to the origin: its access line is what shows it went through the proxy).
 */
const tunnelLogged = (authority: string, from: number): Promise<void> =>
  until(`an access line for CONNECT ${authority}\n${proxy.output()}`, () =>
    proxy.stdout.slice(from).some((l) => l.includes(` CONNECT ${authority} 200 `)),
  )

describe("curl", () => {
  it("GET in absolute form", async () => {
    const r = await curl(proxy.url, ["-i", o("/small?curl-get")])
    expect(r.code, r.stderr).toBe(0)
    const { heads, body } = splitIncluded(r.stdout)
    expect(heads).toHaveLength(1)
    expect(heads[0]).toMatch(/^HTTP\/1\.1 200 /)
    expect(headerOf(heads[0]!, "via")).toBe(VIA)
    expect(body.toString()).toBe("hello from a\n")
    expectSeenThroughProxy("GET", "/small?curl-get")
    const seen = origin.seen.find((s) => s.url === "/small?curl-get" && s.method === "GET")
    expect(seen?.headers.host).toBe(`localhost:${origin.port}`)
  })

  it("HEAD: headers, no body", async () => {
    const r = await curl(proxy.url, ["-sS", "-I", o("/small?curl-head")])
    expect(r.code, r.stderr).toBe(0)
    const { heads, body } = splitIncluded(r.stdout)
    expect(heads[0]).toMatch(/^HTTP\/1\.1 200 /)
    expect(headerOf(heads[0]!, "content-length")).toBe("13")
    expect(body.length).toBe(0)
    expectSeenThroughProxy("HEAD", "/small?curl-head")
  })

  it("POST with a Content-Length body: the origin gets every byte", async () => {
    const r = await curl(proxy.url, ["--data-binary", `@${bodyFile}`, "-H", "Content-Type: application/octet-stream", o("/echo")])
    expect(r.code, r.stderr).toBe(0)
    const echo = JSON.parse(r.stdout.toString()) as EchoBody
    expect(echo.method).toBe("POST")
    expect(echo.length).toBe(body.length)
    expect(echo.sha256).toBe(sha(body))
    expect(echo.headers["content-length"]).toBe(String(body.length))
    expect(echo.headers.via).toBe(VIA)
  })

  it("chunked upload: forwarded chunked, every byte arrives", async () => {
    const r = await curl(proxy.url, ["-H", "Transfer-Encoding: chunked", "--data-binary", `@${bodyFile}`, o("/echo?chunked")])
    expect(r.code, r.stderr).toBe(0)
    const echo = JSON.parse(r.stdout.toString()) as EchoBody
    expect(echo.headers["transfer-encoding"]).toBe("chunked")
    expect(echo.headers["content-length"]).toBeUndefined()
    expect(echo.length).toBe(body.length)
    expect(echo.sha256).toBe(sha(body))
    expect(echo.headers.via).toBe(VIA)
  })

  it("Expect: 100-continue: the interim 100 reaches curl, then the final response", async () => {
    const r = await curl(proxy.url, ["-i", "-H", "Expect: 100-continue", "--data-binary", `@${bodyFile}`, o("/continue")])
    expect(r.code, r.stderr).toBe(0)
    const { heads, body: out } = splitIncluded(r.stdout)
    expect(heads[0]).toMatch(/^HTTP\/1\.1 100 /)
    expect(heads[heads.length - 1]).toMatch(/^HTTP\/1\.1 200 /)
    const echo = JSON.parse(out.toString()) as EchoBody
    expect(echo.sha256).toBe(sha(body))
    expect(echo.headers.via).toBe(VIA)
  })

  it("chunked download", async () => {
    const r = await curl(proxy.url, ["-i", o("/chunked?n=6")])
    expect(r.code, r.stderr).toBe(0)
    const { heads, body: out } = splitIncluded(r.stdout)
    expect(headerOf(heads[0]!, "transfer-encoding")).toBe("chunked")
    expect(out.toString()).toBe([0, 1, 2, 3, 4, 5].map((i) => `chunk ${i}\n`).join(""))
    expectSeenThroughProxy("GET", "/chunked?n=6")
  })

  it("a 100 MB download arrives whole (sha256)", { timeout: 90_000 }, async () => {
    const size = 100 * 1024 * 1024
    const expected = bigBodySha256(size)
    const r = await curl(proxy.url, [o(`/big?size=${size}`)], { keepBytes: 0, timeoutMs: 80_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.length).toBe(size)
    expect(r.sha256).toBe(expected)
    expectSeenThroughProxy("GET", `/big?size=${size}`)
  })

  it("HTTPS through CONNECT to the local TLS origin (--cacert)", async () => {
    const from = proxy.stdout.length
    const r = await curl(proxy.url, ["-i", "--cacert", cert.certFile, `https://localhost:${tls.port}/small`])
    expect(r.code, r.stderr).toBe(0)
    const { heads, body: out } = splitIncluded(r.stdout)
    expect(heads[heads.length - 1]).toMatch(/^HTTP\/1\.1 200 /)
    expect(out.toString()).toBe("hello over tls\n")
    await tunnelLogged(`localhost:${tls.port}`, from)
  })

  it("-p: plain HTTP through a CONNECT tunnel", async () => {
    const before = origin.seen.length
    const from = proxy.stdout.length
    const r = await curl(proxy.url, ["-p", o("/small?via-tunnel")])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toBe("hello from a\n")
    // Through a tunnel the origin sees the request exactly as curl wrote it: no Via from the proxy.
    const seen = origin.seen.slice(before).find((s) => s.url === "/small?via-tunnel")
    expect(seen).toBeDefined()
    expect(seen?.headers.via).toBeUndefined()
    await tunnelLogged(`localhost:${origin.port}`, from)
  })
})

describe("undici ProxyAgent", () => {
  it("GET through a tunnel (the default for ProxyAgent)", async () => {
    const agent = new ProxyAgent({ uri: proxy.url })
    const from = proxy.stdout.length
    try {
      const res = await fetch(o("/small?undici-tunnel"), { dispatcher: agent })
      expect(res.status).toBe(200)
      expect(await res.text()).toBe("hello from a\n")
    } finally {
      await agent.close()
    }
    await tunnelLogged(`localhost:${origin.port}`, from) // written when the tunnel ends: the agent closed it
  })

  it("GET and POST in absolute form (proxyTunnel: false)", async () => {
    const agent = new ProxyAgent({ uri: proxy.url, proxyTunnel: false })
    try {
      const res = await fetch(o("/small?undici-plain"), { dispatcher: agent })
      expect(res.status).toBe(200)
      expect(res.headers.get("via")).toBe(VIA)
      expect(await res.text()).toBe("hello from a\n")
      const post = await fetch(o("/echo"), { method: "POST", body, dispatcher: agent })
      expect(post.status).toBe(200)
      const echo = (await post.json()) as EchoBody
      expect(echo.length).toBe(body.length)
      expect(echo.sha256).toBe(sha(body))
      expect(echo.headers.via).toBe(VIA)
    } finally {
      await agent.close()
    }
  })

  it("HTTPS through CONNECT to the TLS origin", async () => {
    const agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: cert.cert } })
    const from = proxy.stdout.length
    try {
      const res = await fetch(`https://localhost:${tls.port}/echo`, { method: "POST", body: "over tls", dispatcher: agent })
      expect(res.status).toBe(200)
      const echo = (await res.json()) as EchoBody
      expect(echo.length).toBe(8)
      expect(echo.sha256).toBe(sha(Buffer.from("over tls")))
    } finally {
      await agent.close()
    }
    await tunnelLogged(`localhost:${tls.port}`, from) // written when the tunnel ends: the agent closed it
  })
})

describe("python requests", () => {
  it("GET and HTTPS GET with proxies={http, https}", async () => {
    const script = [
      "import sys, json, requests",
      "proxy, http_url, https_url, ca = sys.argv[1:5]",
      "s = requests.Session()",
      "s.trust_env = False",
      "p = {'http': proxy, 'https': proxy}",
      "a = s.get(http_url, proxies=p, timeout=20)",
      "b = s.get(https_url, proxies=p, verify=ca, timeout=20)",
      "print(json.dumps({'a': [a.status_code, a.text, a.headers.get('via')], 'b': [b.status_code, b.text]}))",
    ].join("\n")
    const r = await run("python3", ["-c", script, proxy.url, o("/small?python"), `https://localhost:${tls.port}/small`, cert.certFile])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout.toString()) as { a: [number, string, string | null]; b: [number, string] }
    expect(out.a[0]).toBe(200)
    expect(out.a[1]).toBe("hello from a\n")
    expect(out.a[2]).toBe(VIA)
    expectSeenThroughProxy("GET", "/small?python")
    expect(out.b).toEqual([200, "hello over tls\n"])
  })
})

/** CONNECT with a raw socket; resolves with the socket (no listeners left on it) once the 200 was read. */
const rawTunnel = (proxyPort: number, authority: string): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, "127.0.0.1")
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      const i = buf.indexOf("\r\n\r\n")
      if (i < 0) return
      s.off("data", onData)
      s.off("error", reject)
      s.pause()
      const head = buf.subarray(0, i).toString("latin1")
      if (!/^HTTP\/1\.1 200 /.test(head)) {
        s.destroy()
        return reject(new Error(`CONNECT ${authority}: ${head}`))
      }
      if (buf.length > i + 4) s.unshift(buf.subarray(i + 4))
      resolve(s)
    }
    s.on("data", onData)
    s.once("error", reject)
    s.once("connect", () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`))
  })

describe("WebSocket", () => {
  it("echoes messages through a CONNECT tunnel", async () => {
    const socket = await rawTunnel(proxy.port, `localhost:${wsEcho.port}`)
    // The socket is paused with nothing lost; the http client of ws attaches its reader, then it flows again.
    const ws = new WebSocket(`ws://localhost:${wsEcho.port}/`, {
      createConnection: () => {
        setImmediate(() => socket.resume())
        return socket
      },
    })
    const got: string[] = []
    const done = new Promise<void>((resolve, reject) => {
      ws.on("message", (d: Buffer) => {
        got.push(d.toString())
        if (got.length === 3) resolve()
      })
      ws.on("error", reject)
    })
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve())
      ws.once("error", reject)
    })
    ws.send("one")
    ws.send("two")
    ws.send("x".repeat(100_000))
    await done
    expect(got.slice(0, 2)).toEqual(["one", "two"])
    expect(got[2]).toBe("x".repeat(100_000))
    const closed = new Promise<number>((resolve) => ws.once("close", (code: number) => resolve(code)))
    ws.close(1000)
    expect(await closed).toBe(1000)
  })
})
