/** Which destinations go through the parent (Upstream.ts), and the parent's CONNECT handshake (UpstreamConnect.ts). */
import { describe, expect, it } from "vitest"
import { connectRequest, describeParentError, UpstreamHandshake } from "../../../src/runtime/dial/UpstreamConnect.ts"
import { parseNoUpstreamEntry, UpstreamRoutes } from "../../../src/runtime/dial/Upstream.ts"

const parent = { host: "127.0.0.1", port: 3128 }
const direct = (list: ReadonlyArray<string>, host: string, port = 80) =>
  new UpstreamRoutes(parent, list).parentFor(host, port) === undefined

describe("--no-upstream matching", () => {
  it("without entries everything goes to the parent, named without credentials", () => {
    const p = new UpstreamRoutes({ ...parent, authorization: "Basic dTpw" }, []).parentFor("a.example", 80)
    expect(p).toMatchObject({ name: "127.0.0.1:3128", authorization: "Basic dTpw" })
    expect(p?.poolKey).not.toBe("127.0.0.1:3128") // never an origin's pool key
  })

  it("* sends everything direct", () => {
    expect(direct(["*"], "anything.example")).toBe(true)
    expect(direct(["*"], "10.1.2.3", 443)).toBe(true)
  })

  it("a name matches itself and every name under it, with or without a leading dot, like curl", () => {
    for (const entry of ["example.com", ".example.com", "*.example.com", "EXAMPLE.com."]) {
      expect(direct([entry], "example.com"), entry).toBe(true)
      expect(direct([entry], "api.example.com"), entry).toBe(true)
      expect(direct([entry], "example.com."), entry).toBe(true)
      expect(direct([entry], "notexample.com"), entry).toBe(false)
      expect(direct([entry], "example.com.evil.test"), entry).toBe(false)
    }
  })

  it("a destination is matched in the core's spelling: case and one trailing dot do not matter", () => {
    expect(direct(["internal.test"], "Internal.TEST.")).toBe(true)
    expect(direct(["INTERNAL.test."], "internal.test")).toBe(true)
    // More trailing dots are another name (the core refuses it with 400): it never matches an entry.
    expect(direct(["internal.test"], "internal.test..")).toBe(false)
  })

  it("addresses and networks match destinations written as addresses; names are not resolved", () => {
    expect(direct(["10.0.0.0/8"], "10.20.30.40")).toBe(true)
    expect(direct(["10.0.0.0/8"], "11.0.0.1")).toBe(false)
    expect(direct(["10.0.0.0/8"], "ten.example")).toBe(false)
    expect(direct(["192.168.1.5"], "192.168.1.5")).toBe(true)
    expect(direct(["::1"], "::1")).toBe(true)
    expect(direct(["fd00::/8"], "fd12::7")).toBe(true)
    expect(direct(["fd00::/8"], "fe80::1")).toBe(false)
  })

  it("host:port limits an entry to one port", () => {
    expect(direct(["internal.test:8080"], "internal.test", 8080)).toBe(true)
    expect(direct(["internal.test:8080"], "internal.test", 443)).toBe(false)
    expect(direct(["[::1]:443"], "::1", 443)).toBe(true)
    expect(direct(["[::1]:443"], "::1", 80)).toBe(false)
    expect(direct(["127.0.0.1:9"], "127.0.0.1", 9)).toBe(true)
  })

  it("bad entries are refused with a message naming them", () => {
    for (const bad of ["exa mple.com", "a.test:0", "a.test:99999", "10.0.0.0/40", "[nothost]:80", "", "a..b"]) {
      const r = parseNoUpstreamEntry(bad)
      expect(r.ok, bad).toBe(false)
      if (!r.ok) expect(r.message).toContain(JSON.stringify(bad))
    }
  })
})

describe("the parent's CONNECT handshake", () => {
  const p = new UpstreamRoutes({ ...parent, authorization: "Basic dTpw" }, []).parentFor("a", 1)!
  const bytes = (s: string) => new TextEncoder().encode(s)
  const text = (b: Uint8Array) => new TextDecoder().decode(b)

  it("sends CONNECT with Host, Proxy-Authorization and Via", () => {
    expect(text(connectRequest("::1", 8443, p, "child"))).toBe(
      "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nProxy-Authorization: Basic dTpw\r\nVia: 1.1 child\r\n\r\n",
    )
  })

  it("carries the Via of the client's CONNECT before its own hop, so a loop through parents is seen (issue 17, item 11)", () => {
    expect(text(connectRequest("a.example", 443, p, "child", "1.1 edge, 1.0 other"))).toBe(
      "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nProxy-Authorization: Basic dTpw\r\nVia: 1.1 edge, 1.0 other, 1.1 child\r\n\r\n",
    )
    const h = new UpstreamHandshake("a.example", 443, p, "child", { maxHeadBytes: 1024, maxHeaders: 10 }, "1.1 edge")
    expect(text(h.request)).toContain("\r\nVia: 1.1 edge, 1.1 child\r\n")
  })

  it("a 2xx in pieces opens the tunnel and hands back the origin's first bytes", () => {
    const h = new UpstreamHandshake("a.example", 443, p, "child", { maxHeadBytes: 1024, maxHeaders: 10 })
    expect(h.push(bytes("HTTP/1.1 200 Connection est"))._tag).toBe("NeedMore")
    const v = h.push(bytes("ablished\r\nX: y\r\n\r\n\x16\x03hello"))
    expect(v._tag).toBe("Established")
    if (v._tag === "Established") expect(text(v.rest)).toBe("\x16\x03hello")
  })

  it("anything else is refused, with the parent's answer in words", () => {
    const answer = (s: string) => new UpstreamHandshake("a", 443, p, "c", { maxHeadBytes: 128, maxHeaders: 10 }).push(bytes(s))
    expect(answer("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n")).toEqual({
      _tag: "Refused",
      what: "answered 407 Proxy Authentication Required",
    })
    expect(answer("HTTP/1.1 503\r\n\r\n")).toEqual({ _tag: "Refused", what: "answered 503" })
    expect(answer("SSH-2.0-OpenSSH\r\n\r\n")).toMatchObject({
      _tag: "Refused",
      what: expect.stringMatching(/^answered CONNECT with a malformed response/),
    })
    expect(answer(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(200)}`)).toEqual({
      _tag: "Refused",
      what: "answered CONNECT with a head larger than maxHeadBytes",
    })
  })

  it("socket errors read as sentences", () => {
    expect(describeParentError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:3128")).toBe("refused the connection")
    expect(describeParentError(undefined, "weird\nthing")).toBe("could not be reached: weird?thing")
  })
})
