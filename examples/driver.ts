/**
 * examples/driver.ts: the smallest complete driver of the hctunnel engine over `node:net`, a working
 * forward proxy (plain HTTP and CONNECT). docs/design.md §10.1 explains each rule it follows. Not for
 * production: no pool, no DNS (names come from a hosts map; IP literals are dialled as they are), no
 * access control. Run: `node examples/driver.ts <port> '{"origin.test":"127.0.0.1"}'`.
 */
import net from "node:net"
import { type Action, defaultLimits, type Event, Postman, type Side } from "hctunnel/core"

export const startDriver = (port: number, hosts: Readonly<Record<string, string>>): Promise<net.Server> => {
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const postman = new Postman({ limits: defaultLimits, via: "example" })
    const sockets: Partial<Record<Side, net.Socket>> = { client } // a closed socket is removed: its callbacks are not events
    let timer: NodeJS.Timeout | undefined
    const pending: Event[] = []
    let running = false
    const feed = (event: Event): void => {
      pending.push(event)
      if (running) return // raised while actions are carried out: fed after the whole list (§10.1, rule 3)
      running = true
      for (let e = pending.shift(); e !== undefined; e = pending.shift()) postman.handle(e, performance.now()).forEach(act)
      running = false
    }
    const listen = (side: Side, socket: net.Socket): void => {
      const live = () => sockets[side] === socket
      socket.on("data", (bytes) => live() && feed({ _tag: "Received", side, bytes }))
      socket.on("end", () => live() && feed({ _tag: "Ended", side }))
      socket.on("error", (e) => live() && feed({ _tag: "Errored", side, message: e.message }))
      socket.on("drain", () => live() && feed({ _tag: "Drained", side }))
    }
    const dial = (host: string, port: number): void => {
      const address = net.isIP(host) !== 0 ? host : hosts[host]
      if (address === undefined) return feed({ _tag: "ConnectFailed", reason: "unresolved", message: host })
      const origin = (sockets.origin = net.connect({ host: address, port, allowHalfOpen: true }))
      origin.once("error", (e: NodeJS.ErrnoException) => {
        if (sockets.origin === origin)
          feed({ _tag: "ConnectFailed", reason: e.code === "ECONNREFUSED" ? "refused" : "error", message: e.message })
      })
      origin.once("connect", () => {
        origin.removeAllListeners("error")
        listen("origin", origin)
        if (sockets.origin === origin) feed({ _tag: "Connected" })
      })
    }
    const act = (a: Action): void => {
      const socket = "side" in a ? sockets[a.side] : undefined
      switch (a._tag) {
        case "Connect":
          return dial(a.host, a.port)
        case "Write":
          if (socket?.write(a.bytes) === false) feed({ _tag: "Blocked", side: a.side })
          return
        case "HalfClose":
          socket?.end()
          return
        case "PauseReading":
          socket?.pause()
          return
        case "ResumeReading":
          socket?.resume()
          return
        case "Close": // no pool here: a `reusable` origin is destroyed like any other
          delete sockets[a.side]
          if (a.graceful) socket?.end(() => socket.destroy())
          else socket?.destroy()
          if (a.side === "client") clearTimeout(timer)
          return
        case "SetDeadline":
          clearTimeout(timer)
          timer = setTimeout(() => feed({ _tag: "Timeout" }), Math.max(0, a.at - performance.now()))
          return
        case "Log":
          console.log(JSON.stringify(a.record))
          return
        case "Authenticate":
          return // only with `auth: true`
      }
    }
    listen("client", client)
    postman.start(performance.now()).forEach(act) // only a SetDeadline: nothing to queue
  })
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)))
}

if (import.meta.main) {
  const server = await startDriver(Number(process.argv[2] ?? 0), JSON.parse(process.argv[3] ?? "{}"))
  console.log(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`)
}
