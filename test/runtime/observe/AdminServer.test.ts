/**
 * AdminServer over loopback, in process: the allow list (403), a failing source (500, the server
 * lives on), health states, and a listen failure worded for a person (naming --admin).
 */
import net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { AdminListenError, AdminServer, type AdminSources, type Health } from "../../../src/runtime/observe/AdminServer.ts"
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
  return { server, base: `http://127.0.0.1:${bound.port}` }
}

describe("AdminServer", () => {
  it("answers 403 to a client outside its allow list", async () => {
    const { base } = await start({}, ["::1/128", "10.0.0.0/8"])
    const r = await fetch(`${base}/healthz`)
    expect(r.status).toBe(403)
    expect(await r.text()).toMatch(/client address not allowed/)
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
