/**
 * UpstreamConnect: the CONNECT handshake with a parent proxy, for a tunnel that goes through it.
 *
 * Owns the CONNECT request we send to the parent and the reading of its answer: an incremental head
 * check (the core's HeadReader and response-head parser, so the parent's answer is judged by the same
 * rules as an origin's), and the texts of every way a parent can fail, each naming the parent and never
 * its credentials. It never touches a socket: the Connection writes `request`, feeds the bytes it reads
 * to `push`, and acts on the verdict (Connected after a 2xx, ConnectFailed(upstream) otherwise).
 */
import type { Event } from "../../core/events.ts"
import { HeadReader } from "../../core/http/head-reader.ts"
import { parseResponseHead } from "../../core/http/response-head.ts"
import { hostPort } from "../access/Peer.ts"
import type { Parent } from "./Upstream.ts"

export type HandshakeVerdict =
  | { readonly _tag: "NeedMore" }
  /** 2xx: the tunnel is open; `rest` is what the parent relayed from the origin right after its head. */
  | { readonly _tag: "Established"; readonly rest: Uint8Array }
  /** Anything else: what the parent did, in words ("answered 407 Proxy Authentication Required"). */
  | { readonly _tag: "Refused"; readonly what: string }

const needMore: HandshakeVerdict = { _tag: "NeedMore" }
const encoder = new TextEncoder()

/** A reason phrase comes from the network: keep the 502's body short and printable. */
const shortText = (s: string): string => {
  const clean = s.replace(/[^\x20-\x7e]/g, "?")
  return clean.length > 120 ? `${clean.slice(0, 120)}...` : clean
}

/**
 * `CONNECT host:port HTTP/1.1` with Host, our Proxy-Authorization (if any) and Via: the hops the client's
 * CONNECT came through (`receivedVia`, the core's Connect.receivedVia), then ours, as a forwarded request
 * carries them. So a loop through parents (A's parent is B, B's parent is A) comes back to A with A's
 * pseudonym in it and is refused (508) at the first turn, instead of opening sockets until one side runs out.
 */
export const connectRequest = (host: string, port: number, parent: Parent, via: string, receivedVia?: string): Uint8Array => {
  const authority = hostPort(host, port)
  const auth = parent.authorization === undefined ? "" : `Proxy-Authorization: ${parent.authorization}\r\n`
  const hops = receivedVia === undefined ? `1.1 ${via}` : `${receivedVia}, 1.1 ${via}`
  return encoder.encode(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}Via: ${hops}\r\n\r\n`)
}

/** Reads the parent's answer to our CONNECT, in as many chunks as it comes. */
export class UpstreamHandshake {
  readonly parent: Parent
  readonly request: Uint8Array
  private readonly reader: HeadReader
  private readonly maxHeaders: number

  constructor(
    host: string,
    port: number,
    parent: Parent,
    via: string,
    limits: { readonly maxHeadBytes: number; readonly maxHeaders: number },
    /** The Via values of the client's CONNECT (Connect.receivedVia), sent before our own hop. */
    receivedVia?: string,
  ) {
    this.parent = parent
    this.request = connectRequest(host, port, parent, via, receivedVia)
    this.reader = new HeadReader(limits.maxHeadBytes)
    this.maxHeaders = limits.maxHeaders
  }

  /** Bytes from the parent (the caller's own copy: the reader may keep them until the head is complete). */
  push(bytes: Uint8Array): HandshakeVerdict {
    const result = this.reader.push(bytes)
    switch (result._tag) {
      case "NeedMore":
        return needMore
      case "TooLarge":
        return this.refused("answered CONNECT with a head larger than maxHeadBytes")
      case "Head": {
        const parsed = parseResponseHead(result.head, { maxHeaders: this.maxHeaders })
        if (!parsed.ok) return this.refused(`answered CONNECT with a malformed response: ${shortText(parsed.reason)}`)
        const { status, reason } = parsed.value
        if (status >= 200 && status < 300) return { _tag: "Established", rest: result.rest }
        return this.refused(`answered ${status}${reason === "" ? "" : ` ${shortText(reason)}`}`)
      }
    }
  }

  private refused(what: string): HandshakeVerdict {
    return { _tag: "Refused", what }
  }
}

/** The parent failed (unreachable, refused our CONNECT...), as the core's event: the text names the parent. */
export const parentFailed = (parent: Parent, what: string): Extract<Event, { _tag: "ConnectFailed" }> => ({
  _tag: "ConnectFailed",
  reason: "upstream",
  message: `upstream proxy ${parent.name} ${what}`,
})

/** A socket or resolver error of the parent connection, in words. */
export const describeParentError = (code: string | undefined, message: string): string => {
  switch (code) {
    case "ECONNREFUSED":
      return "refused the connection"
    case "ECONNRESET":
      return "reset the connection"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
    case "EHOSTDOWN":
    case "ENETDOWN":
      return "is unreachable"
    case "ETIMEDOUT":
      return "timed out"
    default:
      return `could not be reached: ${shortText(message)}`
  }
}
