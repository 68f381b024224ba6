/**
 * FairVerifier: shares the one bcrypt verifier thread between clients so that no client can take it all.
 *
 * bcrypt costs tens of milliseconds by design and the process has one thread for it (VerifierHub.ts), so
 * its time is what a password-guessing client competes for. In front of the thread this keeps:
 *   - the failure limit for the whole process (FailureLimit.ts): a client that started FAILURE_LIMIT
 *     attempts in the window is answered `limited` without a verification, whichever worker asks;
 *   - at most PENDING_PER_CLIENT verifications waiting or running per client; more are answered `busy`
 *     at once (a client that sends its guesses all at once gets most of them refused, not queued);
 *   - one queue per client, served in turn (round robin, one verification at a time), so a client that
 *     keeps its share full delays another client's verification by at most one of its own per turn:
 *     whoever floods, a correct login from elsewhere is checked after at most one verification per
 *     other client waiting, not after the flood;
 *   - at most QUEUE_MAX verifications waiting in all; more are answered `overloaded` (503): only many
 *     clients at once can fill it, each to its own PENDING_PER_CLIENT.
 * A client is its rate key (access/RateKey.ts), given by the worker with each request.
 *
 * One per process, in the main thread's VerifierHub; a ProxyServer run without a hub (in-process tests)
 * makes its own. It never throws into its caller and answers every request exactly once.
 */
import { BcryptVerifier, type BcryptVerifierOptions } from "./BcryptVerifier.ts"
import { FailureLimit } from "./FailureLimit.ts"

/**
 * What became of a verification: `match` / `mismatch` (bcrypt said), or not checked: `limited` (the
 * client's attempts for this window are used up), `busy` (too many of its own are pending), `overloaded`
 * (too many are pending in all), `failed` (the verifier thread failed or is closed).
 */
export type Checked = "match" | "mismatch" | "limited" | "busy" | "overloaded" | "failed"
export type CheckedDone = (answer: Checked) => void

/** What the Authenticator needs from a verifier: a FairVerifier, or a worker's PortVerifier to the hub's. */
export interface Verifier {
  /** Check `password` against `hash` for `client` (a rate key); `done` is called exactly once. */
  verify(client: string, password: string, hash: string, done: CheckedDone): void
  /** Verifications asked for and not answered yet. */
  readonly pending: number
  close(): void
}

/** Verifications one client may have waiting or running at once, in the whole process. */
export const PENDING_PER_CLIENT = 4
/** Verifications waiting in all before new ones are answered `overloaded`. */
export const QUEUE_MAX = 256

export interface FairVerifierOptions extends BcryptVerifierOptions {
  /** The clock of the failure limit's windows (default `performance.now`). */
  readonly now?: () => number
  readonly failureLimit?: number
  readonly failureWindowMs?: number
}

interface Job {
  readonly client: string
  readonly password: string
  readonly hash: string
  readonly done: CheckedDone
}

export class FairVerifier implements Verifier {
  private readonly bcrypt: BcryptVerifier
  private readonly failures: FailureLimit
  /** Client -> its waiting jobs; the Map's order is the turn order (a client served goes to the back). */
  private readonly queues = new Map<string, Array<Job>>()
  private queued = 0
  /** The job on the thread now: one at a time, so the order is decided here and not in the thread's queue. */
  private running: Job | undefined = undefined
  private closed = false

  constructor(options: FairVerifierOptions = {}) {
    this.bcrypt = new BcryptVerifier(options)
    const now = options.now ?? (() => performance.now())
    this.failures = new FailureLimit(now, options.failureLimit, options.failureWindowMs)
  }

  get pending(): number {
    return this.queued + (this.running === undefined ? 0 : 1)
  }

  /** Whether the verifier thread is running now (tests). */
  get threadRunning(): boolean {
    return this.bcrypt.running
  }

  verify(client: string, password: string, hash: string, done: CheckedDone): void {
    if (this.closed) return done("failed")
    const queue = this.queues.get(client)
    const mine = (queue?.length ?? 0) + (this.running?.client === client ? 1 : 0)
    if (mine >= PENDING_PER_CLIENT) return done("busy")
    if (this.queued >= QUEUE_MAX) return done("overloaded")
    if (!this.failures.take(client)) return done("limited")
    const job: Job = { client, password, hash, done }
    if (queue === undefined) this.queues.set(client, [job])
    else queue.push(job)
    this.queued++
    this.next()
  }

  close(): void {
    this.closed = true
    const waiting = [...this.queues.values()].flat()
    this.queues.clear()
    this.queued = 0
    for (const job of waiting) job.done("failed")
    this.bcrypt.close() // answers the running job, if any
  }

  /**
   * Hand the oldest job of the client whose turn it is to the thread, unless one is running. The client
   * keeps its place while its job runs and goes to the back of the turn when it is done (`finished`), so
   * a client that arrived meanwhile is served before the same client's next job.
   */
  private next(): void {
    if (this.running !== undefined || this.closed) return
    const first = this.queues.entries().next()
    if (first.done === true) return
    const [client, queue] = first.value
    const job = queue.shift()!
    this.queued--
    this.running = job
    this.bcrypt.verify(job.password, job.hash, (ok) => this.finished(client, queue, job, ok))
  }

  private finished(client: string, queue: Array<Job>, job: Job, ok: boolean | undefined): void {
    this.running = undefined
    if (!this.closed && this.queues.get(client) === queue) {
      this.queues.delete(client)
      if (queue.length > 0) this.queues.set(client, queue) // to the back of the turn
    }
    // Right, or not judged: the attempt does not count against the client.
    if (ok !== false) this.failures.giveBack(client)
    try {
      job.done(ok === undefined ? "failed" : ok ? "match" : "mismatch")
    } finally {
      this.next()
    }
  }
}
