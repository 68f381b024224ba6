/**
 * Connection + Resolver + Happy Eyeballs in-process over loopback: names come from a DNS server the
 * test starts on 127.0.0.1, and "hanging" addresses are loopback listeners whose accept queue is full
 * (a python3 process listens with backlog 0 and never accepts), so a connect to them gets no answer.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { startDnsServer } from "../../e2e/support/dns.ts"
import { until } from "../../e2e/support/wire.ts"
import { baseInit, closeServer, freePort, rawClient, type RunningProxy, startProxy } from "../loopback.ts"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})
const proxy = async (...args: Parameters<typeof startProxy>): Promise<RunningProxy> => {
  const p = await startProxy(...args)
  cleanups.push(() => p.stop(50))
  return p
}

/** A listener on `host`:`port` (0: any) whose connects hang once its queue is full; returns its port. */
const hangingListener = async (host: "127.0.0.1" | "::1", port = 0): Promise<number> => {
  const script = [
    "import socket, sys",
    `s = socket.socket(socket.AF_INET${host === "::1" ? "6" : ""})`,
    `s.bind(('${host}', ${port}))`,
    "s.listen(0)",
    "print(s.getsockname()[1], flush=True)",
    "sys.stdin.read()",
  ].join("\n")
  const child: ChildProcess = spawn("python3", ["-c", script], { stdio: ["pipe", "pipe", "inherit"] })
  const bound = await new Promise<number>((resolve, reject) => {
    child.once("error", reject)
    child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())))
  })
  // Fill the queue with our own connections until one gets no answer within a second (a loopback
  // connect that is answered takes milliseconds, even on a busy machine). Bounded.
  const fillers: Array<net.Socket> = []
  for (let i = 0; i < 8; i++) {
    const s = net.connect(bound, host)
    fillers.push(s)
    s.on("error", () => {})
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 1_000)
      s.once("connect", () => {
        clearTimeout(t)
        resolve(true)
      })
    })
    if (!connected) break
  }
  cleanups.push(() => {
    for (const s of fillers) s.destroy()
    child.stdin!.end()
    child.kill()
  })
  return bound
}

/** An echo server on 127.0.0.1:`port`, counting connections. */
const echoOn = async (port: number) => {
  let accepted = 0
  const server = net.createServer((s) => {
    accepted++
    s.pipe(s)
  })
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port }, resolve))
  cleanups.push(() => closeServer(server))
  return { accepted: () => accepted }
}

describe("a name with several addresses (Happy Eyeballs through the proxy)", () => {
  it("IPv6 address hangs: IPv4 is tried after the attempt delay and the tunnel works", async () => {
    const port = await hangingListener("::1")
    const echo = await echoOn(port)
    const dns = await startDnsServer({ "dual.test": { addresses: ["::1", "127.0.0.1"] } })
    cleanups.push(dns.close)
    const p = await proxy(baseInit({ dnsServers: [dns.address] }))
    const c = rawClient(p.port)
    c.socket.write(`CONNECT dual.test:${port} HTTP/1.1\r\nHost: dual.test:${port}\r\n\r\n`)
    await c.waitFor("\r\n\r\n")
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 /)
    c.socket.write("ping")
    await c.waitFor("ping")
    expect(echo.accepted()).toBe(1)
    expect(p.server.stats.dnsQueries).toBe(2) // A and AAAA, counted in the worker's stats
    c.socket.end()
    await c.waitClose()
  })

  it("every address hangs: 504 at connectTimeout, and the race leaves nothing behind", async () => {
    const port = await hangingListener("::1")
    await hangingListener("127.0.0.1", port)
    const dns = await startDnsServer({ "stuck.test": { addresses: ["::1", "127.0.0.1"] } })
    cleanups.push(dns.close)
    const p = await proxy(baseInit({ dnsServers: [dns.address] }, { connectTimeout: 600 }))
    const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length
    const before = tcpHandles()
    const c = rawClient(p.port)
    c.socket.write(`CONNECT stuck.test:${port} HTTP/1.1\r\nHost: stuck.test:${port}\r\n\r\n`)
    await c.waitClose()
    expect(c.text()).toMatch(/^HTTP\/1\.1 504 /)
    await until("the connection to finish", () => p.server.liveConnections === 0)
    // Both attempt sockets (and the client's two ends) are closed: as many TCP handles as before.
    await until("every socket of the race to be closed", () => tcpHandles() === before)
  })

  it("every address refuses: 502 'refused'", async () => {
    const dns = await startDnsServer({ "closed.test": { addresses: ["::1", "127.0.0.1"] } })
    cleanups.push(dns.close)
    const port = await freePort() // nothing listens there, on either family
    const p = await proxy(baseInit({ dnsServers: [dns.address] }))
    const c = rawClient(p.port)
    c.socket.write(`GET http://closed.test:${port}/ HTTP/1.1\r\nHost: closed.test:${port}\r\n\r\n`)
    await c.waitClose()
    expect(c.text()).toMatch(/^HTTP\/1\.1 502 /)
    expect(c.text()).toContain("refused")
  })
})
