/**
 * A test harness around one Postman: it plays the runtime (a client socket, a sequence of origin
 * sockets, a clock), records every action, and checks the socket-level invariants of docs/design.md §7
 * after every call, so that every test built on it checks teardown and deadlines for free.
 */
import type { Action } from "../../src/core/actions.ts"
import type { Event, Side } from "../../src/core/events.ts"
import { defaultLimits, type Limits } from "../../src/core/limits.ts"
import { Postman, type PostmanState } from "../../src/core/postman.ts"

export const latin1 = (text: string): Uint8Array => {
  const bytes = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff
  return bytes
}
export const text = (bytes: Uint8Array): string => {
  let s = ""
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!)
  return s
}
export const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  let n = 0
  for (const c of chunks) n += c.length
  const out = new Uint8Array(n)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

/** A short action description, the notation of the transition table: `Write(client)`, `Close(origin reusable)`. */
export const describe = (a: Action): string => {
  switch (a._tag) {
    case "Write":
    case "HalfClose":
    case "PauseReading":
    case "ResumeReading":
      return `${a._tag}(${a.side})`
    case "Close":
      return `Close(${a.side}${a.reusable ? " reusable" : a.pinned === true ? " pinned" : ""})`
    case "Connect":
      return a.fresh === true ? "Connect(fresh)" : "Connect"
    default:
      return a._tag
  }
}

export class InvariantViolation extends Error {}

/** The transition table's name for a call: `Received(client)`, `Timeout`, `shutdown()`. */
export const triggerName = (what: Event | "shutdown" | "abort"): string => {
  if (typeof what === "string") return `${what}()`
  return "side" in what ? `${what._tag}(${what.side})` : what._tag
}

/**
 * Set by `npm run fuzz -- --coverage` (test/property/coverage.ts): told the state and trigger of every call a
 * harness makes, to count how often the property tests exercise each pair of the transition table.
 */
export const callObserver: { current: ((state: PostmanState, trigger: string) => void) | undefined } = { current: undefined }

/** "errored": the runtime reported Errored(origin); the core still owes its one Close(origin) (§7.3). */
type OriginSocket = "connecting" | "open" | "errored" | "closed"

export class Harness {
  readonly postman: Postman
  now = 0
  readonly actions: Action[] = []
  /** Everything written to the client, and to each origin socket in order of Connect. */
  readonly toClient: Uint8Array[] = []
  readonly toOrigin: Uint8Array[][] = []
  readonly origins: OriginSocket[] = []
  readonly connects: Array<{ host: string; port: number }> = []
  readonly logs: Array<Extract<Action, { _tag: "Log" }>["record"]> = []
  clientCloses = 0
  halfClosed: Record<Side, number> = { client: 0, origin: 0 }
  paused: Record<Side, boolean> = { client: false, origin: false }
  deadline = -1

  /** The credentials of every `Authenticate` (proxy authentication on). */
  readonly authentications: Array<string | undefined> = []

  /** Every call made to the Postman, in order, with its `now`: what a conformance vector replays. */
  readonly script: Array<{ readonly now: number; readonly what: Event | "start" | "shutdown" | "abort" }> = []
  readonly options: { readonly limits: Partial<Limits>; readonly via: string; readonly auth: boolean }

  constructor(limits: Partial<Limits> = {}, via = "hctunnel", auth = false) {
    this.options = { limits, via, auth }
    this.postman = new Postman({ limits: { ...defaultLimits, ...limits }, via, auth })
    this.script.push({ now: this.now, what: "start" })
    this.record(this.postman.start(this.now))
  }

  get origin(): OriginSocket | undefined {
    return this.origins[this.origins.length - 1]
  }

  /** Feed an event (optionally advancing the clock first); returns this call's actions. */
  send(event: Event, advance = 0): ReadonlyArray<Action> {
    this.now += advance
    this.script.push({ now: this.now, what: event })
    callObserver.current?.(this.postman.state, triggerName(event))
    return this.record(this.postman.handle(event, this.now))
  }

