/**
 * examples/driver.ts: the smallest complete driver of the hctunnel engine over `node:net`, a working
 * forward proxy (plain HTTP and CONNECT) in about 50 lines. docs/design.md §10 explains each rule it
 * follows. Not for production: no pool, no DNS (names come from a hosts map; IP literals are dialled
 * as they are), no access control. Run: `node examples/driver.ts <port> '{"origin.test":"127.0.0.1"}'`.
 */
import net from "node:net"
import { type Action, defaultLimits, type Event, Postman, type Side } from "hctunnel/core"

export const startDriver = (port: number, hosts: Readonly<Record<string, string>>): Promise<net.Server> => {
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const postman = new Postman({ limits: defaultLimits, via: "example" })
    const sockets: Partial<Record<Side, net.Socket>> = { client }
    let timer: NodeJS.Timeout | undefined
    // Events raised while actions are carried out (a full write buffer) wait until the list is done.
    const pending: Event[] = []
    let running = false
    const feed = (event?: Event): void => {
      if (event !== undefined) pending.push(event)
      if (running) return
      running = true
      for (let e = pending.shift(); e !== undefined; e = pending.shift()) execute(postman.handle(e, performance.now()))
      running = false
    }
    const listen = (side: Side, socket: net.Socket): void => {
      socket.on("data", (bytes) => sockets[side] === socket && feed({ _tag: "Received", side, bytes }))
      socket.on("end", () => sockets[side] === socket && feed({ _tag: "Ended", side }))
      socket.on("error", (e) => sockets[side] === socket && feed({ _tag: "Errored", side, message: e.message }))
    }
    const act = (a: Action): void => {
      switch (a._tag) {
        case "Connect": {
          const address = net.isIP(a.host) !== 0 ? a.host : hosts[a.host]
          if (address === undefined) return void pending.push({ _tag: "ConnectFailed", reason: "unresolved", message: a.host })
          const origin = (sockets.origin = net.connect({ host: address, port: a.port, allowHalfOpen: true }))
          origin.once("error", (e: NodeJS.ErrnoException) => sockets.origin === origin &&
            feed({ _tag: "ConnectFailed", reason: e.code === "ECONNREFUSED" ? "refused" : "error", message: e.message }))
          origin.once("connect", () => {
            origin.removeAllListeners("error")
            listen("origin", origin)
            if (sockets.origin === origin) feed({ _tag: "Connected" })
          })
          return
        }
        case "Write":
          if (sockets[a.side]?.write(a.bytes) === false) {
            pending.push({ _tag: "Blocked", side: a.side })
            sockets[a.side]?.once("drain", () => feed({ _tag: "Drained", side: a.side }))
          }
          return
        case "HalfClose": return void sockets[a.side]?.end()
        case "Close": {
          const socket = sockets[a.side]
          delete sockets[a.side] // later callbacks of this socket are not events any more
          // No pool here: a `reusable` origin is closed like any other.
          if (a.graceful) socket?.end(() => socket.destroy())
          else socket?.destroy()
          if (a.side === "client") clearTimeout(timer)
          return
        }
        case "PauseReading": return void sockets[a.side]?.pause()
        case "ResumeReading": return void sockets[a.side]?.resume()
        case "SetDeadline":
          clearTimeout(timer)
          timer = setTimeout(() => feed({ _tag: "Timeout" }), Math.max(0, a.at - performance.now()))
          return
        case "Log": return void console.log(JSON.stringify(a.record))
        case "Authenticate": return // only emitted with `auth: true`
      }
    }
    const execute = (actions: ReadonlyArray<Action>): void => actions.forEach(act)
    listen("client", client)
    running = true
    execute(postman.start(performance.now()))
    running = false
    feed()
  })
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)))
}

if (import.meta.main) {
  const server = await startDriver(Number(process.argv[2] ?? 0), JSON.parse(process.argv[3] ?? "{}"))
  console.log(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`)
}
