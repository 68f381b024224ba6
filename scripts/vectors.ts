// Writes test/vectors/*.json by running readable scenario scripts through the reference Postman, and
// test/vectors/rows/<row>.json, one per row of the transition table, from the row scenarios of
// test/core/row-scenarios.ts. Each step that exercises a row names it (`rows`); the replay checks it.
// Review the diff of test/vectors after running it: every change there is a change of behaviour.
// Usage: node scripts/vectors.ts
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import type { Action } from "../src/core/actions.ts"
import type { PostmanState } from "../src/core/postman.ts"
import { isIgnored, type Transition, transitions, triggersOf } from "../src/core/transitions.ts"

const fail = (message: string): never => {
  throw new Error(message)
}
import { chainMismatch, triggerOf } from "../test/core/row-check.ts"
import { describe } from "../test/core/harness.ts"
import { sampleTrigger, scenarios as rowScenarios } from "../test/core/row-scenarios.ts"
import type { Event } from "../src/core/events.ts"
import { defaultLimits, type Limits } from "../src/core/limits.ts"
import { Postman } from "../src/core/postman.ts"
import { latin1 } from "../test/core/harness.ts"
import { actionToJson, eventToJson, formatVector, type Step, type Vector } from "../test/core/vectors.ts"

type Script = Array<[now: number, what: Event | "start" | "shutdown" | "abort"]>
const c = (s: string): Event => ({ _tag: "Received", side: "client", bytes: latin1(s) })
const o = (s: string): Event => ({ _tag: "Received", side: "origin", bytes: latin1(s) })
const ev = (e: Event) => e

/**
 * `rows`: the row (or the chain of rows, `F6+F9`: one event running through several) of the transition
 * table each step exercises, by step index: what the step is meant to show, checked when written and
 * again when replayed.
 */
