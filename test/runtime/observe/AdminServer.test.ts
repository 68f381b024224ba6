/**
 * AdminServer over loopback, in process: the allow list (a refused source is closed before anything is
 * read, and cannot take the allowed sources' slots), the Host check (421), a failing source (500, the
 * server lives on), health states, and a listen failure worded for a person (naming --admin).
 */
import net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import {
  AdminListenError,
  AdminServer,
  type AdminSources,
  type Health,
  hostNamesEndpoint,
  MAX_ADMIN_CONNECTIONS,
} from "../../../src/runtime/observe/AdminServer.ts"
import { AllowList } from "../../../src/runtime/access/Allow.ts"

const servers: AdminServer[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

const start = async (sources: Partial<AdminSources>, allow: ReadonlyArray<string> = ["127.0.0.0/8"]) => {
  const server = new AdminServer({
    address: { host: "127.0.0.1", port: 0 },
    allow: AllowList.parse(allow),
    sources: { health: () => "serving", stats: async () => ({}), metrics: async () => "", ...sources },
  })
  servers.push(server)
  const bound = await server.listen()
  return { server, port: bound.port, base: `http://127.0.0.1:${bound.port}` }
}

/** A raw connection from `localAddress`: sends `text` (if any) and collects what comes back until the close. */
const raw = (port: number, text: string | undefined, localAddress = "127.0.0.1") => {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress })
  socket.on("error", () => {})
  let got = ""
  socket.on("data", (d: Buffer) => (got += d.toString("latin1")))
  if (text !== undefined) socket.write(text)
  const closed = new Promise<string>((resolve) => socket.once("close", () => resolve(got)))
  return { socket, closed }
}

