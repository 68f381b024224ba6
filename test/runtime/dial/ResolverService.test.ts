/**
 * DNS is a service: the proxy resolves origin names with the Resolver it is given (worker.ts takes it
 * from the Resolver layer), so a test or an embedding can replace it. Real loopback sockets.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as net from "node:net"
import { Resolver } from "../../../src/runtime/dial/Resolver.ts"
import { baseInit, echoServer, startProxy } from "../loopback.ts"

const connectThrough = (proxyPort: number, target: string) =>
  new Promise<string>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxyPort }, () =>
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`),
    )
    let text = ""
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1")
      if (text.includes("\r\n\r\n")) {
        socket.destroy()
        resolve(text.slice(0, text.indexOf("\r\n")))
      }
    })
    socket.on("error", () => resolve(text))
  })

describe("the proxy resolves names with the Resolver service it is given", () => {
  it.effect("a name only the provided Resolver knows reaches its origin", () =>
    Effect.gen(function* () {
      const resolver = yield* Resolver
      const echo = yield* Effect.promise(() => echoServer())
      const proxy = yield* Effect.promise(() => startProxy(baseInit({ hosts: {} }), { resolve: resolver.resolveCallback }))
      const known = yield* Effect.promise(() => connectThrough(proxy.port, `svc.example:${echo.port}`))
      const unknown = yield* Effect.promise(() => connectThrough(proxy.port, `other.invalid:${echo.port}`))
      yield* Effect.promise(() => proxy.stop())
      yield* Effect.promise(() => echo.close())
      assert.strictEqual(known, "HTTP/1.1 200 Connection established")
      assert.strictEqual(unknown, "HTTP/1.1 502 Bad Gateway")
    }).pipe(Effect.provide(Resolver.layer({ hosts: { "svc.example": "127.0.0.1" } }))),
  )
})