const scenarios: Array<{
  file: string
  rows: Record<number, string>
  name: string
  description: string
  limits?: Partial<Limits>
  auth?: boolean
  script: Script
}> = [
  {
    file: "connect-early-data",
    rows: { 1: "A5+C1", 2: "C3", 3: "T2", 4: "T3", 5: "T5" },
    name: "CONNECT keeps bytes sent before the 200",
    description:
      "A TLS ClientHello sent right after the CONNECT head, before the origin is connected, is queued and written to the origin first.",
    script: [
      [0, "start"],
      [1, c("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01hello")],
      [2, ev({ _tag: "Connected" })],
      [3, o("\x16\x03\x03server")],
      [4, ev({ _tag: "Ended", side: "client" })],
      [5, ev({ _tag: "Ended", side: "origin" })],
    ],
  },
  {
    file: "connect-ipv6",
    rows: { 1: "A5", 2: "C21", 3: "S3" },
    name: "CONNECT to a bracketed IPv6 address",
    description: "The brackets are removed for Connect; the port is required.",
    script: [
      [0, "start"],
      [1, c("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, "abort"],
    ],
  },
  {
    file: "connect-via",
    rows: { 1: "A5", 2: "C21", 3: "S3" },
    name: "A CONNECT's Via goes into its Connect",
    description:
      "The Via values a CONNECT came with are handed to the runtime (Connect.receivedVia), so that a CONNECT it makes to a parent proxy carries them before its own hop: a loop through parents then meets its own pseudonym (508). The 200 carries no Via.",
    script: [
      [0, "start"],
      [1, c("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nVia: 1.1 edge\r\nVia: 1.0 lb\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, "abort"],
    ],
  },
  {
    file: "get-keep-alive-two-origins",
    rows: { 1: "A6", 2: "C20", 3: "F6+F9", 4: "A6", 5: "C20", 6: "F40", 7: "A7" },
    name: "Two requests on one client connection to different origins",
    description:
      "Absolute-form is rewritten to origin-form with Host from the target, hop-by-hop fields removed, Via added; the first origin connection is released as reusable, the second is not: a 204 cannot have a body, and bytes its origin might send after it must never answer another request.",
    script: [
      [0, "start"],
      [
        1,
        c(
          "GET http://a.example/one?x=1 HTTP/1.1\r\nHost: ignored\r\nProxy-Connection: keep-alive\r\nConnection: X-Drop\r\nX-Drop: 1\r\nAccept: */*\r\n\r\n",
        ),
      ],
      [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\n\r\none")],
      [4, c("GET http://b.example:8080/two HTTP/1.1\r\nHost: b.example:8080\r\n\r\n")],
      [5, ev({ _tag: "Connected" })],
      [6, o("HTTP/1.1 204 No Content\r\n\r\n")],
      [7, ev({ _tag: "Ended", side: "client" })],
    ],
  },
  {
    file: "pipelined",
    rows: { 1: "A6+C1", 2: "C20", 3: "F6+F9+A6", 4: "C20", 5: "F6+F9", 6: "A7" },
    name: "Pipelined requests are answered in order",
    description: "The second request waits in the backlog until the first response is complete.",
    script: [
      [0, "start"],
      [1, c("GET http://a.example/1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET http://a.example/2 HTTP/1.1\r\nHost: a.example\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")],
      [4, ev({ _tag: "Connected" })],
      [5, o("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")],
      [6, ev({ _tag: "Ended", side: "client" })],
    ],
  },
  {
    file: "chunked-upload",
    rows: { 1: "A6+C1", 2: "C4", 3: "F1", 4: "F6+F8", 5: "F11" },
    name: "Chunked request body streamed verbatim",
    description:
      "The chunked framing is checked as it streams and forwarded unchanged; the response is close-delimited so the client connection closes after it.",
    script: [
      [0, "start"],
      [1, c("POST http://a.example/up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")],
      [2, ev({ _tag: "Connected" })],
      [3, c("lo\r\n0\r\n\r\n")],
      [4, o("HTTP/1.1 201 Created\r\n\r\ndone")],
      [5, ev({ _tag: "Ended", side: "origin" })],
    ],
  },
  {
    file: "reject-smuggling-te-cl",
    rows: { 1: "A4" },
    name: "Transfer-Encoding with Content-Length is refused",
    description: "A request smuggling guard: 400 and close; nothing reaches an origin.",
    script: [
      [0, "start"],
      [1, c("POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")],
    ],
  },
  {
    file: "reject-origin-form",
    rows: { 1: "A4" },
    name: "Origin-form target is refused",
    description: "A forward proxy needs an absolute URI; 400 with Connection: close.",
    script: [
      [0, "start"],
      [1, c("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")],
    ],
  },
  {
    file: "reject-empty-label",
    rows: { 1: "A4" },
    name: "A host name with an empty label is refused",
    description:
      "internal.test.. would slip past a rule on internal.test (resolvers accept the name): 400 before anything is dialled (docs/design.md §6.1).",
    script: [
      [0, "start"],
      [1, c("CONNECT internal.test..:443 HTTP/1.1\r\nHost: internal.test..:443\r\n\r\n")],
    ],
  },
  {
    file: "host-trailing-dot",
    rows: { 1: "A6", 2: "C4" },
    name: "One trailing dot is dropped from a host name",
    description:
      "Internal.Test. is the name internal.test: the Connect (which every name rule judges) and the Host written to the origin carry it lower-cased, without the dot.",
    script: [
      [0, "start"],
      [1, c("GET http://Internal.Test.:8080/x HTTP/1.1\r\nHost: internal.test.\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
    ],
  },
  {
    file: "reject-head-too-large",
    rows: { 1: "A16", 2: "A3" },
    name: "Request head over the limit",
    description: "431 as soon as the head passes maxHeadBytes without ending.",
    limits: { maxHeadBytes: 128 },
    script: [
      [0, "start"],
      [1, c("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n")],
      [2, c(`X-Big: ${"x".repeat(200)}\r\n`)],
    ],
  },
  {
    file: "unresolved-502",
    rows: { 1: "A6", 2: "C5" },
    name: "Unresolved name gives 502",
    description: "ConnectFailed(unresolved) answers 502 with a text body and closes the client.",
    script: [
      [0, "start"],
      [1, c("GET http://nowhere.invalid/ HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n")],
      [2, ev({ _tag: "ConnectFailed", reason: "unresolved", message: "ENOTFOUND" })],
    ],
  },
  {
    file: "connect-timeout-504",
    rows: { 1: "A5", 2: "C7" },
    name: "Connect timeout gives 504",
    description: "The connect deadline fires before Connected: 504, the pending origin socket is closed.",
    limits: { connectTimeout: 1000 },
    script: [
      [0, "start"],
      [1, c("CONNECT slow.example:443 HTTP/1.1\r\nHost: slow.example:443\r\n\r\n")],
      [1001, ev({ _tag: "Timeout" })],
    ],
  },
  {
    file: "slowloris-408",
    rows: { 1: "A16", 2: "A16", 3: "A10" },
    name: "A head that trickles in too slowly gets 408",
    description: "The head deadline starts at the head's first byte and does not move with later bytes.",
    limits: { headTimeout: 5000 },
    script: [
      [0, "start"],
      [100, c("GET http://a.example/ HTTP/1.1\r\n")],
      [3000, c("Host: a")],
      [5100, ev({ _tag: "Timeout" })],
    ],
  },
  {
    file: "tunnel-backpressure",
    rows: { 1: "A5", 2: "C21", 3: "T2", 4: "T9", 5: "T10", 6: "T7" },
    name: "Backpressure in a tunnel",
    description: "A full client buffer pauses reading from the origin until it drains.",
    script: [
      [0, "start"],
      [1, c("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, o("bulk")],
      [3, ev({ _tag: "Blocked", side: "client" })],
      [4, ev({ _tag: "Drained", side: "client" })],
      [5, ev({ _tag: "Errored", side: "client", message: "ECONNRESET" })],
    ],
  },
  {
    file: "retry-reused-origin",
    rows: { 1: "A6", 2: "C20", 3: "F18", 4: "C20", 5: "F6+F9" },
    name: "A reused origin connection closed under a GET is retried once",
    description:
      "The origin closed the pooled connection as the request went out: no byte came back, the request is idempotent without a body, so it is sent again on a fresh connection instead of answering 502.",
    script: [
      [0, "start"],
      [1, c("GET http://a.example/r HTTP/1.1\r\nHost: a.example\r\n\r\n")],
      [1, ev({ _tag: "Connected", reused: true })],
      [2, ev({ _tag: "Ended", side: "origin" })],
      [3, ev({ _tag: "Connected" })],
      [4, o("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
    ],
  },
  {
    file: "interim-100-continue",
    rows: { 1: "A6", 2: "C20", 3: "F4", 4: "F1", 5: "F9", 6: "S1" },
    name: "100 Continue is forwarded before the final response",
    description: "Expect: 100-continue is end-to-end; the 1xx goes to the HTTP/1.1 client, then the final response.",
    script: [
      [0, "start"],
      [1, c("PUT http://a.example/f HTTP/1.1\r\nHost: a.example\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 100 Continue\r\n\r\n")],
      [4, c("data")],
      [5, o("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
      [6, "shutdown"],
    ],
  },
  {
    file: "connect-denied-403",
    rows: { 1: "A5", 2: "C11" },
    name: "A destination the policy denies gets 403",
    description:
      "The CONNECT's numeric host 2130706433 is normalised to 127.0.0.1 in Connect (marked tunnel); the runtime's policy answers ConnectFailed(denied) without dialling; 403 with the policy's sentence as the body, logged as denied, the client closed.",
    script: [
      [0, "start"],
      [1, c("CONNECT 2130706433:22 HTTP/1.1\r\nHost: 2130706433:22\r\n\r\n")],
      [
        2,
        ev({
          _tag: "ConnectFailed",
          reason: "denied",
          message: "destination 127.0.0.1:22 denied: loopback (allow it with --allow-to 127.0.0.0/8:22)",
        }),
      ],
    ],
  },
  {
    file: "reject-tls-client-hello",
    rows: { 1: "A12" },
    name: "A TLS ClientHello on the plain proxy port is refused at its first byte",
    description:
      "A client configured with https:// for this plain HTTP proxy sends a TLS record (0x16 0x03 ...), never a line end. 0x16 cannot start a method: 400 at once, whose body says to use http:// in the proxy URL, and close; the log counts the one byte that decided it.",
    script: [
      [0, "start"],
      [1, c("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")],
    ],
  },
  {
    file: "reject-impossible-byte-split",
    rows: { 1: "A16", 2: "A12", 3: "X1" },
    name: "A control byte in the request-target is refused at that byte, before the line ends",
    description:
      "The line arrives in pieces; the piece with the impossible byte gets the 400, later bytes are never read. The same bytes in one piece give the same answer and the same byte count.",
    script: [
      [0, "start"],
      [1, c("GET http://a.exa")],
      [2, c("mple/\x01x HT")],
      [3, c("TP/1.1\r\n")],
    ],
  },
  {
    file: "canonical-content-length",
    rows: { 1: "A6+C1", 2: "C4", 3: "F6+F9", 4: "A7" },
    name: "Content-Length goes out as one canonical field",
    description:
      "A list of equal values (`3, 3`) or leading zeros (`0003`) is legal to receive but reaches the next hop as one `Content-Length: 3`, in both directions, so no hop downstream has to agree with us on how to read it.",
    script: [
      [0, "start"],
      [1, c("POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3, 3\r\n\r\nabc")],
      [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 200 OK\r\nContent-Length: 0002\r\n\r\nok")],
      [4, ev({ _tag: "Ended", side: "client" })],
    ],
  },
  {
    file: "canonical-transfer-encoding",
    rows: { 1: "A6+C1", 2: "C4", 3: "F6+F9", 4: "A7" },
    name: "Transfer-Encoding goes out as one canonical field; underscore spellings are dropped",
    description:
      "`transfer-encoding: Chunked` reaches the next hop as `Transfer-Encoding: chunked`, in both directions; `Transfer_Encoding` and `Content_Length` never reach it (CGI-style servers read them as the framing fields, docs/design.md §6.3 step 4).",
    script: [
      [0, "start"],
      [
        1,
        c(
          "POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\ntransfer-encoding: Chunked\r\nContent_Length: 99\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
      ],
      [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: chunked\r\nTransfer_Encoding: identity\r\n\r\n2\r\nok\r\n0\r\n\r\n")],
      [4, ev({ _tag: "Ended", side: "client" })],
    ],
  },
  {
    file: "reject-chunked-to-http10",
    rows: { 1: "A6", 2: "C20", 3: "F21" },
    name: "A chunked response to an HTTP/1.0 request is a 502",
    description:
      "An HTTP/1.0 client cannot decode chunked coding and the origin must not send it (RFC 9112 §6.1): 502 instead of bytes the client would misread.",
    script: [
      [0, "start"],
      [1, c("GET http://a.example/ HTTP/1.0\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")],
    ],
  },
  {
    file: "interim-responses-capped",
    rows: { 1: "A6", 2: "C20", 3: "F4", 4: "F20" },
    name: "More than 10 interim responses for one request is a 502",
    description: "Ten 1xx heads are forwarded; the eleventh ends the exchange with a 502 (a final response may still follow interim ones).",
    script: [
      [0, "start"],
      [1, c("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, o("HTTP/1.1 103 Early Hints\r\n\r\n".repeat(10))],
      [4, o("HTTP/1.1 102 Processing\r\n\r\n")],
    ],
  },
  {
    file: "chunk-extensions-dropped",
    rows: { 1: "A6", 2: "C20", 3: "F1", 4: "F35", 5: "F1", 6: "F40" },
    name: "Chunk extensions are validated, then dropped",
    description:
      "Extensions follow the RFC 9112 §7.1.1 grammar (token names, token or quoted-string values); valid ones are dropped with the BWS before them, so the origin gets `size CRLF`. A size line split across reads is held back until its CRLF and then sent as one piece.",
    script: [
      [0, "start"],
      [1, c("POST http://a.example/up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, c('5;a=b;q="x y"\r\nhello\r\n00')],
      [4, c("3 ;z\r")],
      [5, c("\nabc\r\n0;last\r\n\r\n")],
      [6, o("HTTP/1.1 204 No Content\r\n\r\n")],
    ],
  },
  {
    file: "reject-chunk-extension-empty",
    rows: { 1: "A6", 2: "C20", 3: "F1", 4: "F3" },
    name: "An empty chunk extension is refused before any byte of its line reaches the origin",
    description:
      "`2;` has an empty extension name: 400 at the CR (no response has begun), and the origin got the valid chunk before it, not a byte of the bad line.",
    script: [
      [0, "start"],
      [1, c("POST http://a.example/up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n")],
      [2, ev({ _tag: "Connected" })],
      [3, c("1\r\na\r\n2;")],
      [4, c("\r\nab\r\n0\r\n\r\n")],
    ],
  },
  {
    file: "trailers-forbidden-dropped",
    rows: { 1: "A6+C1", 2: "C4", 3: "F6+F9" },
    name: "Trailer fields that must not be trailers are dropped, both directions",
    description:
      "RFC 9110 §6.5.1: framing (Content-Length, Transfer-Encoding), routing (Host), hop-by-hop and authentication fields are not forwarded in trailers; other trailer fields are.",
    script: [
      [0, "start"],
      [
        1,
        c(
          "POST http://a.example/up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nContent-Length: 99\r\nX-Checksum: 1\r\nHost: evil.example\r\n\r\n",
        ),
      ],
      [2, ev({ _tag: "Connected" })],
      [
        3,
        o(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nTransfer-Encoding: chunked\r\nServer-Timing: db;dur=1\r\nConnection: close\r\n\r\n",
        ),
      ],
    ],
  },
  {
    file: "upstream-proxy",
    rows: { 1: "A6", 2: "UP1", 3: "F6+F9", 4: "A5", 5: "UP2" },
    name: "Plain HTTP through a parent proxy, then a parent that refuses a CONNECT",
    description:
      "Connected.upstream: the request goes to the parent in absolute-form with our Proxy-Authorization (the client's is dropped); the parent's connection is released as reusable. Then a CONNECT (Connect with tunnel) that the parent refused: ConnectFailed(upstream) is a 502 naming the parent and its answer.",
    script: [
      [0, "start"],
      [1, c("GET http://a.example:8080/p?q=1 HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n\r\n")],
      [2, ev({ _tag: "Connected", upstream: { proxy: "10.0.0.1:3128", authorization: "Basic dXNlcjpwYXNz" } })],
      [3, o("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
      [4, c("CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n")],
      [5, ev({ _tag: "ConnectFailed", reason: "upstream", message: "upstream proxy 10.0.0.1:3128 answered 403 Forbidden" })],
    ],
  },
  {
    file: "proxy-auth-407-retry",
    rows: { 1: "U1", 2: "U3", 3: "U1", 4: "U2", 5: "C21", 6: "T3", 7: "T5" },
    name: "Proxy authentication: 407, then the retry on the same connection",
    description:
      "With authentication required, a CONNECT without credentials is answered 407 with the Basic challenge and the connection stays open; the retry carries Proxy-Authorization, which the runtime accepts, and only then is the origin dialled. The user is in the access record.",
    auth: true,
    script: [
      [0, "start"],
      [1, c("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")],
      [2, ev({ _tag: "AuthenticationFailed", reason: "missing", message: "no credentials" })],
      [3, c("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n")],
      [4, ev({ _tag: "Authenticated", user: "alice" })],
      [5, ev({ _tag: "Connected" })],
      [6, ev({ _tag: "Ended", side: "client" })],
      [7, ev({ _tag: "Ended", side: "origin" })],
    ],
  },
  {
    file: "proxy-auth-407-close-with-body",
    rows: { 1: "U1+U7", 2: "U4" },
    name: "Proxy authentication: a refused POST with a body closes",
    description:
      "The request body was not read (it never goes anywhere), so the connection cannot carry another request: 407 with Connection: close, and nothing reaches an origin.",
    auth: true,
    script: [
      [0, "start"],
      [
        1,
        c("POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\nProxy-Authorization: Basic bWFsbG9yeTp4\r\nContent-Length: 3\r\n\r\nabc"),
      ],
      [2, ev({ _tag: "AuthenticationFailed", reason: "invalid", message: "wrong password" })],
    ],
  },
]

/** The rows of the transition table whose columns a step matches (`VECTORS_SUGGEST=1`: a help to name them). */
const rowsOf = (trigger: string, from: PostmanState, to: PostmanState, actions: ReadonlyArray<Action>): string[] => {
  const found: string[] = []
  const extend = (chain: Transition[]): void => {
    if (chain.length > 0 && chainMismatch(chain, trigger, from, to, actions) === undefined) found.push(chain.map((t) => t.id).join("+"))
    if (chain.length === 3) return
    const at = chain.at(-1)?.to ?? from
    const on = chain.some((t) => t.to === "AwaitingHead" && t.from !== "AwaitingHead") ? ["Received(client)", trigger] : [trigger]
    for (const t of transitions) {
      if (t.from === at && on.some((e) => triggersOf(t).includes(e)) && (chain.length === 0 || !isIgnored(t))) extend([...chain, t])
    }
  }
  extend([])
  return found.length > 0 ? found : [`none: ${actions.map(describe).join(", ")}`]
}

/** Replays a script on a fresh Postman and writes its vector; `named` names the row of some steps explicitly (checked). */
const record = (
  file: string,
  meta: { name: string; description: string; limits?: Partial<Limits>; auth?: boolean; via?: string },
  script: ReadonlyArray<{ readonly now: number; readonly what: Event | "start" | "shutdown" | "abort" }>,
  named: ReadonlyMap<number, ReadonlyArray<string>> = new Map(),
): void => {
  const limits = { ...defaultLimits, ...meta.limits }
  const via = meta.via ?? "hctunnel"
  const postman = new Postman({ limits, via, auth: meta.auth === true })
  const steps: Step[] = script.map(({ now, what }, index) => {
    const from = postman.state
    const actions =
      what === "start"
        ? postman.start(now)
        : what === "shutdown"
          ? postman.shutdown(now)
          : what === "abort"
            ? postman.abort(now, "vector")
            : postman.handle(what, now)
    const rowIds = named.get(index)
    if (rowIds !== undefined) {
      const rows = rowIds.map((id) => transitions.find((t) => t.id === id) ?? fail(`${file}: no row ${id}`))
      const why = chainMismatch(rows, triggerOf(what), from, postman.state, actions)
      if (why !== undefined) throw new Error(`${file}: step ${index} does not match rows ${rowIds.join(" ")}: ${why}`)
    }
    if (process.env["VECTORS_SUGGEST"] !== undefined && rowIds === undefined) {
      console.log(
        `${file} step ${index} ${triggerOf(what)} ${from}->${postman.state}: ${rowsOf(triggerOf(what), from, postman.state, actions).join(" ")}`,
      )
    }
    const rows = rowIds === undefined ? {} : { rows: rowIds }
    const expect = actions.map(actionToJson)
    return typeof what === "string" ? { now, call: what, ...rows, expect } : { now, event: eventToJson(what), ...rows, expect }
  })
  const rows = [...new Set(steps.flatMap((step) => step.rows ?? []))].sort(byRowId)
  const vector: Vector = {
    name: meta.name,
    description: meta.description,
    rows,
    limits: meta.limits ?? {},
    via,
    ...(meta.auth === true ? { auth: true } : {}),
    steps,
  }
  mkdirSync(new URL(".", new URL(`../test/vectors/${file}.json`, import.meta.url)), { recursive: true })
  writeFileSync(new URL(`../test/vectors/${file}.json`, import.meta.url), formatVector(vector))
}

const byRowId = (a: string, b: string): number => {
  const [, pa = "", na = "0"] = /^([A-Z]+)(\d+)$/.exec(a) ?? []
  const [, pb = "", nb = "0"] = /^([A-Z]+)(\d+)$/.exec(b) ?? []
  return pa === pb ? Number(na) - Number(nb) : pa < pb ? -1 : 1
}

for (const s of scenarios) {
  const script = s.script.map(([now, what]) => ({ now, what }))
  record(s.file, s, script, new Map(Object.entries(s.rows).map(([index, chain]) => [Number(index), chain.split("+")])))
}

// One vector per row of the transition table, from the row's scenario (test/core/row-scenarios.ts).
rmSync(new URL("../test/vectors/rows/", import.meta.url), { recursive: true, force: true })
for (const row of transitions) {
  const scenario = rowScenarios[row.id]!
  const title = `${row.id}: ${row.from} --${row.event}--> ${row.to}`
  const description = `${row.when === "" ? "" : `${row.when}. `}The step marked ${row.id} is the row; the steps before it lead to ${row.from}${scenario.check === undefined ? "" : ", the steps after it check what the row promises"}.`
  if (scenario.setup !== undefined) {
    // Each event of an "ignored" row in turn, on one Postman: none of them changes anything.
    const h = scenario.setup()
    const at = h.script.length
    for (const trigger of scenario.events ?? triggersOf(row)) sampleTrigger(h, trigger)
    // Every delivered trigger is one the row ignores: named (and so checked) on each step.
    const named = new Map(h.script.map((_, i) => [i, [row.id]] as const).slice(at))
    record(`rows/${row.id}`, { name: title, description, ...h.options }, h.script, named)
    continue
  }
  const { h } = scenario.run!()
  const index = h.script.length - 1
  scenario.check?.(h)
  record(`rows/${row.id}`, { name: title, description, ...h.options }, h.script, new Map([[index, [row.id]]]))
}
console.log(`wrote ${scenarios.length} scenario vectors and ${transitions.length} row vectors`)
