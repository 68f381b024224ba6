/**
 * VerifierHub (main thread) and PortVerifier (worker side): ONE bcrypt verifier thread for the whole
 * process, shared by the workers through a MessagePort each.
 *
 * Why one and not one per worker: a thread costs ~20 MB of RSS (a V8 isolate and bcrypt's WebAssembly
 * memory), and bcrypt work is what an attacker guessing passwords makes the proxy do, so it is bounded
 * to one core while the workers go on relaying bytes on the others. Its throughput (~16 verifications
 * a second at cost 10) is paid once per client and worker, thanks to the workers' caches.
 *
 * The hub owns the thread (a BcryptVerifier: started on the first request, stopped when idle) and one
 * port per worker, made when the worker is spawned (`connect`, passed in workerData) and forgotten when
 * it closes with the worker. A PortVerifier is the worker's end: the `Verifier` its Authenticator uses.
 * Neither ever keeps the process alive (every port is unref'd) nor throws into its caller.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads"
import { BcryptVerifier, type BcryptVerifierOptions, type Verifier, type VerifyDone } from "./BcryptVerifier.ts"
import type { VerifyRequest } from "./verifier-thread.ts"

/** An answer on a worker's port: `ok` undefined when the credentials could not be checked. */
interface PortAnswer {
  readonly id: number
  readonly ok: boolean | undefined
}

export class VerifierHub {
  private readonly verifier: BcryptVerifier
  private readonly ports = new Set<MessagePort>()

  constructor(options: BcryptVerifierOptions = {}) {
    this.verifier = new BcryptVerifier(options)
  }

  /** A new worker's end of a channel to the verifier thread (transfer it in workerData). */
  connect(): MessagePort {
    const { port1, port2 } = new MessageChannel()
    this.ports.add(port1)
    port1.on("message", (request: VerifyRequest) => {
      this.verifier.verify(request.password, request.hash, (ok) => {
        if (this.ports.has(port1)) port1.postMessage({ id: request.id, ok } satisfies PortAnswer)
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
  private readonly waiting = new Map<number, VerifyDone>()
  private nextId = 1
  private closed = false

  constructor(port: MessagePort) {
    this.port = port
    port.on("message", (answer: PortAnswer) => {
      const done = this.waiting.get(answer.id)
      if (done === undefined) return
      this.waiting.delete(answer.id)
      done(answer.ok)
    })
    port.on("close", () => this.shut())
    port.unref()
  }

  get pending(): number {
    return this.waiting.size
  }

  verify(password: string, hash: string, done: VerifyDone): void {
    if (this.closed) return done(undefined)
    const id = this.nextId++
    this.waiting.set(id, done)
    this.port.postMessage({ id, password, hash } satisfies VerifyRequest)
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
    for (const done of waiting) done(undefined)
  }
}
