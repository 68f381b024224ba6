/**
 * One scenario per row of the transition table (src/core/transitions.ts): `run` drives a Postman into
 * the row's `from` state and returns the actions of the one step the row is about; `check` (optional)
 * asserts what the row's notes say beyond action tags. Rows that name several events and do nothing
 * ("ignored" rows) have a `setup` instead: each of their events is delivered in turn and must change
 * nothing. Used by test/core/transitions.test.ts, and by scripts/vectors.ts, which turns each scenario
 * into the conformance vector of its row.
 */
import { expect } from "vitest"
import type { Action } from "../../src/core/actions.ts"
import { defaultLimits } from "../../src/core/limits.ts"
import { connect, connectFailed, Harness, latin1, originErrored } from "./harness.ts"

const connectHead = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
const getHead = "GET http://example.com/page HTTP/1.1\r\nHost: example.com\r\n\r\n"
const postHead = (length: number) => `POST http://example.com/upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: ${length}\r\n\r\n`
const chunkedHead = "POST http://example.com/upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"

const connecting = (head = getHead) => {
  const h = new Harness({ maxBufferedBytes: 16 })
  h.client(head)
  expect(h.postman.state).toBe("Connecting")
  return h
}
const forwarding = (head = getHead) => {
  const h = connecting(head)
  connect(h)
  expect(h.postman.state).toBe("Forwarding")
  return h
}
const tunnel = () => {
  const h = connecting(connectHead)
  connect(h)
  expect(h.postman.state).toBe("Tunnel")
  return h
}
const respondingWithBody = () => {
  const h = forwarding()
  h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
  return h
}

/** Proxy authentication on: a head was read and its credentials are being checked. */
const authorizing = (head = getHead) => {
  const h = new Harness({ maxBufferedBytes: 16 }, "hctunnel", true)
  h.client(head)
  expect(h.postman.state).toBe("Authorizing")
  return h
}
const denied = (h: Harness) => h.send({ _tag: "AuthenticationFailed", reason: "invalid", message: "wrong password for alice" })
const credentials = "Basic YWxpY2U6c2VjcmV0" // alice:secret
const getWithCredentials = `GET http://example.com/page HTTP/1.1\r\nHost: example.com\r\nProxy-Authorization: ${credentials}\r\n\r\n`

export interface Scenario {
  readonly run?: () => { h: Harness; step: ReadonlyArray<Action> }
  readonly check?: (h: Harness) => void
  /** An "ignored" row: a Postman in the row's state, to which each of the row's events is delivered. */
  readonly setup?: () => Harness
  /** The events to deliver to `setup`'s Postman (default: every event the row names). */
  readonly events?: ReadonlyArray<string>
}

/** A concrete event (or call) for each trigger of the table, for the rows that ignore it. */
export const sampleTrigger = (h: Harness, trigger: string): ReadonlyArray<Action> => {
  const m = /^(\w+)\((client|origin)\)$/.exec(trigger)
  const side = m?.[2] as "client" | "origin" | undefined
  switch (m?.[1] ?? trigger) {
    case "Received":
      return h.send({ _tag: "Received", side: side!, bytes: latin1("stale") })
    case "Ended":
      return h.send({ _tag: "Ended", side: side! })
    case "Errored":
      return h.send({ _tag: "Errored", side: side!, message: "ECONNRESET" })
    case "Blocked":
      return h.send({ _tag: "Blocked", side: side! })
    case "Drained":
      return h.send({ _tag: "Drained", side: side! })
    case "Connected":
      return h.send({ _tag: "Connected" })
    case "ConnectFailed":
      return h.send({ _tag: "ConnectFailed", reason: "refused", message: "ECONNREFUSED" })
    case "Timeout":
      return h.send({ _tag: "Timeout" })
    case "Authenticated":
      return h.send({ _tag: "Authenticated", user: "alice" })
    case "AuthenticationFailed":
      return h.send({ _tag: "AuthenticationFailed", reason: "invalid", message: "wrong password" })
    case "shutdown()":
      return h.shutdown()
    case "abort()":
      return h.abort()
  }
  throw new Error(`no sample for ${trigger}`)
}

