/**
 * SocketHooks: how Connection hangs on Node's sockets without a closure or an object per socket, and
 * the Node-internals workarounds that takes.
 *
 * Owns three things, each a trick Connection.ts should not have to explain:
 * - The owner tag: a socket finds its current owner through a symbol on it, so every listener can be
 *   one module-level function (`this` is the socket). A pooled origin changes owner; its listeners stay.
 * - The 'end' listener trick (`listenEnd`): our listener takes the place of Node's no-op one.
 * - The `onread` generator plumbing (`noteRead`, `nextReadBuffer`): Node asks for the next read buffer
 *   without saying for which socket, so each read callback notes its socket and one module-level
 *   generator serves every socket (not a closure per socket: heap per idle tunnel, docs/performance.md).
 *
 * It decides nothing about buffers (ReadArena.ts does) and never feeds a Postman.
 */
import type * as net from "node:net"
import { shared } from "./ReadArena.ts"

/** What a socket's owner must answer: the buffer its next read goes into. */
export interface SocketOwner {
  readBufferFor(socket: net.Socket): Buffer
}

export const kConnection = Symbol("hctunnel.connection")
/** Set once an origin socket carries our listeners (they outlive owners: see Listeners.ts). */
export const kListening = Symbol("hctunnel.listening")
export interface TaggedSocket<Owner extends SocketOwner = SocketOwner> extends net.Socket {
  [kConnection]?: Owner | undefined
  [kListening]?: true
}

/** Node's own 'end' listener of every socket (found on the first client), or null if it is not there. */
let nodeEndListener: ((...args: Array<unknown>) => void) | null | undefined

/**
 * Listen for the end of what `socket` sends. Node puts a listener on every socket's 'end'
 * (onReadableStreamEnd) that does nothing when the socket allows half-open connections, as ours all
 * do; with a second listener the socket keeps an array of them (heap per socket). So ours takes its place.
 * If a Node version lacks it (found by name), both listeners stay.
 */
export function listenEnd<S extends net.Socket>(socket: S, listener: (this: S) => void): void {
  if (nodeEndListener === undefined) {
    const found = socket.listeners("end")
    const first = found[0] as ((...args: Array<unknown>) => void) | undefined
    nodeEndListener = found.length === 1 && first?.name === "onReadableStreamEnd" ? first : null
  }
  if (nodeEndListener !== null && socket.allowHalfOpen) socket.removeListener("end", nodeEndListener)
  socket.on("end", listener)
}

/**
 * The socket whose read callback has just returned. Node asks for the next read buffer right after the
 * read callback of the same socket, without saying which socket (ReadArena.ts): the callback
 * notes its socket last thing (so a throw leaves nothing behind) and `nextReadBuffer` takes it.
 */
let lastRead: TaggedSocket | undefined

/** Called last by every read callback: the next buffer Node asks for is this socket's. */
export function noteRead(socket: TaggedSocket): void {
  lastRead = socket
}

/** The buffer generator of every socket that reads into our buffers: the socket's current owner decides. */
export function nextReadBuffer(): Buffer {
  const socket = lastRead
  lastRead = undefined
  // No read just happened (a connecting socket's handle is being made): nothing to stream into yet.
  if (socket === undefined) return shared
  return socket[kConnection]?.readBufferFor(socket) ?? shared
}
