/**
 * Postman: the per-connection engine (placeholder with the final public API; being written now).
 */
import type { Action } from "./actions.ts"
import type { Event } from "./events.ts"
import type { Limits } from "./limits.ts"

export interface PostmanOptions {
  readonly limits: Limits
  /** Pseudonym for the Via header ("1.1 <via>") and loop detection. */
  readonly via: string
}

export declare class Postman {
  constructor(options: PostmanOptions)
  /** Call once right after accept; returns the first deadline (head timeout). */
  start(now: number): ReadonlyArray<Action>
  /** Feed one event; returns the actions to carry out, in order. Nothing may be fed after `closed`. */
  handle(event: Event, now: number): ReadonlyArray<Action>
  /** Graceful stop: idle connections close at once; an exchange in flight finishes, then closes. */
  shutdown(now: number): ReadonlyArray<Action>
  /** True once the client side was closed: the Postman is finished and may be dropped. */
  readonly closed: boolean
}