const status = (code: number) => (h: Harness) => expect(h.clientText()).toMatch(new RegExp(`^HTTP/1\\.1 ${code} `, "m"))

export const scenarios: Record<string, Scenario> = {
  A1: {
    run: () => {
      const h = respondingWithBody()
      h.fromOrigin("0123456789")
      expect(h.postman.state).toBe("AwaitingHead")
      h.fireDeadline() // the connect deadline, still armed: re-armed as the keep-alive deadline
      return { h, step: h.client("GET http://exa", 5) }
    },
    check: (h) => expect(h.deadline).toBe(h.now + 30_000),
  },
  A2: {
    run: () => {
      const h = new Harness({ maxRequestLine: 32 })
      return { h, step: h.client(`GET http://example.com/${"a".repeat(64)}`) }
    },
    check: status(414),
  },
  A3: {
    run: () => {
      const h = new Harness({ maxHeadBytes: 256 })
      return { h, step: h.client(`GET http://e/ HTTP/1.1\r\nHost: e\r\nX: ${"a".repeat(300)}\r\n`) }
    },
    check: status(431),
  },
  A4: {
    run: () => {
      const h = new Harness()
      return { h, step: h.client("GET /relative HTTP/1.1\r\nHost: e\r\n\r\n") }
    },
    check: status(400),
  },
  A5: {
    run: () => {
      const h = new Harness()
      return { h, step: h.client(connectHead) }
    },
    check: (h) => expect(h.connects).toEqual([{ host: "example.com", port: 443 }]),
  },
  A6: {
    run: () => {
      const h = new Harness()
      return { h, step: h.client(getHead) }
    },
    check: (h) => expect(h.connects).toEqual([{ host: "example.com", port: 80 }]),
  },
  A7: {
    run: () => {
      const h = new Harness()
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  A8: {
    run: () => {
      const h = new Harness()
      h.client("GET http://e")
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  A9: {
    run: () => {
      const h = new Harness()
      return { h, step: h.send({ _tag: "Errored", side: "client", message: "ECONNRESET" }) }
    },
  },
  A10: {
    run: () => {
      const h = new Harness()
      h.client("GET http://e")
      return { h, step: h.fireDeadline() }
    },
    check: status(408),
  },
  A11: {
    run: () => {
      const h = new Harness()
      return { h, step: h.fireDeadline() }
    },
    check: (h) => expect(h.clientText()).toBe(""),
  },

  A12: {
    run: () => {
      const h = new Harness()
      return { h, step: h.client("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") }
    },
    check: (h) => {
      status(400)(h)
      expect(h.clientText()).toMatch(/plain HTTP proxy/)
      expect(h.logs[0]?.bytesFromClient).toBe(1)
    },
  },

  C1: {
    run: () => {
      const h = connecting(postHead(8))
      return { h, step: h.client("12345678") }
    },
  },
  C2: {
    run: () => {
      const h = connecting(postHead(32))
      return { h, step: h.client("0123456789abcdef0123") }
    },
  },
  C3: {
    run: () => {
      const h = connecting(connectHead)
      h.client("hello")
      return { h, step: connect(h) }
    },
    check: (h) => {
      expect(h.clientText()).toBe("HTTP/1.1 200 Connection established\r\n\r\n")
      expect(h.originText()).toBe("hello")
    },
  },
  C4: {
    run: () => {
      const h = connecting(postHead(5))
      h.client("abcde")
      return { h, step: connect(h) }
    },
    check: (h) => expect(h.originText()).toMatch(/^POST \/upload HTTP\/1\.1\r\nHost: example\.com\r\n[\s\S]*\r\n\r\nabcde$/),
  },
  C5: {
    run: () => {
      const h = connecting()
      return { h, step: connectFailed(h, "unresolved") }
    },
    check: status(502),
  },
  C6: {
    run: () => {
      const h = connecting()
      return { h, step: connectFailed(h, "timeout") }
    },
    check: status(504),
  },
  C7: {
    run: () => {
      const h = connecting()
      return { h, step: h.fireDeadline() }
    },
    check: status(504),
  },
  C8: {
    run: () => {
      const h = connecting()
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  C9: {
    run: () => {
      const h = connecting(postHead(10))
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  C10: {
    run: () => {
      const h = connecting()
      return { h, step: h.send({ _tag: "Errored", side: "client", message: "ECONNRESET" }) }
    },
  },
  C11: {
    run: () => {
      const h = connecting(connectHead)
      h.markOrigin("closed")
      const message = "destination 127.0.0.1:443 denied: loopback (allow it with --allow-to 127.0.0.0/8:443)"
      return { h, step: h.send({ _tag: "ConnectFailed", reason: "denied", message }) }
    },
    check: (h) => {
      expect(h.clientText()).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/)
      expect(h.clientText()).toMatch(
        /\r\n\r\n403 Forbidden: destination 127\.0\.0\.1:443 denied: loopback \(allow it with --allow-to 127\.0\.0\.0\/8:443\)\n$/,
      )
      expect(h.logs.map((r) => [r.kind, r.status, r.outcome])).toEqual([["tunnel", 403, "denied"]])
    },
  },

  F1: {
    run: () => {
      const h = forwarding(postHead(10))
      return { h, step: h.client("12345") }
    },
  },
  F2: {
    run: () => {
      const h = forwarding()
      return { h, step: h.client("GET http://") }
    },
  },
  F3: {
    run: () => {
      const h = forwarding(chunkedHead)
      return { h, step: h.client("zz\r\n") }
    },
    check: status(400),
  },
  F4: {
    run: () => {
      const h = forwarding()
      return { h, step: h.fromOrigin("HTTP/1.1 100 Continue\r\n\r\n") }
    },
    check: (h) => expect(h.clientText()).toMatch(/^HTTP\/1\.1 100 Continue\r\n/),
  },
  F5: {
    run: () => {
      const h = forwarding("GET http://example.com/ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
      return { h, step: h.fromOrigin("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n") }
    },
    check: (h) => expect(h.clientText()).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*Upgrade: websocket/),
  },
  F6: {
    run: () => {
      const h = forwarding()
      return { h, step: h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n") }
    },
  },
  F7: {
    run: () => {
      const h = forwarding()
      return { h, step: h.fromOrigin("HTTP/1.1 abc\r\n\r\n") }
    },
    check: status(502),
  },
  F8: {
    run: () => {
      const h = respondingWithBody()
      return { h, step: h.fromOrigin("12345") }
    },
  },
  F9: {
    run: () => {
      const h = respondingWithBody()
      return { h, step: h.fromOrigin("0123456789") }
    },
  },
  F10: {
    run: () => {
      const h = forwarding("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
      h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
      return { h, step: h.fromOrigin("abc") }
    },
    check: (h) => expect(h.clientText()).toMatch(/\r\nConnection: close\r\n/),
  },
  F11: {
    run: () => {
      const h = forwarding()
      h.fromOrigin("HTTP/1.1 200 OK\r\n\r\nuntil close")
      return { h, step: h.send({ _tag: "Ended", side: "origin" }) }
    },
  },
  F12: {
    run: () => {
      const h = forwarding()
      return { h, step: h.send({ _tag: "Ended", side: "origin" }) }
    },
    check: status(502),
  },
  F13: {
    run: () => {
      const h = respondingWithBody()
      h.fromOrigin("123")
      return { h, step: h.send({ _tag: "Ended", side: "origin" }) }
    },
  },
  F14: {
    run: () => {
      const h = forwarding()
      return { h, step: originErrored(h) }
    },
    check: status(502),
  },
  F15: {
    run: () => {
      const h = forwarding()
      h.fireDeadline()
      return { h, step: h.fireDeadline() }
    },
    check: status(504),
  },
  F16: {
    run: () => {
      const h = forwarding()
      h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 5_000)
      return { h, step: h.fireDeadline() }
    },
  },
  F18: {
    run: () => {
      const h = connecting()
      connect(h, 0, true)
      return { h, step: h.send({ _tag: "Ended", side: "origin" }) }
    },
    check: (h) => {
      connect(h)
      expect(h.originText(1)).toMatch(/^GET \/page HTTP\/1\.1\r\n/)
      expect(h.connects).toHaveLength(2)
    },
  },
  F19: {
    run: () => {
      const h = connecting()
      connect(h, 0, true)
      return { h, step: originErrored(h) }
    },
    check: (h) => {
      expect(h.connects).toHaveLength(2)
      connect(h)
      h.send({ _tag: "Ended", side: "origin" })
      expect(h.clientText()).toMatch(/^HTTP\/1\.1 502 /)
    },
  },
  F20: {
    run: () => {
      const h = forwarding()
      for (let i = 0; i < 10; i++) h.fromOrigin("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
      return { h, step: h.fromOrigin("HTTP/1.1 100 Continue\r\n\r\n") }
    },
    check: (h) => {
      expect(h.clientText().match(/^HTTP\/1\.1 103 /gm)).toHaveLength(10)
      status(502)(h)
    },
  },
  F21: {
    run: () => {
      const h = forwarding("GET http://example.com/ HTTP/1.0\r\n\r\n")
      return { h, step: h.fromOrigin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n") }
    },
    check: (h) => {
      status(502)(h)
      expect(h.clientText()).not.toMatch(/abc/)
    },
  },
  F17: {
    run: () => {
      const h = forwarding()
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },

  T1: {
    run: () => {
      const h = tunnel()
      return { h, step: h.client("ping") }
    },
    check: (h) => expect(h.originText()).toBe("ping"),
  },
  T2: {
    run: () => {
      const h = tunnel()
      return { h, step: h.fromOrigin("pong") }
    },
    check: (h) => expect(h.clientText()).toMatch(/pong$/),
  },
  T3: {
    run: () => {
      const h = tunnel()
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  T4: {
    run: () => {
      const h = tunnel()
      return { h, step: h.send({ _tag: "Ended", side: "origin" }) }
    },
  },
  T5: {
    run: () => {
      const h = tunnel()
      h.send({ _tag: "Ended", side: "client" })
      return { h, step: h.send({ _tag: "Ended", side: "origin" }) }
    },
  },
  T6: {
    run: () => {
      const h = tunnel()
      return { h, step: originErrored(h) }
    },
  },
  T7: {
    run: () => {
      const h = tunnel()
      return { h, step: h.send({ _tag: "Errored", side: "client", message: "EPIPE" }) }
    },
  },
  T8: {
    run: () => {
      const h = tunnel()
      h.fireDeadline()
      return { h, step: h.fireDeadline() }
    },
  },
  T9: {
    run: () => {
      const h = tunnel()
      return { h, step: h.send({ _tag: "Blocked", side: "client" }) }
    },
  },
  T10: {
    run: () => {
      const h = tunnel()
      h.send({ _tag: "Blocked", side: "client" })
      return { h, step: h.send({ _tag: "Drained", side: "client" }) }
    },
  },
  T11: {
    run: () => {
      const h = tunnel()
      return { h, step: h.send({ _tag: "Blocked", side: "origin" }) }
    },
  },
  T12: {
    run: () => {
      const h = tunnel()
      h.send({ _tag: "Blocked", side: "origin" })
      return { h, step: h.send({ _tag: "Drained", side: "origin" }) }
    },
  },

  S1: {
    run: () => {
      const h = new Harness()
      return { h, step: h.shutdown() }
    },
  },
  S2: {
    run: () => {
      const h = forwarding()
      return { h, step: h.shutdown() }
    },
    check: (h) => {
      h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
      expect(h.clientText()).toMatch(/Connection: close/)
      expect(h.postman.closed).toBe(true)
    },
  },
  S3: {
    run: () => {
      const h = tunnel()
      return { h, step: h.abort() }
    },
    check: (h) => expect(h.logs.at(-1)?.outcome).toBe("shutdown"),
  },
  X1: {
    setup: () => {
      const h = new Harness()
      h.send({ _tag: "Ended", side: "client" })
      return h
    },
  },

  UP1: {
    run: () => {
      const h = connecting()
      h.markOrigin("open")
      return { h, step: h.send({ _tag: "Connected", upstream: { proxy: "10.0.0.1:3128", authorization: "Basic dTpw" } }) }
    },
    check: (h) =>
      expect(h.originText()).toMatch(
        /^GET http:\/\/example\.com\/page HTTP\/1\.1\r\nHost: example\.com\r\nProxy-Authorization: Basic dTpw\r\n/,
      ),
  },
  UP2: {
    run: () => {
      const h = connecting(connectHead)
      h.markOrigin("closed")
      return {
        h,
        step: h.send({
          _tag: "ConnectFailed",
          reason: "upstream",
          message: "upstream proxy 10.0.0.1:3128 answered 407 Proxy Authentication Required",
        }),
      }
    },
    check: (h) =>
      expect(h.clientText()).toMatch(
        /^HTTP\/1\.1 502 [\s\S]*upstream proxy 10\.0\.0\.1:3128 answered 407 Proxy Authentication Required\n$/,
      ),
  },
  UP3: {
    run: () => {
      const h = connecting()
      h.markOrigin("open")
      h.send({ _tag: "Connected", upstream: { proxy: "10.0.0.1:3128" } })
      return {
        h,
        step: h.fromOrigin(
          'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="p"\r\nContent-Length: 0\r\n\r\n',
        ),
      }
    },
    check: (h) => {
      expect(h.clientText()).toMatch(/^HTTP\/1\.1 502 [\s\S]*upstream proxy 10\.0\.0\.1:3128 answered 407 Proxy Authentication Required\n$/)
      expect(h.clientText()).not.toMatch(/Proxy-Authenticate/i)
    },
  },
  UP4: {
    run: () => {
      const h = connecting()
      h.markOrigin("closed")
      const message = "the proxy's route hook did not answer within 5000 ms"
      return { h, step: h.send({ _tag: "ConnectFailed", reason: "unrouted", message }) }
    },
    check: (h) => {
      expect(h.clientText()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/)
      expect(h.clientText()).toMatch(/\r\n\r\n503 Service Unavailable: the proxy's route hook did not answer within 5000 ms\n$/)
      expect(h.logs.map((r) => [r.kind, r.status, r.outcome])).toEqual([["http", 503, "origin-error"]])
    },
  },
  U1: {
    run: () => {
      const h = new Harness({}, "hctunnel", true)
      return { h, step: h.client(getWithCredentials) }
    },
    check: (h) => {
      expect(h.authentications).toEqual([credentials])
      expect(h.connects).toEqual([])
      expect(h.deadline).toBe(h.now + 10_000)
    },
  },
  U2: {
    run: () => {
      const h = authorizing(getWithCredentials)
      return { h, step: h.send({ _tag: "Authenticated", user: "alice" }) }
    },
    check: (h) => {
      expect(h.connects).toEqual([{ host: "example.com", port: 80 }])
      connect(h)
      expect(h.originText()).not.toMatch(/proxy-authorization/i) // hop-by-hop: never reaches the origin
      h.fromOrigin("HTTP/1.1 204 No Content\r\n\r\n")
      expect(h.logs.at(-1)).toMatchObject({ status: 204, outcome: "ok", user: "alice" })
    },
  },
  U3: {
    run: () => {
      const h = authorizing()
      return { h, step: denied(h) }
    },
    check: (h) => {
      expect(h.authentications).toEqual([undefined])
      expect(h.clientText()).toMatch(
        /^HTTP\/1\.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="hctunnel", charset="UTF-8"\r\n/,
      )
      expect(h.clientText()).not.toMatch(/Connection: close/)
      expect(h.logs.at(-1)).toMatchObject({ status: 407, outcome: "unauthenticated", method: "GET" })
      // The retry on the same connection is checked again.
      h.client(getWithCredentials)
      expect(h.postman.state).toBe("Authorizing")
      expect(h.authentications).toEqual([undefined, credentials])
    },
  },
  U4: {
    run: () => {
      const h = authorizing(postHead(5))
      h.client("abcde")
      return { h, step: denied(h) }
    },
    check: (h) => {
      expect(h.clientText()).toMatch(/^HTTP\/1\.1 407 [\s\S]*Connection: close\r\n/)
      expect(h.connects).toEqual([])
    },
  },
  U5: {
    run: () => {
      const h = authorizing(connectHead)
      return { h, step: h.send({ _tag: "AuthenticationFailed", reason: "unavailable", message: "the verifier is overloaded" }) }
    },
    check: status(503),
  },
  U6: {
    run: () => {
      const h = authorizing(connectHead)
      return { h, step: h.fireDeadline() }
    },
    check: (h) => {
      status(503)(h)
      expect(h.logs.at(-1)?.outcome).toBe("timeout")
    },
  },
  U7: {
    run: () => {
      const h = authorizing(postHead(8))
      return { h, step: h.client("12345678") }
    },
  },
  U8: {
    run: () => {
      const h = authorizing(postHead(32))
      return { h, step: h.client("0123456789abcdef0123") }
    },
  },
  U9: {
    run: () => {
      const h = authorizing(connectHead)
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
    check: (h) => {
      h.send({ _tag: "Authenticated", user: "alice" })
      expect(h.connects).toHaveLength(1)
    },
  },
  U10: {
    run: () => {
      const h = authorizing(postHead(8))
      h.client("1234")
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  U11: {
    run: () => {
      const h = authorizing()
      return { h, step: h.send({ _tag: "Errored", side: "client", message: "ECONNRESET" }) }
    },
  },
  U12: {
    run: () => {
      const h = authorizing()
      return { h, step: h.abort() }
    },
    check: (h) => expect(h.logs.at(-1)?.outcome).toBe("shutdown"),
  },
  U13: {
    run: () => {
      const h = new Harness({}, "hctunnel", true)
      return { h, step: h.send({ _tag: "Authenticated", user: "mallory" }) }
    },
    check: (h) => expect(h.connects).toEqual([]),
  },

  A13: {
    setup: () => {
      const h = respondingWithBody()
      h.fromOrigin("0123456789")
      return h
    },
  },
  A14: { setup: () => new Harness() },
  A15: {
    run: () => {
      const h = respondingWithBody()
      h.fromOrigin("0123456789")
      return { h, step: h.fireDeadline() }
    },
    check: (h) => expect(h.deadline).toBe(defaultLimits.keepAliveTimeout),
  },
  A16: {
    run: () => {
      const h = new Harness()
      h.client("GET http://exa")
      return { h, step: h.client("mple.com/ HTTP/1.1\r\n") }
    },
  },
  C12: { setup: () => connecting() },
  C13: {
    run: () => {
      const h = connecting()
      return { h, step: originErrored(h) }
    },
    check: status(502),
  },
  C14: {
    run: () => {
      const h = connecting()
      return { h, step: h.send({ _tag: "Blocked", side: "client" }) }
    },
  },
  C15: {
    run: () => {
      const h = connecting()
      h.send({ _tag: "Blocked", side: "client" })
      return { h, step: h.send({ _tag: "Drained", side: "client" }) }
    },
  },
  C16: {
    run: () => {
      const h = connecting()
      return { h, step: h.send({ _tag: "Blocked", side: "origin" }) }
    },
  },
  C17: {
    run: () => {
      const h = connecting()
      h.send({ _tag: "Blocked", side: "origin" })
      return { h, step: h.send({ _tag: "Drained", side: "origin" }) }
    },
  },
  C18: {
    run: () => {
      const h = respondingWithBody()
      h.fromOrigin("0123456789")
      h.client(getHead, 5_000)
      return { h, step: h.fireDeadline() }
    },
    check: (h) => expect(h.deadline).toBe(5_000 + defaultLimits.connectTimeout),
  },
  C20: {
    run: () => {
      const h = connecting()
      return { h, step: connect(h) }
    },
    check: (h) => expect(h.originText()).toMatch(/^GET \/page HTTP\/1\.1\r\n/),
  },
  C21: {
    run: () => {
      const h = connecting(connectHead)
      return { h, step: connect(h) }
    },
    check: (h) => expect(h.clientText()).toBe("HTTP/1.1 200 Connection established\r\n\r\n"),
  },
  C19: {
    setup: () => {
      const h = connecting()
      h.send({ _tag: "Ended", side: "client" })
      return h
    },
    events: ["Received(client)"],
  },
  F22: {
    run: () => {
      const h = forwarding(postHead(10))
      h.client("12345")
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  F23: {
    run: () => {
      const h = forwarding()
      return { h, step: h.send({ _tag: "Errored", side: "client", message: "ECONNRESET" }) }
    },
  },
  F24: {
    run: () => {
      const h = respondingWithBody()
      h.fromOrigin("123")
      return { h, step: originErrored(h) }
    },
  },
  F25: { setup: () => forwarding() },
  F26: {
    run: () => {
      const h = forwarding()
      return { h, step: h.send({ _tag: "Blocked", side: "client" }) }
    },
  },
  F27: {
    run: () => {
      const h = forwarding()
      h.send({ _tag: "Blocked", side: "client" })
      return { h, step: h.send({ _tag: "Drained", side: "client" }) }
    },
  },
  F28: {
    run: () => {
      const h = forwarding()
      return { h, step: h.send({ _tag: "Blocked", side: "origin" }) }
    },
  },
  F29: {
    run: () => {
      const h = forwarding()
      h.send({ _tag: "Blocked", side: "origin" })
      return { h, step: h.send({ _tag: "Drained", side: "origin" }) }
    },
  },
  F30: {
    run: () => {
      const h = respondingWithBody()
      h.send({ _tag: "Blocked", side: "origin" })
      return { h, step: h.fromOrigin("0123456789") }
    },
  },
  F31: {
    run: () => {
      const h = forwarding()
      return { h, step: h.client("GET http://example.com/2 HTTP/1.1\r\n") }
    },
  },
  F32: {
    run: () => {
      const h = respondingWithBody()
      h.client("GET http://example.com/2 HTTP/1.1\r\n")
      return { h, step: h.fromOrigin("0123456789") }
    },
    check: (h) => {
      h.client("Host: example.com\r\n\r\n")
      expect(h.connects).toHaveLength(2)
    },
  },
  F33: {
    run: () => {
      const h = respondingWithBody()
      h.fireDeadline()
      return { h, step: h.fireDeadline() }
    },
    check: (h) => expect(h.clientText()).not.toMatch(/504/),
  },
  F34: {
    setup: () => {
      const h = forwarding()
      h.send({ _tag: "Ended", side: "client" })
      return h
    },
    events: ["Received(client)"],
  },
  F35: {
    run: () => {
      const h = forwarding(chunkedHead)
      return { h, step: h.client("5;a=b") }
    },
    check: (h) => {
      h.client("\r\nhello\r\n0\r\n\r\n")
      expect(h.originText()).toMatch(/\r\n\r\n5\r\nhello\r\n0\r\n\r\n$/)
    },
  },
  F40: {
    run: () => {
      const h = forwarding()
      h.fromOrigin("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n")
      return { h, step: h.fromOrigin("ok") }
    },
    check: (h) => expect(h.clientText()).not.toMatch(/Connection: close/),
  },
  F41: {
    run: () => {
      const h = forwarding("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
      h.fromOrigin("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n")
      return { h, step: h.fromOrigin("ok") }
    },
  },
  F42: {
    run: () => {
      const h = forwarding("GET http://example.com/private HTTP/1.1\r\nHost: example.com\r\nAuthorization: NTLM TlRMTVNTUAABAAAA\r\n\r\n")
      h.fromOrigin("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAA\r\nContent-Length: 2\r\n\r\n")
      return { h, step: h.fromOrigin("no") }
    },
    check: (h) => {
      expect(h.actions.filter((a) => a._tag === "Close")).toEqual([
        { _tag: "Close", side: "origin", graceful: true, reusable: false, pinned: true },
      ])
      // The client's next request asks for an origin as any request does: the runtime answers with the pinned one.
      expect(h.client(getHead).map((a) => a._tag)).toContain("Connect")
    },
  },
  F36: {
    run: () => {
      const h = new Harness({ maxHeadBytes: 256, maxBufferedBytes: 16 })
      h.client(getHead)
      connect(h)
      return { h, step: h.fromOrigin(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(300)}\r\n`) }
    },
    check: (h) => {
      status(502)(h)
      expect(h.logs.at(-1)?.bytesFromOrigin).toBe(257)
    },
  },
  F37: {
    run: () => {
      const h = forwarding()
      return { h, step: h.fromOrigin("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n") }
    },
    check: status(502),
  },
  F38: {
    run: () => {
      const h = forwarding()
      h.fromOrigin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
      return { h, step: h.fromOrigin("2\r\nok\r\nzz\r\n") }
    },
    check: (h) => expect(h.clientText()).toMatch(/\r\n\r\n2\r\nok\r\n$/),
  },
  F39: {
    run: () => {
      const h = forwarding(chunkedHead)
      h.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
      return { h, step: h.client("1\r\na\r\nzz\r\n") }
    },
    check: (h) => {
      expect(h.originText()).toMatch(/\r\n\r\n1\r\na\r\n$/)
      expect(h.clientText()).not.toMatch(/400/)
    },
  },
  T13: {
    setup: () => {
      const h = tunnel()
      h.send({ _tag: "Ended", side: "client" })
      return h
    },
    events: ["Received(client)"],
  },
  T14: {
    setup: () => {
      const h = tunnel()
      h.send({ _tag: "Ended", side: "origin" })
      return h
    },
    events: ["Received(origin)"],
  },
  T15: {
    run: () => {
      const h = tunnel()
      h.send({ _tag: "Ended", side: "origin" })
      return { h, step: h.send({ _tag: "Ended", side: "client" }) }
    },
  },
  T16: {
    run: () => {
      const h = tunnel()
      h.client("x", 5_000)
      return { h, step: h.fireDeadline() }
    },
    check: (h) => expect(h.deadline).toBe(5_000 + defaultLimits.idleTimeout),
  },
  T17: { setup: () => tunnel() },
  S4: {
    run: () => {
      const h = new Harness()
      h.client("GET http://example.com/ HTTP/1.1\r\n")
      return { h, step: h.shutdown() }
    },
    check: (h) => {
      h.client("Host: example.com\r\n\r\n")
      connect(h)
      h.fromOrigin("HTTP/1.1 204 No Content\r\n\r\n")
      expect(h.clientText()).toMatch(/Connection: close/)
      expect(h.postman.closed).toBe(true)
    },
  },
  S5: {
    run: () => {
      const h = new Harness()
      return { h, step: h.abort() }
    },
  },
  S6: {
    run: () => {
      const h = connecting()
      return { h, step: h.shutdown() }
    },
    check: (h) => {
      connect(h)
      h.fromOrigin("HTTP/1.1 204 No Content\r\n\r\n")
      expect(h.postman.closed).toBe(true)
    },
  },
  S7: {
    run: () => {
      const h = connecting()
      return { h, step: h.abort() }
    },
    check: (h) => expect(h.logs.at(-1)?.outcome).toBe("shutdown"),
  },
  S8: {
    run: () => {
      const h = forwarding()
      return { h, step: h.abort() }
    },
    check: (h) => expect(h.logs.at(-1)?.outcome).toBe("shutdown"),
  },
  S9: {
    run: () => {
      const h = tunnel()
      return { h, step: h.shutdown() }
    },
    check: (h) => {
      h.client("more")
      expect(h.originText()).toBe("more")
    },
  },
  U14: { setup: () => new Harness({}, "hctunnel", true), events: ["AuthenticationFailed"] },
  U15: { setup: () => authorizing() },
  U16: {
    run: () => {
      const h = new Harness({}, "hctunnel", true)
      h.client(getHead, 5_000)
      return { h, step: h.send({ _tag: "Timeout" }) }
    },
    check: (h) => expect(h.deadline).toBe(5_000 + defaultLimits.connectTimeout),
  },
  U17: {
    run: () => {
      const h = authorizing()
      return { h, step: h.shutdown() }
    },
  },
}
