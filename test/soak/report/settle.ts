/**
 * The settle after the load stops: wait (at least 4 s, at most 30 s) until the proxy's live connections
 * are 0, every origin socket is closed (the proxy closes pooled idle connections after 2 s) and the
 * proxy's open fds are back within the slack of the start; then report where they are.
 */
import type { ProxyProcess } from "../env/Proxy.ts"

/**
 * Open fds may differ from the start by this much and still count as "back": the bcrypt verifier thread
 * (started when first needed, stopped after 30 s idle) has an event loop of its own (an epoll fd, eventfds),
 * and each worker's c-ares resolver keeps a UDP socket or two that a restarted worker may not have opened yet.
 */
export const FD_SLACK = 8

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export const settle = async (
  proxy: ProxyProcess,
  originSockets: () => number,
  fdsStart: number,
): Promise<{ liveEnd: number; fdsEnd: number; originSocketsEnd: number }> => {
  const started = performance.now()
  for (;;) {
    await sleep(1000)
    const liveEnd = (await proxy.stats().catch(() => ({}) as Record<string, number>))["connectionsLive"] ?? -1
    const originSocketsEnd = originSockets()
    const fdsEnd = proxy.fds()
    const settled = liveEnd === 0 && originSocketsEnd === 0 && Math.abs(fdsEnd - fdsStart) <= FD_SLACK
    const waited = performance.now() - started
    if ((settled && waited > 4000) || waited > 30_000) return { liveEnd, fdsEnd, originSocketsEnd }
  }
}
