/**
 * VerifierHub (main thread) and PortVerifier (worker side): ONE bcrypt verifier thread for the whole
 * process, shared by the workers through a MessagePort each.
 *
 * Why one and not one per worker: a thread costs a V8 isolate and bcrypt's WebAssembly memory (its RSS:
 * docs/performance.md, "Figures behind the code's comments"), and bcrypt work is what an attacker
 * guessing passwords makes the proxy do, so it is bounded to one core while the workers go on relaying
 * bytes on the others. Its throughput (bench/bcrypt-rate.ts,
 * docs/security.md) is paid once per client and worker, thanks to the workers' caches.
 *
 * The hub owns the thread, behind a FairVerifier (FairVerifier.ts: the process-wide failure limit, a
 * cap on each client's pending verifications, and turns between clients; the thread itself is a
 * BcryptVerifier, started on the first request and stopped when idle), and one port per worker, made when the worker is spawned (`connect`, passed in workerData) and forgotten when
 * it closes with the worker. A PortVerifier is the worker's end: the `Verifier` its Authenticator uses.
 * Neither ever keeps the process alive (every port is unref'd) nor throws into its caller.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads"
import { type Checked, type CheckedDone, FairVerifier, type FairVerifierOptions, type Verifier } from "./FairVerifier.ts"

/** A request on a worker's port: check `password` against `hash` for `client` (its rate key). */
interface PortRequest {
  readonly id: number
  readonly client: string
  readonly password: string
  readonly hash: string
}
/** The answer to request `id`. */
interface PortAnswer {
  readonly id: number
  readonly answer: Checked
}

export class VerifierHub {
  private readonly verifier: FairVerifier
  private readonly ports = new Set<MessagePort>()

  constructor(options: FairVerifierOptions = {}) {
    this.verifier = new FairVerifier(options)
  }

  /** A new worker's end of a channel to the verifier thread (transfer it in workerData). */
  connect(): MessagePort {
    const { port1, port2 } = new MessageChannel()
    this.ports.add(port1)
    port1.on("message", (request: PortRequest) => {
      this.verifier.verify(request.client, request.password, request.hash, (answer) => {
        if (this.ports.has(port1)) port1.postMessage({ id: request.id, answer } satisfies PortAnswer)
      })
    })
    port1.on("close", () => this.ports.delete(port1))
    port1.unref()
    return port2
  }

  /** Workers connected now (tests). */
  get connected(): number {
    return this.ports.size
  }

  close(): void {
    for (const port of this.ports) port.close()
    this.ports.clear()
    this.verifier.close()
  }
}

/** A worker's end: verifications go to the hub's thread. */
export class PortVerifier implements Verifier {
  private readonly port: MessagePort
  private readonly waiting = new Map<number, CheckedDone>()
  private nextId = 1
  private closed = false

  constructor(port: MessagePort) {
    this.port = port
    port.on("message", (answer: PortAnswer) => {
      const done = this.waiting.get(answer.id)
      if (done === undefined) return
      this.waiting.delete(answer.id)
      done(answer.answer)
    })
    port.on("close", () => this.shut())
    port.unref()
  }

  get pending(): number {
    return this.waiting.size
  }

  verify(client: string, password: string, hash: string, done: CheckedDone): void {
    if (this.closed) return done("failed")
    const id = this.nextId++
    this.waiting.set(id, done)
    this.port.postMessage({ id, client, password, hash } satisfies PortRequest)
  }

  close(): void {
    this.port.close()
    this.shut()
  }

  /** The hub is gone (or we are): nothing pending will be answered. */
  private shut(): void {
    this.closed = true
    const waiting = [...this.waiting.values()]
    this.waiting.clear()
    for (const done of waiting) done("failed")
  }
}
