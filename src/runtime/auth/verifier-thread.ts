/**
 * verifier-thread.ts: the entry point of a worker's bcrypt verifier thread (see BcryptVerifier.ts).
 *
 * Owns nothing but the computation: it gets `{ id, password, hash }` messages on its parent port and
 * answers `{ id, ok }`, one at a time, in order. bcrypt costs tens of milliseconds by design; here it
 * runs beside the proxy's event loop instead of on it. It keeps no state, reads no file, and never
 * sees anything but one password and one hash at a time.
 *
 * hash-wasm's bcrypt (WebAssembly, shipped inside the npm package) checks `$2a$`, `$2b$` and `$2y$`
 * hashes and compares the result in constant time (no early exit).
 */
import { bcryptVerify } from "hash-wasm"
import { parentPort } from "node:worker_threads"

export interface VerifyRequest {
  readonly id: number
  readonly password: string
  readonly hash: string
}
export interface VerifyAnswer {
  readonly id: number
  /** The password matches the hash; false also for a hash the library refuses. */
  readonly ok: boolean
}

const port = parentPort
if (port !== null) {
  let chain: Promise<void> = Promise.resolve()
  port.on("message", (request: VerifyRequest) => {
    chain = chain.then(async () => {
      let ok = false
      try {
        ok = await bcryptVerify({ password: request.password, hash: request.hash })
      } catch {
        ok = false
      }
      port.postMessage({ id: request.id, ok } satisfies VerifyAnswer)
    })
  })
}
