/**
 * relay.mjs: the least a CONNECT proxy in Node does, as a floor for the bench's new-tunnel and 8-tunnel rows
 * (not part of hctunnel). Worker threads listen on one port with reusePort, like hctunnel's; each connection's
 * first chunk must hold the CONNECT head; then both sockets are piped. No limits, no logging: a test rig.
 * Usage: node bench/reference/relay.mjs PORT [WORKERS=2]   (listens on 127.0.0.1 only; targets must be IPv4 literals)
 */
import net from "node:net"
import { Worker, isMainThread, workerData } from "node:worker_threads"

if (isMainThread) {
  const [port = "0", workers = "2"] = process.argv.slice(2)
  const threads = []
  for (let i = 0; i < Number(workers); i++) threads.push(new Worker(new URL(import.meta.url), { workerData: Number(port) }))
  // Stop the workers before exiting, so that `node --cpu-prof` writes their profiles (bench/profile.ts).
  const stop = () => Promise.all(threads.map((t) => t.terminate())).then(() => process.exit(0))
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
} else {
  net
    .createServer({ noDelay: true }, (client) => {
      client.once("data", (head) => {
        const m = /^CONNECT (\d+\.\d+\.\d+\.\d+):(\d+) /.exec(head.toString("latin1"))
        if (m === null) return void client.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        const origin = net.connect({ host: m[1], port: Number(m[2]), noDelay: true }, () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
          client.pipe(origin).pipe(client)
        })
        origin.on("error", () => client.destroy())
        client.on("error", () => origin.destroy())
      })
    })
    .listen({ host: "127.0.0.1", port: workerData, reusePort: true })
}
