/**
 * anonymizeProxy: a local proxy without credentials in front of a parent that needs them, for clients
 * that cannot send proxy credentials (Chromium's --proxy-server takes none): a `startProxy` with the
 * parent as `upstream`, one worker on 127.0.0.1. The proxies it started are remembered by URL until
 * `closeAnonymizedProxy` (or their own close) forgets them.
 */
import type * as Api from "./api.ts"
import { ProxyError, startProxy } from "./startProxy.ts"

const running = new Map<string, Api.RunningProxy>()

/** The Via pseudonym of an anonymizing proxy. */
export const ANONYMIZER_VIA = "hctunnel-anonymizer"

export const anonymizeProxy: typeof Api.anonymizeProxy = async (parent) => {
  const url = typeof parent === "string" ? parent : parent.url
  const port = typeof parent === "string" ? 0 : (parent.port ?? 0)
  if (typeof url !== "string" || url.trim() === "")
    throw new ProxyError("ERR_HCTUNNEL_CONFIG", "anonymizeProxy: the parent proxy's URL is missing")
  // A pseudonym of its own: a parent that is an hctunnel too would take the default one in Via for a loop (508).
  const proxy = await startProxy({ listen: [`127.0.0.1:${port}`], workers: 1, upstream: url, via: ANONYMIZER_VIA })
  running.set(proxy.url, proxy)
  void proxy.closed.then(() => {
    if (running.get(proxy.url) === proxy) running.delete(proxy.url)
  })
  return proxy.url
}

export const closeAnonymizedProxy: typeof Api.closeAnonymizedProxy = async (url, closeConnections) => {
  const proxy = running.get(url)
  if (proxy === undefined) return false
  running.delete(url)
  await proxy.close(closeConnections ? 0 : undefined)
  return true
}
