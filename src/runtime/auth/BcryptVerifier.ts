/**
 * BcryptVerifier: checks passwords against bcrypt hashes on a thread of its own, so that a worker's
 * event loop never spends the tens of milliseconds a bcrypt verification costs by design.
 *
 * Owns one verifier thread (verifier-thread.ts), started on the first verification and stopped after
 * `idleMs` without work, so a proxy whose clients' credentials are cached keeps no thread busy. The
 * process has one, behind the FairVerifier of the main thread's VerifierHub, shared by the workers; a
 * ProxyServer run without a hub (in-process tests) makes its own. Requests are answered in order through one callback each; if the thread dies,
 * every pending request is answered `undefined` ("could not check") and the next one starts a new thread.
 *
 * It must never block, never throw into its caller, and never keep the process alive (the thread is unref'd).
 */
import * as Data from "effect/Data"
import { Worker } from "node:worker_threads"
import type { VerifyAnswer, VerifyRequest } from "./verifier-thread.ts"

/** `true`/`false`: the password matches or not; `undefined`: it could not be checked (the thread failed). */
export type VerifyDone = (ok: boolean | undefined) => void

/** Where the thread's module is: `.ts` beside this file in development, `dist/verifier.js` when bundled. */
export const defaultVerifierUrl = (): URL =>
  new URL(import.meta.url.endsWith(".ts") ? "./verifier-thread.ts" : "./verifier.js", import.meta.url)

/** The verifier thread could not start, or ended under us; the verifications it had are answered `undefined`. */
export class VerifierError extends Data.TaggedError("VerifierError")<{
  readonly reason: "start-failed" | "thread-failed"
  /** The thread's (or Node's) own words: an error message, or "exited with code N". */
  readonly detail: string
}> {
  override get message(): string {
    return this.reason === "start-failed"
      ? `cannot start the bcrypt verifier thread: ${this.detail}`
      : `the bcrypt verifier thread failed: ${this.detail}`
  }
}

export interface BcryptVerifierOptions {
  readonly url?: URL
  /** Stop the thread after this long without a pending verification (default 30 s). */
  readonly idleMs?: number
  /** Told when the thread fails (its pending verifications were answered `undefined`). */
  readonly onError?: (error: VerifierError) => void
}

export class BcryptVerifier {
  private readonly url: URL
  private readonly idleMs: number
  private readonly onError: ((error: VerifierError) => void) | undefined
  private thread: Worker | undefined = undefined
  private nextId = 1
  private readonly waiting = new Map<number, VerifyDone>()
  private idleTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private closed = false

  constructor(options: BcryptVerifierOptions = {}) {
    this.url = options.url ?? defaultVerifierUrl()
    this.idleMs = options.idleMs ?? 30_000
    this.onError = options.onError
  }

  get pending(): number {
    return this.waiting.size
  }

  /** Whether a verifier thread is running now (for tests and stats). */
  get running(): boolean {
    return this.thread !== undefined
  }

  verify(password: string, hash: string, done: VerifyDone): void {
    if (this.closed) return done(undefined)
    let thread = this.thread
    if (thread === undefined) {
      try {
        thread = this.start()
      } catch (e) {
        this.onError?.(new VerifierError({ reason: "start-failed", detail: e instanceof Error ? e.message : String(e) }))
        return done(undefined)
      }
    }
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer)
      this.idleTimer = undefined
    }
    const id = this.nextId++
    this.waiting.set(id, done)
    thread.postMessage({ id, password, hash } satisfies VerifyRequest)
  }

  /** Stop the thread; pending verifications are answered `undefined`. */
  close(): void {
    this.closed = true
    this.stop()
  }

  private start(): Worker {
    // A small heap: the thread holds one password and one hash at a time (bcrypt's state is WASM memory).
    const thread = new Worker(this.url, { resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 } })
    thread.unref()
    thread.on("message", (answer: VerifyAnswer) => this.answered(answer))
    thread.on("error", (e: Error) => this.failed(thread, e.message))
    thread.on("exit", (code: number) => this.failed(thread, `exited with code ${code}`))
    this.thread = thread
    return thread
  }

  private answered(answer: VerifyAnswer): void {
    const done = this.waiting.get(answer.id)
    if (done === undefined) return
    this.waiting.delete(answer.id)
    if (this.waiting.size === 0 && this.idleTimer === undefined && !this.closed) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined
        if (this.waiting.size === 0) this.stop()
      }, this.idleMs)
      this.idleTimer.unref()
    }
    done(answer.ok)
  }

  /** The thread ended under us: nothing it had will be answered. */
  private failed(thread: Worker, message: string): void {
    if (this.thread !== thread) return // already stopped on purpose
    this.thread = undefined
    this.onError?.(new VerifierError({ reason: "thread-failed", detail: message }))
    this.answerAllUnchecked()
  }

  private stop(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer)
      this.idleTimer = undefined
    }
    const thread = this.thread
    this.thread = undefined
    if (thread !== undefined) void thread.terminate()
    this.answerAllUnchecked()
  }

  private answerAllUnchecked(): void {
    const waiting = [...this.waiting.values()]
    this.waiting.clear()
    for (const done of waiting) done(undefined)
  }
}
