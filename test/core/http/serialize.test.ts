import { describe, expect, it } from "vitest"
import { parseRequestHead } from "../../../src/core/http/request-head.ts"
import {
  fieldValues,
  hasToken,
  hostPort,
  isCanonicalLength,
  serializeRequestHead,
  serializeResponseHead,
  wantsClose,
} from "../../../src/core/http/serialize.ts"
import type { Field, HttpVersion, RequestHead, ResponseHead } from "../../../src/core/http/types.ts"
import { bytes, text } from "./helpers.ts"

const request = (head: string): RequestHead => {
  const r = parseRequestHead(bytes(head), { maxRequestLine: 8192, maxHeaders: 100 })
  if (!r.ok) throw new Error(r.rejection.reason)
  return r.value
}

const response = (status: number, headers: ReadonlyArray<Field>, version: HttpVersion = "1.1", reason = "OK"): ResponseHead => ({
  version,
  status,
  reason,
  headers,
})

// [rule, received head, keepUpgrade, forwarded head]
const requests: ReadonlyArray<readonly [string, string, boolean, string]> = [
  [
    "origin-form, Host from the target first, Via last",
    "GET http://Example.com/a?b HTTP/1.1\r\nUser-Agent: t\r\nHost: other\r\nAccept: */*\r\n\r\n",
    false,
    "GET /a?b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "a non-default port is kept in Host",
    "GET http://a:8080 HTTP/1.1\r\nHost: a\r\n\r\n",
    false,
    "GET / HTTP/1.1\r\nHost: a:8080\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "IPv6 in brackets, HTTP/1.0 gets Via 1.0 and stays HTTP/1.0 (so the origin cannot answer chunked)",
    "GET http://[::1]:81/ HTTP/1.0\r\n\r\n",
    false,
    "GET / HTTP/1.0\r\nHost: [::1]:81\r\nVia: 1.0 hct\r\n\r\n",
  ],
  [
    "Content-Length as a list of equal values becomes one canonical field",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\ncontent-length: 3, 3\r\nX: y\r\nContent-Length: 3\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX: y\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "Content-Length with leading zeros becomes canonical",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0003\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "hop-by-hop fields are removed",
    "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nProxy-Connection: keep-alive\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\nProxy-Authorization: Basic x\r\nX: y\r\n\r\n",
    false,
    "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "fields named by Connection are removed, any case",
    "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, close\r\nx-secret: 1\r\nX-Kept: 2\r\n\r\n",
    false,
    "GET / HTTP/1.1\r\nHost: a\r\nX-Kept: 2\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "Connection cannot remove the body framing",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\nConnection: content-length, transfer-encoding\r\nContent-Length: 3\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "Transfer-Encoding is kept",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nVia: 1.1 hct\r\n\r\n",
  ],
  // Framing fields in one canonical spelling; their underscore spellings dropped (issue 17, item 15).
  [
    "Transfer-Encoding is written canonically, name and codings",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\ntransfer-ENCODING: Chunked\r\nX: y\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX: y\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "several Transfer-Encoding fields become one, in place of the first",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\nX: y\r\nTRANSFER-ENCODING: ,chunked\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX: y\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "a canonical Content-Length keeps its value but gets the canonical name",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\ncontent-length: 3\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "underscore spellings of the fields the proxy interprets are dropped; other underscores pass",
    "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer_Encoding: chunked\r\ncontent_length: 99\r\nProxy_Connection: x\r\nVIA_: z\r\nX_Api_Key: k\r\n\r\n",
    false,
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nVIA_: z\r\nX_Api_Key: k\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "Via is appended to the received Via values",
    "GET http://a/ HTTP/1.1\r\nHost: a\r\nVia: 1.1 first\r\nX: y\r\nVia: 1.0 second\r\n\r\n",
    false,
    "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nVia: 1.1 first, 1.0 second, 1.1 hct\r\n\r\n",
  ],
  [
    "keepUpgrade keeps Upgrade and re-adds Connection: upgrade",
    "GET http://a/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
    true,
    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nVia: 1.1 hct\r\nConnection: upgrade\r\n\r\n",
  ],
  [
    "keepUpgrade without an Upgrade field adds nothing",
    "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    true,
    "GET / HTTP/1.1\r\nHost: a\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "obs-text survives as the same bytes",
    "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: caf\xe9\xff\r\n\r\n",
    false,
    "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\xff\r\nVia: 1.1 hct\r\n\r\n",
  ],
]

