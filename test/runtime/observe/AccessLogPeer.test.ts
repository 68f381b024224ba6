/** The access log names an IPv6 client as [address]:port, an IPv4 client as address:port (real sockets). */
import * as net from "node:net"
import { describe, expect, it } from "vitest"
import { baseInit, startProxy, waitForLine } from "../loopback.ts"

const oneBadRequest = (host: string, port: number) =>
  new Promise<void>((resolve) => {
    const socket = net.connect({ host, port }, () => socket.end("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    socket.on("close", () => resolve())
    socket.on("error", () => resolve())
    socket.resume()
  })

describe("access log client address", () => {
  it.each([
    ["127.0.0.1", /^127\.0\.0\.1:\d+ GET \/ 400 /],
    ["::1", /^\[::1\]:\d+ GET \/ 400 /],
  ])("%s", async (host, line) => {
    const proxy = await startProxy(baseInit({ listen: [{ host, port: 0 }] }))
    try {
      await oneBadRequest(host, proxy.port)
      expect(await waitForLine(proxy, / GET \/ 400 /)).toMatch(line)
    } finally {
      await proxy.stop()
    }
  })
})
