/**
 * Runs a command (the proxy under test) as its child and ties its life to the harness: when this guard's stdin
 * closes (the harness exited, even by SIGKILL) or it gets SIGTERM/SIGINT, the child gets SIGTERM, then SIGKILL
 * after 3 s. Prints {"pid": N} (the child's pid, whose /proc figures the harness reads) once started.
 * The child's stdout and stderr go to the guard's stderr.
 * Usage: node bench/lib/guard.ts COMMAND [ARGS...]
 */
import { spawn } from "node:child_process"

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  process.stderr.write("usage: guard.ts COMMAND [ARGS...]\n")
  process.exit(2)
}
const child = spawn(command, args, { stdio: ["ignore", 2, 2] })
let stopping = false
const stopChild = (): void => {
  if (stopping) return
  stopping = true
  child.kill("SIGTERM")
  setTimeout(() => child.kill("SIGKILL"), 3000).unref()
}
child.on("error", (err) => {
  process.stderr.write(`guard: ${String(err)}\n`)
  process.exit(1)
})
child.on("spawn", () => process.stdout.write(JSON.stringify({ pid: child.pid }) + "\n"))
child.on("exit", (code, signal) => {
  process.stderr.write(`guard: child exited (${code ?? signal})\n`)
  process.exit(code ?? 1)
})
process.stdin.on("data", () => {})
process.stdin.on("end", stopChild)
process.stdin.on("error", stopChild)
process.on("SIGTERM", stopChild)
process.on("SIGINT", stopChild)
