/**
 * Limits and timeouts of one Postman. All durations are milliseconds; the core never reads a clock,
 * it compares these against the `now` passed with each event.
 */
export interface Limits {
  /** Longest request line (method, target, version). Longer: 414 (target) or 400. */
  readonly maxRequestLine: number
  /** Most header fields in a head. More: 431. */
  readonly maxHeaders: number
  /** Largest request or response head in bytes, request line and final CRLF included. Larger: 431 / 502. */
  readonly maxHeadBytes: number
  /** Bytes buffered per direction inside the core (e.g. client bytes while the origin connects) before reading pauses. */
  readonly maxBufferedBytes: number
  /** From Connect to Connected. Expired: 504. */
  readonly connectTimeout: number
  /** From the first byte of a request head to its end (slowloris guard). Expired: 408. */
  readonly headTimeout: number
  /** Idle time allowed between requests on a kept-alive client connection. Expired: close silently. */
  readonly keepAliveTimeout: number
  /** Inactivity allowed while a request/response or tunnel is in flight. Expired: 504 if no response began, else close. */
  readonly idleTimeout: number
}

export const defaultLimits: Limits = {
  maxRequestLine: 8 * 1024,
  maxHeaders: 100,
  maxHeadBytes: 64 * 1024,
  maxBufferedBytes: 64 * 1024,
  connectTimeout: 10_000,
  headTimeout: 30_000,
  keepAliveTimeout: 60_000,
  idleTimeout: 300_000,
}
