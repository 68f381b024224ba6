/**
 * hctunnel/core: the public entry of the HTTP/1.1 engine, for programs that embed it (package.json
 * `exports["./core"]`, built to dist/core.js with its declarations in dist/core/).
 *
 * What it exports is the contract of docs/design.md: the `Postman` (one per client connection: events in,
 * actions out, no IO, no clock), the event and action records, and the limits with their defaults.
 * It must only re-export: the engine lives in the modules beside it, and nothing here may import `node:*`.
 */
export { type ExchangeInfo, Postman, type PostmanOptions, type PostmanState } from "./postman.ts"
export type { ConnectFailure, Event, Side } from "./events.ts"
export type { AccessRecord, Action, Outcome } from "./actions.ts"
export { defaultLimits, type Limits } from "./limits.ts"
