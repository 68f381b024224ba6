/**
 * SIGHUP: the configuration file is read again; new connections use the new settings, connections
 * already open finish under the old ones, and a broken file changes nothing.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, it } from "vitest"
import { startHttpOrigin, startTcpServer, type HttpOrigin } from "./support/origins.ts"
import { startProxy, type Proxy } from "./support/proxy.ts"
import { Conn, get, openTunnel } from "./support/wire.ts"

let origin: HttpOrigin
let echo: Awaited<ReturnType<typeof startTcpServer>>
let dir: string
const proxies: Proxy[] = []

beforeAll(async () => {
  ;[origin, echo] = await Promise.all([startHttpOrigin("r"), startTcpServer("echo")])
  dir = mkdtempSync(join(tmpdir(), "hctunnel-reload-"))
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()))
  await Promise.all([origin?.close(), echo?.close()])
  rmSync(dir, { recursive: true, force: true })
})

/** One GET on a fresh connection: the status. */
const status = async (port: number, url: string): Promise<number> => {
  const c = await Conn.open(port)
  try {
    await c.write(get(url, "Connection: close\r\n"))
    return (await c.readResponse({ timeoutMs: 5000 })).status
  } finally {
    c.destroy()
  }
}

/** Send SIGHUP and wait for the n-th line that says how the reload ended. */
const reload = async (p: Proxy, n: number): Promise<string> => {
  p.child.kill("SIGHUP")
  let seen = 0
  return p.waitForLine((line) => /configuration reloaded|reload rejected/.test(line) && ++seen === n)
}

describe("reload on SIGHUP", () => {
  it("switches the allow list for new connections, keeps an open tunnel relaying, and ignores a broken file", { timeout: 40_000 }, async ({ expect }) => {
    const file = join(dir, "config.json")
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"] }))
    const p = await startProxy({ workers: 2, extraArgs: ["--config", file] })
    proxies.push(p)
    const url = `http://127.0.0.1:${origin.port}/small`
    expect(await status(p.port, url)).toBe(200)
    const tunnel = await openTunnel(p.port, `127.0.0.1:${echo.port}`)

    // Loopback clients are no longer allowed: new connections get 403, the tunnel keeps relaying.
    writeFileSync(file, JSON.stringify({ allow: ["10.0.0.0/8"] }))
    expect(await reload(p, 1)).toMatch(/configuration reloaded: 2 workers/)
    for (let i = 0; i < 4; i++) expect(await status(p.port, url)).toBe(403)
    await tunnel.write("still here")
    expect((await tunnel.readBytes(10)).toString()).toBe("still here")

    // A file that does not validate is rejected with its error, and the running settings stay.
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"], idleTimeout: "soon" }))
    const rejected = await reload(p, 2)
    expect(rejected).toMatch(/reload rejected/)
    expect(rejected).toMatch(/idleTimeout/)
    expect(await status(p.port, url)).toBe(403)
    writeFileSync(file, "{ not json")
    expect(await reload(p, 3)).toMatch(/reload rejected.*not valid JSON/)
    expect(await status(p.port, url)).toBe(403)

    // A setting that needs a restart is named; the rest of the file applies.
    writeFileSync(file, JSON.stringify({ allow: ["127.0.0.0/8"], statsInterval: "5s" }))
    expect(await reload(p, 4)).toMatch(/configuration reloaded/)
    expect([...p.stdout, ...p.stderr].some((line) => /--stats-interval changed, but it only takes effect after a restart/.test(line))).toBe(true)
    for (let i = 0; i < 4; i++) expect(await status(p.port, url)).toBe(200)
    await tunnel.write("and now")
    expect((await tunnel.readBytes(7)).toString()).toBe("and now")
    tunnel.destroy()
  })

  it("applies new limits to new requests only", { timeout: 30_000 }, async ({ expect }) => {
    const file = join(dir, "limits.json")
    writeFileSync(file, JSON.stringify({ maxRequestLine: "8KiB" }))
    const p = await startProxy({ workers: 1, extraArgs: ["--config", file] })
    proxies.push(p)
    const long = `http://127.0.0.1:${origin.port}/small?${"q".repeat(2000)}`
    expect(await status(p.port, long)).toBe(200)
    writeFileSync(file, JSON.stringify({ maxRequestLine: "1KiB" }))
    expect(await reload(p, 1)).toMatch(/configuration reloaded: 1 worker /)
    expect(await status(p.port, long)).toBe(414)
  })
})