describe("serializeRequestHead", () => {
  it.each(requests)("%s", (_rule, received, keepUpgrade, forwarded) => {
    expect(text(serializeRequestHead(request(received), { via: "hct", keepUpgrade }))).toBe(forwarded)
  })
})

// [rule, head, options, forwarded head]
const responses: ReadonlyArray<readonly [string, ResponseHead, { close: boolean; keepUpgrade: boolean }, string]> = [
  [
    "status line, fields, Via",
    response(200, [["Content-Length", "2"]]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "close adds Connection: close",
    response(200, [
      ["Connection", "keep-alive"],
      ["Keep-Alive", "timeout=5"],
    ]),
    { close: true, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nVia: 1.1 hct\r\nConnection: close\r\n\r\n",
  ],
  [
    "an HTTP/1.0 response is sent as HTTP/1.1 with Via 1.0",
    response(404, [], "1.0", "Not Found"),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 404 Not Found\r\nVia: 1.0 hct\r\n\r\n",
  ],
  ["an empty reason", response(200, [], "1.1", ""), { close: false, keepUpgrade: false }, "HTTP/1.1 200 \r\nVia: 1.1 hct\r\n\r\n"],
  [
    "Proxy-Authenticate and Connection-named fields are removed",
    response(
      407,
      [
        ["Proxy-Authenticate", "Basic"],
        ["Connection", "x"],
        ["X", "1"],
        ["Y", "2"],
      ],
      "1.1",
      "Auth",
    ),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 407 Auth\r\nY: 2\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "101 with keepUpgrade",
    response(
      101,
      [
        ["Connection", "upgrade"],
        ["Upgrade", "websocket"],
        ["Sec-WebSocket-Accept", "a"],
      ],
      "1.1",
      "Switching Protocols",
    ),
    { close: false, keepUpgrade: true },
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\nVia: 1.1 hct\r\nConnection: upgrade\r\n\r\n",
  ],
  [
    "Upgrade dropped without keepUpgrade",
    response(200, [["Upgrade", "h2c"]]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "a repeated Content-Length becomes one canonical field",
    response(200, [
      ["content-length", "007"],
      ["Content-Length", "7"],
    ]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "an invalid Content-Length the framing ignored (HEAD, 304) goes as received",
    response(304, [["Content-Length", "x"]]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 304 OK\r\nContent-Length: x\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "a response's Transfer-Encoding fields become one canonical field, codings in order",
    response(200, [
      ["transfer-encoding", "GZIP"],
      ["X", "1"],
      ["Transfer-Encoding", "Chunked"],
    ]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX: 1\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "a response's underscore spelling of a framing field is dropped",
    response(200, [
      ["Content-Length", "2"],
      ["Transfer_Encoding", "chunked"],
    ]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "Via appended to the origin's Via",
    response(200, [["Via", "1.1 cdn"]]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nVia: 1.1 cdn, 1.1 hct\r\n\r\n",
  ],
  [
    "an equal Content-Length list becomes one number",
    response(200, [["Content-Length", "3, 3"]]),
    { close: false, keepUpgrade: false },
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nVia: 1.1 hct\r\n\r\n",
  ],
  [
    "a 101 to a request that closes after it: Connection lists both",
    response(101, [["Upgrade", "websocket"]], "1.1", "Switching Protocols"),
    { close: true, keepUpgrade: true },
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nVia: 1.1 hct\r\nConnection: upgrade, close\r\n\r\n",
  ],
]

describe("serializeResponseHead", () => {
  it.each(responses)("%s", (_rule, head, opts, forwarded) => {
    expect(text(serializeResponseHead(head, { via: "hct", ...opts }))).toBe(forwarded)
  })
})

describe("serializeRequestHead: targets", () => {
  const head = (target: RequestHead["target"]): RequestHead => ({ method: "CONNECT", rawTarget: "x", target, version: "1.1", headers: [] })
  it.each([
    // CONNECT never reaches serializeRequestHead in the Postman; if it did, authority-form keeps its port.
    [{ form: "authority", host: "a.test", port: 80 }, undefined, "CONNECT a.test:80 HTTP/1.1\r\nHost: a.test:80\r\n"],
    [{ form: "authority", host: "::1", port: 443 }, undefined, "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n"],
    [{ form: "absolute", host: "a.test", port: 80, path: "/x" }, undefined, "CONNECT /x HTTP/1.1\r\nHost: a.test\r\n"],
    [{ form: "absolute", host: "a.test", port: 80, path: "/x" }, {}, "CONNECT http://a.test/x HTTP/1.1\r\nHost: a.test\r\n"],
    [
      { form: "absolute", host: "::1", port: 8080, path: "/" },
      { authorization: "Basic eA==" },
      "CONNECT http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\nProxy-Authorization: Basic eA==\r\n",
    ],
  ] as const)("%j, upstream %j", (target, upstream, start) => {
    expect(text(serializeRequestHead(head(target), { via: "hct", keepUpgrade: false, upstream }))).toBe(`${start}Via: 1.1 hct\r\n\r\n`)
  })
  it.each([
    ["a.test", 443, "a.test:443"],
    ["::1", 8443, "[::1]:8443"],
    ["10.0.0.1", 1, "10.0.0.1:1"],
  ] as const)("hostPort(%s, %i) is %s", (host, port, expected) => {
    expect(hostPort(host, port)).toBe(expected)
  })
})

/** The fast path of Content-Length forwarding: yes exactly for a value the slow path would leave as it is. */
describe("isCanonicalLength", () => {
  it.each([
    ["0", true],
    ["7", true],
    ["10", true],
    ["1234567890123456", true],
    ["9", true],
    ["", false],
    ["00", false],
    ["07", false],
    ["12345678901234567", false],
    ["3, 3", false],
    ["3,3", false],
    [" 3", false],
    ["3 ", false],
    ["/", false],
    [":", false],
    ["1a", false],
    ["-1", false],
  ] as const)("%j: %s", (value, expected) => {
    expect(isCanonicalLength(value)).toBe(expected)
  })
})

describe("wantsClose", () => {
  const cases: ReadonlyArray<readonly [string, HttpVersion, ReadonlyArray<Field>, boolean]> = [
    ["HTTP/1.1 keeps alive by default", "1.1", [], false],
    ["HTTP/1.1 with Connection: close", "1.1", [["Connection", "close"]], true],
    ["Connection: close among other tokens, any case", "1.1", [["connection", "Upgrade, CLOSE"]], true],
    ["HTTP/1.0 closes by default", "1.0", [], true],
    ["HTTP/1.0 with Connection: keep-alive", "1.0", [["Connection", "Keep-Alive"]], false],
    [
      "HTTP/1.0 with keep-alive and close",
      "1.0",
      [
        ["Connection", "keep-alive"],
        ["Connection", "close"],
      ],
      true,
    ],
    ["a token that only contains close", "1.1", [["Connection", "closed"]], false],
  ]
  it.each(cases)("%s", (_rule, version, headers, expected) => {
    expect(wantsClose(version, headers)).toBe(expected)
  })
})

describe("field lookups", () => {
  const headers: ReadonlyArray<Field> = [
    ["Accept", "a"],
    ["X", "1"],
    ["accept", "b, c"],
  ]
  it("fieldValues is case-insensitive and keeps order", () => {
    expect(fieldValues(headers, "ACCEPT")).toEqual(["a", "b, c"])
    expect(fieldValues(headers, "missing")).toEqual([])
  })
  it("hasToken looks inside comma lists across fields", () => {
    expect(hasToken(headers, "accept", "C")).toBe(true)
    expect(hasToken(headers, "accept", "d")).toBe(false)
    expect(hasToken(headers, "x", "1")).toBe(true)
  })
})
