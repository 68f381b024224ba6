/**
 * ReadArena: the buffers that the sockets of this worker thread read into.
 *
 * Node allocates a fresh 64 KiB buffer for every socket read. With `onread` a socket reads into a
 * buffer we supply instead, as large as we like, so that when data piles up one read takes up to
 * BULK_READ_BYTES: a bulk transfer then costs a fraction of the reads, events and allocations
 * (measured: docs/performance.md).
 *
 * Two tiers, because Node keeps, per socket, the buffer it was last given for its next read:
 * - SHARED: one 64 KiB buffer for every socket of the thread. Bytes read into it are always copied
 *   out at once (right-sized), so it is never referenced after a read callback and any socket may read
 *   into it next.
 * - Bulk: a socket whose read filled the shared buffer is streaming; it gets a private 256 KiB buffer,
 *   read without a copy. Its owner replaces it (allocating a new one for the next read) whenever the
 *   bytes are still referenced after they were handed on, and drops it after a small read, so idle
 *   sockets hold no private buffer.
 *
 * The policy (which buffer a socket reads into next, when its bytes may go on without a copy) is the
 * functions at the end, over the fields a Connection keeps (`ReadState`).
 *
 * Node offers `onread` only for sockets it creates from options (net.connect). Accepted sockets get the
 * same treatment through the socket's user-buffer slots, found by their symbol descriptions; if a Node
 * version lacks them, `readAcceptedInto` returns false and the socket keeps 'data' events.
 */
import type * as net from "node:net"
import type { Side } from "../../core/events.ts"

export const SHARED_READ_BYTES = 64 * 1024
export const BULK_READ_BYTES = 256 * 1024

/** Read into by every socket that is not streaming; copied out after every read. */
export const shared: Buffer = Buffer.allocUnsafe(SHARED_READ_BYTES)

export type ReadCallback = (this: net.Socket, n: number, buffer: Buffer) => boolean
/**
 * Called by Node without `this` or arguments: right after the read callback of the same socket, and once
 * when a connecting socket's handle is made. One module-level function can serve every socket if the read
 * callback notes its socket for it (Connection.ts does), and no socket needs a closure of its own.
 */
export type BufferGenerator = () => Buffer

interface UserBufferSlots {
  readonly buffer: symbol
  readonly callback: symbol
  readonly generator: symbol
}

let slots: UserBufferSlots | null | undefined

const findSlots = (socket: net.Socket): UserBufferSlots | null => {
  if (slots !== undefined) return slots
  const symbols = Object.getOwnPropertySymbols(socket)
  const named = (description: string) => symbols.find((s) => s.description === description)
  const buffer = named("kBuffer")
  const callback = named("kBufferCb")
  const generator = named("kBufferGen")
  slots = buffer !== undefined && callback !== undefined && generator !== undefined ? { buffer, callback, generator } : null
  return slots
}

/**
 * Make an accepted socket read into `shared` (then whatever `generator` returns after each read) and
 * call `callback` instead of emitting 'data', as `onread` does for connected sockets. May be called at
 * any time, also from a 'data' handler: the next read goes into our buffers.
 */
export const readAcceptedInto = (socket: net.Socket, generator: BufferGenerator, callback: ReadCallback): boolean => {
  const found = findSlots(socket)
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle
  if (found === null || handle === undefined || typeof handle.useUserBuffer !== "function") return false
  const s = socket as unknown as Record<symbol, unknown>
  s[found.buffer] = shared
  s[found.generator] = generator
  s[found.callback] = callback
  handle.useUserBuffer(shared)
  return true
}

// ---------------------------------------------------------------------------------------------
// The policy: which buffer a socket reads into next, and when bytes read may go on without a copy.

/**
 * What a Connection keeps for its reads: fields of the Connection itself (an idle tunnel pays for no
 * object of its own), read and written only by the functions below.
 */
export interface ReadState {
  /** The private read buffer of a streaming side; undefined: it reads into `shared`. */
  clientBulk: Buffer | undefined
  originBulk: Buffer | undefined
  clientStreaming: boolean
  originStreaming: boolean
}

/** The bulk buffer of a streaming side that is still open (made on first use); the shared buffer otherwise. */
export const readBuffer = (r: ReadState, side: Side, open: boolean): Buffer => {
  if (side === "client") {
    return r.clientStreaming && open ? (r.clientBulk ??= Buffer.allocUnsafe(BULK_READ_BYTES)) : shared
  }
  return r.originStreaming && open ? (r.originBulk ??= Buffer.allocUnsafe(BULK_READ_BYTES)) : shared
}

/**
 * Whether `n` bytes read from `side` into `buffer` may go on as a view, without a copy: only from this
 * side's own bulk buffer, and only a large read. Otherwise the caller copies them (bytes in the shared
 * buffer, or in a buffer this side no longer owns), and the side's streaming follows the read: a read
 * that fills the shared buffer (or more, into a buffer this side no longer owns) means data is piling
 * up, so stream through a private buffer from now on; a small read ends streaming, so that an idle
 * socket keeps no private buffer.
 */
export const readIsViewable = (r: ReadState, side: Side, buffer: Buffer, n: number): boolean => {
  const own = side === "client" ? r.clientBulk : r.originBulk
  if (buffer === own && n >= SHARED_READ_BYTES / 4) return true
  const streaming = buffer !== own && n >= SHARED_READ_BYTES
  if (side === "client") {
    r.clientStreaming = streaming
    if (!streaming) r.clientBulk = undefined
  } else {
    r.originStreaming = streaming
    if (!streaming) r.originBulk = undefined
  }
  return false
}

/** The bytes of `side`'s bulk buffer are still referenced after they were handed on: its next read needs a new buffer. */
export const giveUpBulk = (r: ReadState, side: Side): void => {
  if (side === "client") r.clientBulk = undefined
  else r.originBulk = undefined
}

/**
 * A new origin socket must never read into the previous one's bulk buffer: that socket (closing, or
 * pooled for another connection) may still have it registered for its next read.
 */
export const forgetOriginBuffer = (r: ReadState): void => {
  r.originBulk = undefined
  r.originStreaming = false
}
