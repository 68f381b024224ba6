/**
 * The Connection's side of a parent proxy, against scripted parents on loopback: the CONNECT handshake
 * in pieces, the origin's bytes that follow the parent's head at once, the client's early bytes held
 * back until the parent's 2xx, and the ways a parent can fail before the tunnel is open.
 */
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { baseInit, closeServer, listen, startProxy, type RunningProxy } from "../loopback.ts"

/** A parent whose every connection is handed to `script` with what it received before each answer. */
const scriptedParent = async (script: (socket: net.Socket, head: string) => void) => {
  const received: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    let got = ""
    let answered = false
    socket.on("data", (d: Buffer) => {
      got += d.toString("latin1")
      received.push(d.toString("latin1"))
      if (!answered && got.includes("\r\n\r\n")) {
        answered = true
        script(socket, got)
      }
    })
  })
  const port = await listen(server)
  const close = async () => {
    for (const s of sockets) s.destroy()
    await closeServer(server)
  }
  return { port, received, close }
}

/** Open a raw client, send `bytes`, collect until `until` matches or the socket closes. */
const exchange = (port: number, bytes: string, until: (got: string) => boolean, then?: (s: net.Socket, got: string) => void) =>
  new Promise<string>((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1")
    let got = ""
    let thenDone = false
    s.on("error", reject)
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1")
      if (then !== undefined && !thenDone && got.includes("\r\n\r\n")) {
        thenDone = true
        then(s, got)
      }
      if (until(got)) {
        s.destroy()
        resolve(got)
      }
    })
    s.on("close", () => resolve(got))
    s.write(bytes)
  })

let proxy: RunningProxy | undefined
let parentClose: (() => Promise<void>) | undefined
afterEach(async () => {
  await proxy?.stop()
  await parentClose?.()
  proxy = undefined
  parentClose = undefined
})

const withParent = async (script: (socket: net.Socket, head: string) => void) => {
  const parent = await scriptedParent(script)
  parentClose = parent.close
  proxy = await startProxy(baseInit({ upstream: { host: "127.0.0.1", port: parent.port, authorization: "Basic dTpw" } }))
  return { parent, proxy, name: `127.0.0.1:${parent.port}` }
}
const CONNECT = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n"

describe("a tunnel through a parent", () => {
  it("opens after the parent's 2xx in pieces; the origin's first bytes right after the head are relayed", async () => {
    const { parent, proxy } = await withParent((socket) => {
      socket.write("HTTP/1.1 200 Conn")
      setTimeout(() => socket.write("ection established\r\nX-Parent: 1\r"), 5)
      setTimeout(() => {
        socket.write("\n\r\nBANNER")
        socket.on("data", (d: Buffer) => socket.write(d)) // then an echo
      }, 10)
    })
    const got = await exchange(proxy.port, `${CONNECT}early`, (g) => g.endsWith("BANNERearly"))
    expect(got).toBe("HTTP/1.1 200 Connection established\r\n\r\nBANNERearly")
    // The parent got our CONNECT (with our credentials and Via) alone: the client's early bytes came after its 2xx.
    expect(parent.received[0]).toBe(
      "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\nProxy-Authorization: Basic dTpw\r\nVia: 1.1 hctunnel-test\r\n\r\n",
    )
    expect(parent.received.slice(1).join("")).toBe("early")
  })

  const failures: ReadonlyArray<readonly [string, (socket: net.Socket) => void, string]> = [
    ["closes without answering", (socket) => socket.end(), "closed the connection without answering CONNECT"],
    ["resets", (socket) => socket.resetAndDestroy(), "reset the connection"],
    ["answers 403", (socket) => socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), "answered 403 Forbidden"],
    [
      "answers something that is not HTTP",
      (socket) => socket.write("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
      "answered CONNECT with a malformed response",
    ],
  ]
  for (const [what, script, text] of failures) {
    it(`502 naming the parent when it ${what}`, async () => {
      const { proxy, name } = await withParent(script)
      const got = await exchange(proxy.port, CONNECT, (g) => g.endsWith("\n") && g.includes("\r\n\r\n502"))
      expect(got).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/)
      expect(got).toContain(`502 Bad Gateway: upstream proxy ${name} ${text}`)
      expect(proxy.lines.some((l) => l.includes("CONNECT origin.test:443 502") && l.includes(`upstream proxy ${name}`))).toBe(true)
    })
  }
})

describe("plain HTTP through a parent", () => {
  it("absolute-form with our Proxy-Authorization; the parent's connection is reused for the next request", async () => {
    let connections = 0
    const { parent, proxy } = await withParent((socket) => {
      connections++
      const answer = () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      answer()
      let rest = ""
      socket.on("data", (d: Buffer) => {
        rest += d.toString("latin1")
        if (rest.includes("\r\n\r\n")) {
          rest = ""
          answer()
        }
      })
    })
    const get = (path: string) =>
      `GET http://origin.test:8080${path} HTTP/1.1\r\nHost: origin.test:8080\r\nProxy-Authorization: Basic Y2xpZW50\r\n\r\n`
    // One request after the other (a pipelined one would not get a connection released in the same turn).
    for (const path of ["/1", "/2"]) {
      expect(await exchange(proxy.port, get(path), (g) => g.endsWith("\r\n\r\nok"))).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*ok$/)
    }
    expect(connections).toBe(1)
    const all = parent.received.join("")
    expect(all).toContain("GET http://origin.test:8080/1 HTTP/1.1\r\nHost: origin.test:8080\r\nProxy-Authorization: Basic dTpw\r\n")
    expect(all).toContain("GET http://origin.test:8080/2 HTTP/1.1\r\n")
    expect(all).not.toContain("Y2xpZW50")
  })
})
