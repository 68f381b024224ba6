/**
 * What every soak origin shares: a loopback TCP server that keeps count of its open sockets (the end check
 * wants pooled connections closed), an HTTP/1.1 request loop, the checks every forwarded head must pass,
 * and `Verdicts`, where an origin leaves what it found for the client operation that waits for it (both
 * ends live in this process).
 */
import net from "node:net"
import type { Ledger } from "../report/Ledger.ts"
import type { DataPool } from "../rng.ts"
import { all, parseRequestHead, type RequestHead } from "../wire/http1.ts"
import { Reader } from "../wire/Reader.ts"

export interface OriginContext {
  readonly pool: DataPool
  readonly ledger: Ledger
  readonly verdicts: Verdicts
  readonly seed: number
}

/** Results the origins leave for the clients, by operation id. */
export class Verdicts {
  private readonly done = new Map<string, string>()
  private readonly waiting = new Map<string, (v: string) => void>()

  settle(id: string, verdict: string): void {
    const w = this.waiting.get(id)
    if (w !== undefined) {
      this.waiting.delete(id)
      w(verdict)
    } else this.done.set(id, verdict)
  }

  /** The verdict for `id`, or "none" after `timeoutMs`. */
  wait(id: string, timeoutMs: number): Promise<string> {
    const known = this.done.get(id)
    if (known !== undefined) {
      this.done.delete(id)
      return Promise.resolve(known)
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(id)
        resolve("none")
      }, timeoutMs)
      this.waiting.set(id, (v) => {
        clearTimeout(t)
        resolve(v)
      })
    })
  }
}

export interface Server {
  readonly ports: ReadonlyArray<number>
  /** Sockets open now (accepted and not closed). */
  open(): number
  close(): Promise<void>
}

/** A server on 127.0.0.1 (one port per entry of `count`), each connection handed to `onSocket`. */
export const listen = async (count: number, onSocket: (s: net.Socket) => void): Promise<Server> => {
  const sockets = new Set<net.Socket>()
  const servers: Array<net.Server> = []
  const ports: Array<number> = []
  for (let i = 0; i < count; i++) {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
      sockets.add(s)
      s.on("error", () => {})
      s.once("close", () => sockets.delete(s))
      onSocket(s)
    })
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => resolve())
    })
    servers.push(server)
    ports.push((server.address() as net.AddressInfo).port)
  }
  return {
    ports,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy()
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    },
  }
}

const VIA = /^1\.1 soak-[ab]$/

/** What the proxy must have done to every forwarded request head (README, design §6.3). */
export const checkForwarded = (ctx: OriginContext, req: RequestHead): void => {
  const via = all(req.fields, "via")
  if (via.length !== 1 || !VIA.test(via[0]!))
    ctx.ledger.record("origin: forwarded head", "unexpected", `Via ${JSON.stringify(via)} on ${req.target}`)
  if (all(req.fields, "proxy-authorization").length > 0)
    ctx.ledger.record("origin: forwarded head", "unexpected", `Proxy-Authorization reached the origin on ${req.target}`)
  if (!req.target.startsWith("/")) ctx.ledger.record("origin: forwarded head", "unexpected", `target not in origin-form: ${req.target}`)
}

/** What to do with the connection after a request: read the next, or leave it to the handler. */
export type After = "next" | "done"

/** Reads request after request on `socket` and hands each to `handle`. */
export const serveHttp = (
  ctx: OriginContext,
  socket: net.Socket,
  handle: (req: RequestHead, url: URL, r: Reader, socket: net.Socket, index: number) => Promise<After>,
): void => {
  const r = new Reader(socket)
  void (async () => {
    for (let index = 0; ; index++) {
      let req: RequestHead
      try {
        req = parseRequestHead(await r.head())
      } catch (e) {
        if (!(e instanceof Error) || e.constructor.name === "Malformed")
          ctx.ledger.record("origin: forwarded head", "unexpected", `unparsable request head: ${String(e)}`)
        socket.destroy()
        return
      }
      checkForwarded(ctx, req)
      let after: After
      try {
        after = await handle(req, new URL(req.target, "http://origin.soak"), r, socket, index)
      } catch {
        socket.destroy()
        return
      }
      if (after === "done") return
    }
  })()
}

/** A query parameter as a number (0 when absent). */
export const num = (url: URL, name: string): number => Number(url.searchParams.get(name) ?? 0)
