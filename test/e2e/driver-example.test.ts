/**
 * examples/driver.ts, the example driver of docs/design.md §10, run as a user runs it: `node
 * examples/driver.ts`, importing the engine as `hctunnel/core` (the package's own exports, resolved by
 * Node to the built dist/core.js). It must be a working proxy: one GET through it to a loopback origin
 * (by a name from its hosts map, never a real DNS lookup), one CONNECT tunnel to a loopback echo server,
 * and an unknown name answered 502 by the engine.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import http from "node:http"
import net from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanEnv } from "./support/env.ts"
import { ROOT } from "./support/proxy.ts"
import { Conn, get, openTunnel } from "./support/wire.ts"

let origin: http.Server
let originPort: number
let echo: net.Server
let echoPort: number
let driver: ChildProcess
let driverPort: number
let output = ""

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)))

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist/core.js"))) throw new Error("dist/ does not exist: run `npm run build` (npm test does it first)")
  origin = http.createServer((req, res) => {
    res.setHeader("Content-Type", "text/plain")
    res.end(`hello from the origin: ${req.method} ${req.url} via ${req.headers["via"]}`)
  })
  originPort = await listen(origin)
  echo = net.createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket))
  echoPort = await listen(echo)
  driver = spawn(process.execPath, [join(ROOT, "examples/driver.ts"), "0", JSON.stringify({ "origin.test": "127.0.0.1" })], {
    cwd: ROOT,
    env: cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  })
  driverPort = await new Promise<number>((resolve, reject) => {
    driver.stdout!.on("data", (d: Buffer) => {
      output += d.toString("utf8")
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(output)
      if (m !== null) resolve(Number(m[1]))
    })
    driver.stderr!.on("data", (d: Buffer) => (output += d.toString("utf8")))
    driver.once("exit", (code) => reject(new Error(`the example driver exited (${code}):\n${output}`)))
  })
}, 60_000)

afterAll(async () => {
  driver?.kill()
  await Promise.all([origin, echo].map((s) => new Promise((r) => (s === undefined ? r(undefined) : s.close(() => r(undefined))))))
})

describe("examples/driver.ts", () => {
  it("forwards a GET to the origin its hosts map names, and logs it", async () => {
    const c = await Conn.open(driverPort)
    await c.write(get(`http://origin.test:${originPort}/path?q=1`))
    const r = await c.readResponse()
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe("hello from the origin: GET /path?q=1 via 1.1 example")
    expect(r.headers["via"]).toBe("1.1 example")
    c.destroy()
    await expect.poll(() => output).toContain(`"target":"http://origin.test:${originPort}/path?q=1"`)
  })

  it("opens a CONNECT tunnel and relays bytes both ways, half-close included", async () => {
    const c = await openTunnel(driverPort, `127.0.0.1:${echoPort}`, "early bytes, ")
    await c.write("then more")
    c.end()
    const echoed = await c.readToEnd()
    expect(echoed.toString()).toBe("early bytes, then more")
  })

  it("answers 502 for a name outside its hosts map, without any DNS lookup", async () => {
    const c = await Conn.open(driverPort)
    await c.write(get("http://unknown.test/"))
    const r = await c.readResponse()
    expect(r.status).toBe(502)
    expect(r.body.toString()).toBe("502 Bad Gateway: could not resolve host unknown.test\n")
    await c.waitEnd()
    c.destroy()
  })
})
