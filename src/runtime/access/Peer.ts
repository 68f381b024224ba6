/**
 * How hctunnel writes an address with its port, everywhere a person or a peer reads one (logs, messages,
 * a CONNECT authority, a rule's text): `host:port`, an IPv6 address in brackets (`[::1]:8080`).
 *
 * Pure string functions; no parsing (each grammar that reads addresses has its own parser).
 */
import type * as net from "node:net"
import { hostPort } from "../../core/http/serialize.ts"

/** The engine's rule (core/http/serialize.ts), so a log line and an error body write an address alike. */
export { hostPort }

/** A socket's peer as `address:port` ("?" when Node does not know the address). */
export const peerOf = (socket: net.Socket): string => hostPort(socket.remoteAddress ?? "?", socket.remotePort ?? 0)
