/**
 * Ending a worker thread abruptly, with no switch in the product: the proxy runs with Node's inspector on
 * loopback (`--inspect=127.0.0.1:0`), the soak attaches to it, and through the `NodeWorker` domain
 * evaluates, inside the chosen worker thread, code that ends it the way a bug would: an exception nobody
 * catches (thrown from a timer, outside every try) or `process.exit()` (which in a worker ends the thread).
 * The supervisor sees the thread die exactly as it would after a crash (src/runtime/supervisor.ts replaces
 * it with backoff), and the worker's connections are cut by the thread's teardown.
 *
 * Only the proxy's own workers are targets (their `workerData` has an `id`); the bcrypt verifier thread
 * is a worker too, and is left alone.
 */
import WebSocket from "ws"

interface Attached {
  readonly sessionId: string
  /** The hctunnel worker id (0..workers-1), once asked. */
  proxyId: number | undefined
}

export class Inspector {
  private nextId = 1
  private readonly pending = new Map<number, (result: unknown) => void>()
  private readonly inner = new Map<string, Map<number, (result: unknown) => void>>()
  private readonly workers = new Map<string, Attached>()

  private readonly ws: WebSocket

  private constructor(ws: WebSocket) {
    this.ws = ws
    ws.on("message", (data) => this.onMessage(JSON.parse(String(data)) as Record<string, unknown>))
  }

  static async connect(url: string): Promise<Inspector> {
    const ws = new WebSocket(url)
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve())
      ws.once("error", reject)
    })
    const inspector = new Inspector(ws)
    await inspector.call("NodeWorker.enable", { waitForDebuggerOnStart: false })
    return inspector
  }

  private call(method: string, params: object): Promise<unknown> {
    const id = this.nextId++
    return new Promise((resolve) => {
      this.pending.set(id, resolve)
      this.ws.send(JSON.stringify({ id, method, params }))
    })
  }

  /** Runtime.evaluate inside one worker thread; resolves with its result (or undefined if the thread ends first). */
  private evaluate(sessionId: string, expression: string): Promise<unknown> {
    const id = this.nextId++
    let waiting = this.inner.get(sessionId)
    if (waiting === undefined) this.inner.set(sessionId, (waiting = new Map()))
    const w = waiting
    return new Promise((resolve) => {
      w.set(id, resolve)
      const message = JSON.stringify({ id, method: "Runtime.evaluate", params: { expression, returnByValue: true } })
      void this.call("NodeWorker.sendMessageToWorker", { sessionId, message })
    })
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (typeof msg["id"] === "number") {
      this.pending.get(msg["id"])?.(msg["result"])
      this.pending.delete(msg["id"])
      return
    }
    const params = msg["params"] as Record<string, unknown> | undefined
    if (msg["method"] === "NodeWorker.attachedToWorker" && params !== undefined) {
      const sessionId = String(params["sessionId"])
      const w: Attached = { sessionId, proxyId: undefined }
      this.workers.set(sessionId, w)
      void this.evaluate(sessionId, "process.getBuiltinModule('node:worker_threads').workerData?.id ?? -1").then((r) => {
        const value = (r as { result?: { value?: unknown } } | undefined)?.result?.value
        w.proxyId = typeof value === "number" && value >= 0 ? value : undefined
      })
    } else if (msg["method"] === "NodeWorker.detachedFromWorker" && params !== undefined) {
      const sessionId = String(params["sessionId"])
      this.workers.delete(sessionId)
      for (const resolve of this.inner.get(sessionId)?.values() ?? []) resolve(undefined)
      this.inner.delete(sessionId)
    } else if (msg["method"] === "NodeWorker.receivedMessageFromWorker" && params !== undefined) {
      const sessionId = String(params["sessionId"])
      const inner = JSON.parse(String(params["message"])) as { id?: number; result?: unknown }
      if (typeof inner.id !== "number") return
      this.inner.get(sessionId)?.get(inner.id)?.(inner.result)
      this.inner.get(sessionId)?.delete(inner.id)
    }
  }

  /** The proxy worker ids the inspector is attached to now. */
  proxyWorkers(): Array<number> {
    return [...this.workers.values()].flatMap((w) => (w.proxyId === undefined ? [] : [w.proxyId]))
  }

  /**
   * Ends proxy worker `id`: "throw" (an uncaught exception on its event loop) or "exit" (process.exit in the
   * thread). Returns false when no such worker is attached.
   */
  endWorker(id: number, how: "throw" | "exit"): boolean {
    const target = [...this.workers.values()].find((w) => w.proxyId === id)
    if (target === undefined) return false
    const code =
      how === "throw"
        ? "setImmediate(() => { throw new Error('ended on purpose by the soak (uncaught exception)') }); 0"
        : "setImmediate(() => process.exit(71)); 0"
    void this.evaluate(target.sessionId, code)
    return true
  }

  close(): void {
    this.ws.close()
  }
}