describe("AdminServer", () => {
  it("closes a connection from outside its allow list when it is accepted, without reading or answering", async () => {
    const { port } = await start({}, ["::1/128", "10.0.0.0/8"])
    expect(await raw(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`).closed).toBe("")
  })

  it("sources outside the allow list cannot take the slots of the allowed ones (issue 17 item 8)", async () => {
    const { port, base } = await start({}, ["127.0.0.1/32"])
    // Many more than the allowed sources' capacity, each with a partial head, from a refused address.
    const refused = Array.from({ length: MAX_ADMIN_CONNECTIONS + 16 }, () => raw(port, "GET /healthz HTTP/1.1\r\n", "127.0.0.2"))
    for (const r of refused) expect(await r.closed).toBe("")
    // Allowed sources holding partial heads fill their own capacity; one more of them is closed at once.
    const held = Array.from({ length: MAX_ADMIN_CONNECTIONS - 1 }, () => raw(port, "GET /healthz HTTP/1.1\r\n"))
    await Promise.all(held.map((h) => new Promise((r) => h.socket.once("connect", r))))
    expect((await fetch(`${base}/healthz`, { headers: { connection: "close" } })).status).toBe(200)
    const more = [raw(port, "GET /healthz HTTP/1.1\r\n"), raw(port, "GET /healthz HTTP/1.1\r\n")]
    expect(await Promise.race(more.map((m) => m.closed))).toBe("")
    for (const h of [...held, ...more]) h.socket.destroy()
  })

  it("answers 421 unless Host names its own address: the IP literal with its port, or localhost:port on loopback", async () => {
    const { port } = await start({})
    const status = async (head: string) => (await raw(port, `GET /healthz ${head}\r\nConnection: close\r\n\r\n`).closed).slice(9, 12)
    expect(await status(`HTTP/1.1\r\nHost: 127.0.0.1:${port}`)).toBe("200")
    expect(await status(`HTTP/1.1\r\nHost: localhost:${port}`)).toBe("200")
    expect(await status(`HTTP/1.1\r\nHost: LocalHost:${port}`)).toBe("200")
    expect(await status("HTTP/1.0")).toBe("200") // no Host: a load balancer's check, never a browser
    expect(await status(`HTTP/1.1\r\nHost: rebound.example:${port}`)).toBe("421")
    expect(await status(`HTTP/1.1\r\nHost: 127.0.0.1:${port + 1}`)).toBe("421")
    expect(await status("HTTP/1.1\r\nHost: 127.0.0.1")).toBe("421")
    expect(await status(`HTTP/1.1\r\nHost: user@127.0.0.1:${port}`)).toBe("421")
    const body = await raw(port, `GET /metrics HTTP/1.1\r\nHost: rebound.example:${port}\r\n\r\n`).closed
    expect(body).toContain(`421 Misdirected Request: this endpoint answers to its own address (Host: 127.0.0.1:${port})`)
  })

  it("hostNamesEndpoint: the address the connection arrived on, in any spelling a URL accepts; localhost only on loopback", () => {
    expect(hostNamesEndpoint("[::1]:9090", "::1", 9090)).toBe(true)
    expect(hostNamesEndpoint("[0:0:0:0:0:0:0:1]:9090", "::1", 9090)).toBe(true)
    expect(hostNamesEndpoint("localhost:9090", "::1", 9090)).toBe(true)
    // A wildcard listener: the IPv4 client arrived on an IPv4-mapped address.
    expect(hostNamesEndpoint("127.0.0.1:9090", "::ffff:127.0.0.1", 9090)).toBe(true)
    expect(hostNamesEndpoint("10.0.0.5:9090", "10.0.0.5", 9090)).toBe(true)
    expect(hostNamesEndpoint("localhost:9090", "10.0.0.5", 9090)).toBe(false)
    expect(hostNamesEndpoint("prometheus-target.example:9090", "10.0.0.5", 9090)).toBe(false)
    expect(hostNamesEndpoint("10.0.0.6:9090", "10.0.0.5", 9090)).toBe(false)
    expect(hostNamesEndpoint("10.0.0.5", "10.0.0.5", 80)).toBe(true)
    expect(hostNamesEndpoint("10.0.0.5:80", "10.0.0.5", 80)).toBe(true)
    expect(hostNamesEndpoint("10.0.0.5/x:9090", "10.0.0.5", 9090)).toBe(false)
    expect(hostNamesEndpoint("", "10.0.0.5", 9090)).toBe(false)
    expect(hostNamesEndpoint(undefined, "10.0.0.5", 9090)).toBe(true)
  })

  it("/healthz follows the health source: starting and draining are 503", async () => {
    let health: Health = "starting"
    const { base } = await start({ health: () => health })
    const ask = async () => {
      const r = await fetch(`${base}/healthz`)
      return `${r.status} ${await r.text()}`
    }
    expect(await ask()).toBe("503 starting\n")
    health = "serving"
    expect(await ask()).toBe("200 ok\n")
    health = "draining"
    expect(await ask()).toBe("503 draining\n")
  })

  it("a source that fails is a 500 with its reason, and the server keeps answering", async () => {
    const { base } = await start({ metrics: () => Promise.reject(new Error("workers unreachable")) })
    const r = await fetch(`${base}/metrics`)
    expect(r.status).toBe(500)
    expect(await r.text()).toBe("500 Internal Server Error: workers unreachable\n")
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
  })

  it("a port in use fails with a message naming --admin", async () => {
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const server = new AdminServer({
        address: { host: "127.0.0.1", port },
        allow: AllowList.parse(["127.0.0.0/8"]),
        sources: { health: () => "serving", stats: async () => ({}), metrics: async () => "" },
      })
      const e = await server.listen().then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(e).toBeInstanceOf(AdminListenError)
      // The reason as data; the CLI words it (src/cli/wording.ts; test/e2e/admin.test.ts checks the words).
      expect((e as AdminListenError).reason).toBe("EADDRINUSE")
      expect((e as AdminListenError).detail).toMatch(/EADDRINUSE/)
    } finally {
      blocker.close()
    }
  })
})
