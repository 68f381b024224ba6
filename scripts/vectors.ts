// Writes test/vectors/*.json by running readable scenario scripts through the reference Postman.
// Review the diff of test/vectors after running it: every change there is a change of behaviour.
// Usage: node scripts/vectors.ts
import { writeFileSync } from "node:fs"
import type { Event } from "../src/core/events.ts"
import { defaultLimits, type Limits } from "../src/core/limits.ts"
import { Postman } from "../src/core/postman.ts"
import { latin1 } from "../test/core/harness.ts"
import { actionToJson, eventToJson, type Step, type Vector } from "../test/core/vectors.ts"

type Script = Array<[now: number, what: Event | "start" | "shutdown" | "abort"]>
const c = (s: string): Event => ({ _tag: "Received", side: "client", bytes: latin1(s) })
const o = (s: string): Event => ({ _tag: "Received", side: "origin", bytes: latin1(s) })
const ev = (e: Event) => e

const scenarios: Array<{ file: string; name: string; description: string; limits?: Partial<Limits>; auth?: boolean; script: Script }> = [
  {
    file: "connect-early-data", name: "CONNECT keeps bytes sent before the 200",
    description: "A TLS ClientHello sent right after the CONNECT head, before the origin is connected, is queued and written to the origin first.",
    script: [[0, "start"], [1, c("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01hello")], [2, ev({ _tag: "Connected" })],
      [3, o("\x16\x03\x03server")], [4, ev({ _tag: "Ended", side: "client" })], [5, ev({ _tag: "Ended", side: "origin" })]],
  },
  {
    file: "connect-ipv6", name: "CONNECT to a bracketed IPv6 address",
    description: "The brackets are removed for Connect; the port is required.",
    script: [[0, "start"], [1, c("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n")], [2, ev({ _tag: "Connected" })], [3, "abort"]],
  },
  {
    file: "get-keep-alive-two-origins", name: "Two requests on one client connection to different origins",
    description: "Absolute-form is rewritten to origin-form with Host from the target, hop-by-hop fields removed, Via added; the first origin connection is released as reusable.",
    script: [[0, "start"],
      [1, c("GET http://a.example/one?x=1 HTTP/1.1\r\nHost: ignored\r\nProxy-Connection: keep-alive\r\nConnection: X-Drop\r\nX-Drop: 1\r\nAccept: */*\r\n\r\n")],
      [2, ev({ _tag: "Connected" })], [3, o("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\n\r\none")],
      [4, c("GET http://b.example:8080/two HTTP/1.1\r\nHost: b.example:8080\r\n\r\n")], [5, ev({ _tag: "Connected" })],
      [6, o("HTTP/1.1 204 No Content\r\n\r\n")], [7, ev({ _tag: "Ended", side: "client" })]],
  },
  {
    file: "pipelined", name: "Pipelined requests are answered in order",
    description: "The second request waits in the backlog until the first response is complete.",
    script: [[0, "start"],
      [1, c("GET http://a.example/1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET http://a.example/2 HTTP/1.1\r\nHost: a.example\r\n\r\n")],
      [2, ev({ _tag: "Connected" })], [3, o("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")], [4, ev({ _tag: "Connected" })],
      [5, o("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")], [6, ev({ _tag: "Ended", side: "client" })]],
  },
  {
    file: "chunked-upload", name: "Chunked request body streamed verbatim",
    description: "The chunked framing is checked as it streams and forwarded unchanged; the response is close-delimited so the client connection closes after it.",
    script: [[0, "start"],
      [1, c("POST http://a.example/up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")], [2, ev({ _tag: "Connected" })],
      [3, c("lo\r\n0\r\n\r\n")], [4, o("HTTP/1.1 201 Created\r\n\r\ndone")], [5, ev({ _tag: "Ended", side: "origin" })]],
  },
  {
    file: "reject-smuggling-te-cl", name: "Transfer-Encoding with Content-Length is refused",
    description: "A request smuggling guard: 400 and close; nothing reaches an origin.",
    script: [[0, "start"], [1, c("POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")]],
  },
  {
    file: "reject-origin-form", name: "Origin-form target is refused",
    description: "A forward proxy needs an absolute URI; 400 with Connection: close.",
    script: [[0, "start"], [1, c("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")]],
  },
  {
    file: "reject-head-too-large", name: "Request head over the limit",
    description: "431 as soon as the head passes maxHeadBytes without ending.",
    limits: { maxHeadBytes: 128 },
    script: [[0, "start"], [1, c("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n")], [2, c(`X-Big: ${"x".repeat(200)}\r\n`)]],
  },
  {
    file: "unresolved-502", name: "Unresolved name gives 502",
    description: "ConnectFailed(unresolved) answers 502 with a text body and closes the client.",
    script: [[0, "start"], [1, c("GET http://nowhere.invalid/ HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n")],
      [2, ev({ _tag: "ConnectFailed", reason: "unresolved", message: "ENOTFOUND" })]],
  },
  {
    file: "connect-timeout-504", name: "Connect timeout gives 504",
    description: "The connect deadline fires before Connected: 504, the pending origin socket is closed.",
    limits: { connectTimeout: 1000 },
    script: [[0, "start"], [1, c("CONNECT slow.example:443 HTTP/1.1\r\nHost: slow.example:443\r\n\r\n")], [1001, ev({ _tag: "Timeout" })]],
  },
  {
    file: "slowloris-408", name: "A head that trickles in too slowly gets 408",
    description: "The head deadline starts at the head's first byte and does not move with later bytes.",
    limits: { headTimeout: 5000 },
    script: [[0, "start"], [100, c("GET http://a.example/ HTTP/1.1\r\n")], [3000, c("Host: a")], [5100, ev({ _tag: "Timeout" })]],
  },
  {
    file: "tunnel-backpressure", name: "Backpressure in a tunnel",
    description: "A full client buffer pauses reading from the origin until it drains.",
    script: [[0, "start"], [1, c("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")], [2, ev({ _tag: "Connected" })],
      [3, o("bulk")], [3, ev({ _tag: "Blocked", side: "client" })], [4, ev({ _tag: "Drained", side: "client" })], [5, ev({ _tag: "Errored", side: "client", message: "ECONNRESET" })]],
  },
  {
    file: "retry-reused-origin", name: "A reused origin connection closed under a GET is retried once",
    description: "The origin closed the pooled connection as the request went out: no byte came back, the request is idempotent without a body, so it is sent again on a fresh connection instead of answering 502.",
    script: [[0, "start"], [1, c("GET http://a.example/r HTTP/1.1\r\nHost: a.example\r\n\r\n")], [1, ev({ _tag: "Connected", reused: true })],
      [2, ev({ _tag: "Ended", side: "origin" })], [3, ev({ _tag: "Connected" })], [4, o("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]],
  },
  {
    file: "interim-100-continue", name: "100 Continue is forwarded before the final response",
    description: "Expect: 100-continue is end-to-end; the 1xx goes to the HTTP/1.1 client, then the final response.",
    script: [[0, "start"], [1, c("PUT http://a.example/f HTTP/1.1\r\nHost: a.example\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")], [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 100 Continue\r\n\r\n")], [4, c("data")], [5, o("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], [6, "shutdown"]],
  },
  {
    file: "upstream-proxy", name: "Plain HTTP through a parent proxy, then a parent that refuses a CONNECT",
    description: "Connected.upstream: the request goes to the parent in absolute-form with our Proxy-Authorization (the client's is dropped); the parent's connection is released as reusable. Then a CONNECT (Connect with tunnel) that the parent refused: ConnectFailed(upstream) is a 502 naming the parent and its answer.",
    script: [[0, "start"],
      [1, c("GET http://a.example:8080/p?q=1 HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n\r\n")],
      [2, ev({ _tag: "Connected", upstream: { proxy: "10.0.0.1:3128", authorization: "Basic dXNlcjpwYXNz" } })],
      [3, o("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
      [4, c("CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n")],
      [5, ev({ _tag: "ConnectFailed", reason: "upstream", message: "upstream proxy 10.0.0.1:3128 answered 403 Forbidden" })]],
    file: "proxy-auth-407-retry", name: "Proxy authentication: 407, then the retry on the same connection",
    description: "With authentication required, a CONNECT without credentials is answered 407 with the Basic challenge and the connection stays open; the retry carries Proxy-Authorization, which the runtime accepts, and only then is the origin dialled. The user is in the access record.",
    auth: true,
    script: [[0, "start"], [1, c("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")],
      [2, ev({ _tag: "AuthenticationFailed", reason: "missing", message: "no credentials" })],
      [3, c("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n")],
      [4, ev({ _tag: "Authenticated", user: "alice" })], [5, ev({ _tag: "Connected" })], [6, ev({ _tag: "Ended", side: "client" })], [7, ev({ _tag: "Ended", side: "origin" })]],
  },
  {
    file: "proxy-auth-407-close-with-body", name: "Proxy authentication: a refused POST with a body closes",
    description: "The request body was not read (it never goes anywhere), so the connection cannot carry another request: 407 with Connection: close, and nothing reaches an origin.",
    auth: true,
    script: [[0, "start"], [1, c("POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\nProxy-Authorization: Basic bWFsbG9yeTp4\r\nContent-Length: 3\r\n\r\nabc")],
      [2, ev({ _tag: "AuthenticationFailed", reason: "invalid", message: "wrong password" })]],
  },
]

for (const s of scenarios) {
  const limits = { ...defaultLimits, ...s.limits }
  const postman = new Postman({ limits, via: "hctunnel", auth: s.auth === true })
  const steps: Step[] = s.script.map(([now, what]) => {
    if (what === "start" || what === "shutdown" || what === "abort") {
      const actions = what === "start" ? postman.start(now) : what === "shutdown" ? postman.shutdown(now) : postman.abort(now, "vector")
      return { now, call: what, expect: actions.map(actionToJson) }
    }
    return { now, event: eventToJson(what), expect: postman.handle(what, now).map(actionToJson) }
  })
  const vector: Vector = { name: s.name, description: s.description, limits: s.limits ?? {}, via: "hctunnel", ...(s.auth === true ? { auth: true } : {}), steps }
  writeFileSync(new URL(`../test/vectors/${s.file}.json`, import.meta.url), JSON.stringify(vector, null, 2) + "\n")
}
console.log(`wrote ${scenarios.length} vectors`)
