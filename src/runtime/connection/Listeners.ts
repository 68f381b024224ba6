/**
 * Listeners: the socket listeners of every Connection. They are module-level functions (`this` is the
 * socket) that find the socket's current owner through its tag (SocketHooks.ts) and call one of its
 * methods, so a socket costs no closure and an idle tunnel nothing beyond its tag.
 *
 * A client socket gets its listeners when its Connection is made and loses them on 'close'. An origin
 * socket reads through `onread` (no 'data' event: `connectOrigin`) and gets its other listeners once, when
 * a Connection first adopts it: they stay through the pool and later owners and do nothing while it has
 * none. Bytes on an origin no Connection owns are the Dialer's (`readUnowned`: a parent's answer to our
 * CONNECT, or an idle pooled connection that spoke). 'drain' is listened for only after a refused write.
 *
 * It decides nothing: every event goes to the owner as it comes.
 */
import * as net from "node:net"
import type { Event, Side } from "../../core/events.ts"
import { readUnowned } from "../dial/Dialer.ts"
import type { Resolved } from "../dial/Resolver.ts"
import { readAcceptedInto } from "./ReadArena.ts"
import { kConnection, kListening, listenEnd, nextReadBuffer, noteRead, type SocketOwner, type TaggedSocket } from "./SocketHooks.ts"

/** What the owner of a socket hears (a Connection). */
export interface SocketEvents extends SocketOwner {
  clientData(chunk: Buffer): void
  /** Bytes a streaming client read into our buffers (`streamClient`). */
  clientRead(buffer: Buffer, n: number): void
  /** The client's end, drain or error, for the core (while the client is open). */
  clientEvent(event: Event): void
  clientClose(): void
  originRead(socket: net.Socket, buffer: Buffer, n: number): void
  /** The origin's end, drain or error, for the core (while `socket` is this connection's open origin). */
  originEvent(socket: net.Socket, event: Event): void
  originClose(socket: net.Socket): void
}

type Owned = TaggedSocket<SocketEvents>

/** Tag `client` with its owner and listen to it until it closes. */
export const listenClient = (client: net.Socket, owner: SocketEvents): void => {
  ;(client as Owned)[kConnection] = owner
  client.on("data", onClientData)
  listenEnd(client as Owned, onClientEnd)
  client.on("error", onClientError)
  client.on("close", onClientClose)
}

/** From now on `client`'s reads go into our buffers (it streams); false if this Node cannot (it keeps 'data'). */
export const streamClient = (client: net.Socket): boolean => readAcceptedInto(client, nextReadBuffer, onClientRead)

/** The `onread` option of every origin socket (one object for all: net.connect copies what it needs). */
const originReads = { buffer: nextReadBuffer, callback: onOriginRead } as const

/**
 * Start a TCP connection to an origin: every origin socket is made here (no Nagle, half-open, reading
 * through `onread`). It has no owner and none of our other listeners until a Connection adopts it.
 */
export const connectOrigin = (address: Resolved, port: number, keepAlive: boolean, keepAliveDelayMs: number): net.Socket =>
  net.connect({
    host: address.address,
    port,
    family: address.family,
    noDelay: true,
    keepAlive,
    keepAliveInitialDelay: keepAliveDelayMs,
    allowHalfOpen: true,
    onread: originReads,
  })

/** Make `owner` the owner of the origin `socket` (our listeners are added the first time only). */
export const adoptOrigin = (socket: net.Socket, owner: SocketEvents): void => {
  const s = socket as Owned
  s[kConnection] = owner
  if (s[kListening] === undefined) {
    // Once per socket: a pooled origin changes owner once per request; its listeners stay and find
    // the current owner (or none) through the tag.
    s[kListening] = true
    listenEnd(s, onOriginEnd)
    s.on("error", onOriginError)
    s.on("close", onOriginClose)
  }
}

/**
 * The origin socket has no owner any more (closed, or handed to the pool): our listeners stay on it
 * and do nothing until a Connection adopts it again.
 */
export const detachOrigin = (socket: net.Socket): void => {
  ;(socket as Owned)[kConnection] = undefined
}

/** Listen for 'drain' on `socket` (of `side`), once a write to it was refused. */
export const listenDrain = (socket: net.Socket, side: Side): void => {
  const onDrain = side === "client" ? onClientDrain : onOriginDrain
  if (socket.listenerCount("drain", onDrain) === 0) socket.on("drain", onDrain)
}

function onClientData(this: Owned, chunk: Buffer): void {
  this[kConnection]?.clientData(chunk)
}
const CLIENT_ENDED: Event = { _tag: "Ended", side: "client" }
const CLIENT_DRAINED: Event = { _tag: "Drained", side: "client" }
const ORIGIN_ENDED: Event = { _tag: "Ended", side: "origin" }
const ORIGIN_DRAINED: Event = { _tag: "Drained", side: "origin" }

function onClientEnd(this: Owned): void {
  this[kConnection]?.clientEvent(CLIENT_ENDED)
}
function onClientDrain(this: Owned): void {
  this[kConnection]?.clientEvent(CLIENT_DRAINED)
}
function onClientError(this: Owned, error: Error): void {
  this[kConnection]?.clientEvent({ _tag: "Errored", side: "client", message: error.message })
}
function onClientClose(this: Owned): void {
  const owner = this[kConnection]
  this.removeListener("data", onClientData)
  this.removeListener("end", onClientEnd)
  this.removeListener("drain", onClientDrain)
  this.removeListener("error", onClientError)
  this.removeListener("close", onClientClose)
  this[kConnection] = undefined
  owner?.clientClose()
}
/** Read callback of a streaming client socket (ReadArena.ts). */
function onClientRead(this: Owned, n: number, buffer: Buffer): boolean {
  this[kConnection]?.clientRead(buffer, n)
  noteRead(this)
  return true
}

/** `onread` callback of origin sockets. */
function onOriginRead(this: Owned, n: number, buffer: Buffer): boolean {
  const owner = this[kConnection]
  if (owner !== undefined) owner.originRead(this, buffer, n)
  else readUnowned(this, buffer, n)
  noteRead(this)
  return true
}
function onOriginEnd(this: Owned): void {
  this[kConnection]?.originEvent(this, ORIGIN_ENDED)
}
function onOriginDrain(this: Owned): void {
  this[kConnection]?.originEvent(this, ORIGIN_DRAINED)
}
function onOriginError(this: Owned, error: Error): void {
  // Node is destroying the socket; the core answers with Close(origin), which finds it destroyed.
  this[kConnection]?.originEvent(this, { _tag: "Errored", side: "origin", message: error.message })
}
function onOriginClose(this: Owned): void {
  const owner = this[kConnection]
  this[kConnection] = undefined
  owner?.originClose(this)
}
