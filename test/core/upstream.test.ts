/**
 * Parent (upstream) proxies, as the core sees them: `Connect.tunnel` tells the runtime what the socket is
 * for, `Connected.upstream` makes the request head absolute-form with our Proxy-Authorization, a parent's
 * 407 becomes our 502, and `ConnectFailed(upstream)` is a 502 whose body is the runtime's text.
 */
import { describe, expect, it } from "vitest"
import { serializeRequestHead } from "../../src/core/http/serialize.ts"
import { parseRequestHead } from "../../src/core/http/request-head.ts"
import { defaultLimits } from "../../src/core/limits.ts"
import { connect, Harness, latin1, text } from "./harness.ts"

const parent = { proxy: "10.0.0.1:3128", authorization: "Basic dXNlcjpwYXNz" }

const head = (raw: string) => {
  const r = parseRequestHead(latin1(raw), defaultLimits)
  if (!r.ok) throw new Error(r.rejection.reason)
  return r.value
}

describe("Connect says what the socket is for", () => {
  it("CONNECT asks for a tunnel", () => {
    const h = new Harness()
    const actions = h.client("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")
    expect(actions[0]).toEqual({ _tag: "Connect", host: "a.example", port: 443, tunnel: true })
  })

  it("a plain request does not (the key is absent, not false)", () => {
    const h = new Harness()
    const actions = h.client("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n")
    expect(actions[0]).toEqual({ _tag: "Connect", host: "a.example", port: 80 })
    expect(Object.keys(actions[0]!)).not.toContain("tunnel")
  })
})

describe("the request head to a parent proxy", () => {
  it("is absolute-form, Host from the target, our Proxy-Authorization instead of the client's", () => {
    const bytes = serializeRequestHead(
      head(
        "POST http://a.example:8080/up?x=1 HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Authorization: Basic Y2xpZW50\r\nContent-Length: 0\r\n\r\n",
      ),
      { via: "child", keepUpgrade: false, upstream: { authorization: parent.authorization } },
    )
    expect(text(bytes)).toBe(
      "POST http://a.example:8080/up?x=1 HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\nContent-Length: 0\r\nVia: 1.1 child\r\n\r\n",
    )
  })

  it("omits port 80, keeps IPv6 brackets, and has no Proxy-Authorization without credentials", () => {
    expect(
      text(
        serializeRequestHead(head("GET http://a.example:80 HTTP/1.1\r\nHost: a.example\r\n\r\n"), {
          via: "c",
          keepUpgrade: false,
          upstream: {},
        }),
      ),
    ).toBe("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nVia: 1.1 c\r\n\r\n")
    expect(
      text(serializeRequestHead(head("GET http://[::1]:8080/x HTTP/1.0\r\n\r\n"), { via: "c", keepUpgrade: false, upstream: {} })),
    ).toBe("GET http://[::1]:8080/x HTTP/1.0\r\nHost: [::1]:8080\r\nVia: 1.0 c\r\n\r\n")
  })

  it("is origin-form again when a retry lands on a direct connection (upstream is per connection)", () => {
    const h = new Harness()
    h.client("GET http://a.example/r HTTP/1.1\r\nHost: a.example\r\n\r\n")
    h.markOrigin("open")
    h.send({ _tag: "Connected", reused: true, upstream: parent })
    expect(h.originText()).toMatch(/^GET http:\/\/a\.example\/r HTTP\/1\.1\r\n/)
    h.send({ _tag: "Ended", side: "origin" }) // the parent closed the pooled connection: retried once
    connect(h)
    expect(h.originText(1)).toMatch(/^GET \/r HTTP\/1\.1\r\n/)
  })
})

describe("answers of a parent proxy", () => {
  it("a 407 of the ORIGIN (no parent) is forwarded as it is", () => {
    const h = new Harness()
    h.client("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n")
    connect(h)
    h.fromOrigin("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
    expect(h.clientText()).toMatch(/^HTTP\/1\.1 407 /)
    expect(h.postman.state).toBe("AwaitingHead")
  })

  it("other statuses of the parent (its own 502, a 404 of the origin) reach the client unchanged", () => {
    const h = new Harness()
    h.client("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n")
    h.markOrigin("open")
    h.send({ _tag: "Connected", upstream: parent })
    h.fromOrigin("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad")
    expect(h.clientText()).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n[\s\S]*\r\n\r\nbad$/)
    expect(h.logs.at(-1)?.outcome).toBe("ok")
  })

  it("a tunnel through a parent is a tunnel (Connected.upstream changes nothing there)", () => {
    const h = new Harness()
    h.client("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\nhello")
    h.markOrigin("open")
    h.send({ _tag: "Connected", upstream: parent })
    expect(h.clientText()).toBe("HTTP/1.1 200 Connection established\r\n\r\n")
    expect(h.originText()).toBe("hello")
  })

  it("ConnectFailed(upstream) logs an origin-error with the runtime's text", () => {
    const h = new Harness()
    h.client("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n")
    h.markOrigin("closed")
    h.send({ _tag: "ConnectFailed", reason: "upstream", message: "upstream proxy 10.0.0.1:3128: connection refused" })
    expect(h.clientText()).toMatch(/\r\n\r\n502 Bad Gateway: upstream proxy 10\.0\.0\.1:3128: connection refused\n$/)
    expect(h.logs.at(-1)).toMatchObject({
      status: 502,
      outcome: "origin-error",
      detail: "upstream proxy 10.0.0.1:3128: connection refused",
    })
  })
})