  client(data: string | Uint8Array, advance = 0) {
    return this.send({ _tag: "Received", side: "client", bytes: typeof data === "string" ? latin1(data) : data }, advance)
  }
  fromOrigin(data: string | Uint8Array, advance = 0) {
    return this.send({ _tag: "Received", side: "origin", bytes: typeof data === "string" ? latin1(data) : data }, advance)
  }
  connected(advance = 0, reused = false) {
    return this.send(reused ? { _tag: "Connected", reused } : { _tag: "Connected" }, advance)
  }
  /** Advance the clock to the armed deadline and deliver the Timeout. */
  fireDeadline() {
    if (this.deadline < 0) throw new InvariantViolation("no deadline armed")
    this.now = Math.max(this.now, this.deadline)
    this.deadline = -1
    return this.send({ _tag: "Timeout" })
  }
  shutdown() {
    this.script.push({ now: this.now, what: "shutdown" })
    callObserver.current?.(this.postman.state, "shutdown()")
    return this.record(this.postman.shutdown(this.now))
  }
  abort() {
    this.script.push({ now: this.now, what: "abort" })
    callObserver.current?.(this.postman.state, "abort()")
    return this.record(this.postman.abort(this.now, "test"))
  }

  clientText(): string {
    return text(concat(this.toClient))
  }
  originText(index = this.toOrigin.length - 1): string {
    return text(concat(this.toOrigin[index] ?? []))
  }

  private record(actions: ReadonlyArray<Action>): ReadonlyArray<Action> {
    for (const a of actions) this.apply(a)
    if (!this.postman.closed && this.deadline < 0) throw new InvariantViolation("a live Postman has no deadline")
    if (this.postman.closed && this.origin !== undefined && this.origin !== "closed") {
      throw new InvariantViolation("client closed while an origin socket is still open")
    }
    return actions
  }

  private apply(a: Action): void {
    if (this.clientCloses > 0) throw new InvariantViolation(`action after Close(client): ${describe(a)}`)
    this.actions.push(a)
    switch (a._tag) {
      case "Connect":
        if (this.origin === "connecting" || this.origin === "open" || this.origin === "errored") {
          throw new InvariantViolation("Connect while an origin socket exists")
        }
        this.origins.push("connecting")
        this.toOrigin.push([])
        this.connects.push({ host: a.host, port: a.port })
        this.paused.origin = false
        this.halfClosed.origin = 0
        return
      case "Write":
        if (a.side === "client") {
          if (this.halfClosed.client > 0) throw new InvariantViolation("Write(client) after HalfClose(client)")
          this.toClient.push(a.bytes)
        } else {
          if (this.origin !== "open") throw new InvariantViolation(`Write(origin) on a ${this.origin ?? "missing"} socket`)
          if (this.halfClosed.origin > 0) throw new InvariantViolation("Write(origin) after HalfClose(origin)")
          this.toOrigin[this.toOrigin.length - 1]!.push(a.bytes)
        }
        return
      case "HalfClose":
        if (a.side === "origin" && this.origin !== "open") throw new InvariantViolation("HalfClose(origin) without an open origin")
        this.halfClosed[a.side]++
        if (this.halfClosed[a.side] > 1) throw new InvariantViolation(`HalfClose(${a.side}) twice`)
        return
      case "Close":
        if (a.side === "client") {
          this.clientCloses++
          this.deadline = -1
        } else {
          if (this.origin !== "connecting" && this.origin !== "open" && this.origin !== "errored") {
            throw new InvariantViolation("Close(origin) without an origin socket")
          }
          this.origins[this.origins.length - 1] = "closed"
        }
        return
      case "PauseReading":
        if (this.paused[a.side]) throw new InvariantViolation(`PauseReading(${a.side}) twice`)
        this.paused[a.side] = true
        return
      case "ResumeReading":
        if (!this.paused[a.side]) throw new InvariantViolation(`ResumeReading(${a.side}) while not paused`)
        this.paused[a.side] = false
        return
      case "SetDeadline":
        this.deadline = a.at
        return
      case "Log":
        this.logs.push(a.record)
        return
      case "Authenticate":
        this.authentications.push(a.credentials)
        return
    }
  }

  /** The runtime's side of Connected / ConnectFailed / Errored(origin): keep the socket model in step. */
  markOrigin(state: OriginSocket): void {
    this.origins[this.origins.length - 1] = state
  }
}

/** Connected, updating the harness's socket model first (as the runtime would). */
export const connect = (h: Harness, advance = 0, reused = false) => {
  h.markOrigin("open")
  return h.connected(advance, reused)
}
export const connectFailed = (h: Harness, reason: Extract<Event, { _tag: "ConnectFailed" }>["reason"]) => {
  h.markOrigin("closed")
  return h.send({ _tag: "ConnectFailed", reason, message: reason })
}
export const originErrored = (h: Harness, message = "ECONNRESET") => {
  h.markOrigin("errored")
  return h.send({ _tag: "Errored", side: "origin", message })
}
