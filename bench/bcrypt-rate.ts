/**
 * How many bcrypt verifications per second the verifier thread does: the ceiling on password guesses the
 * whole proxy checks, whatever the number of clients (docs/security.md "Authentication").
 *
 *   node bench/bcrypt-rate.ts [cost ...]        (default: 5, htpasswd -B's default, and 10, the advised -C 10)
 *
 * Runs the real thread (src/runtime/auth/BcryptVerifier.ts, hash-wasm's bcrypt) on hashes made by the real
 * `htpasswd -B -C cost`, one verification at a time as the FairVerifier hands them over, for about
 * SECONDS_PER_COST seconds per cost after one warm-up verification. Wrong passwords: a guess costs the same
 * as a right one. No network.
 *
 * Two rates: per second of wall time (what this run got, shared with whatever else the machine was doing)
 * and per second of CPU time of the process (the main thread only waits meanwhile: this is what the thread
 * does with a core of its own, the figure to plan with).
 */
import { execFileSync } from "node:child_process"
import { cpus } from "node:os"
import { BcryptVerifier } from "../src/runtime/auth/BcryptVerifier.ts"

const SECONDS_PER_COST = 5
const costs = process.argv.slice(2).map(Number)
if (costs.some((c) => !Number.isInteger(c) || c < 4 || c > 31)) {
  console.error("usage: node bench/bcrypt-rate.ts [cost ...]   (costs 4..31)")
  process.exit(2)
}

const verifier = new BcryptVerifier()
const verify = (password: string, hash: string): Promise<boolean | undefined> =>
  new Promise((resolve) => verifier.verify(password, hash, resolve))

console.log(`${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, node ${process.version}`)
console.log("| cost | verifications / s (wall) | verifications / CPU-s | CPU ms per verification |")
console.log("| ---: | ---: | ---: | ---: |")
for (const cost of costs.length > 0 ? costs : [5, 10]) {
  const line = execFileSync("htpasswd", ["-nbB", "-C", String(cost), "user", "the right password"], { encoding: "utf8" }).trim()
  const hash = line.slice(line.indexOf(":") + 1)
  if ((await verify("the right password", hash)) !== true) throw new Error(`the verifier refused htpasswd's own hash: ${hash}`)
  let n = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  while (performance.now() - t0 < SECONDS_PER_COST * 1000) {
    if ((await verify(`guess ${n}`, hash)) !== false) throw new Error("a wrong password was accepted")
    n++
  }
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const cpuMs = (cpu.user + cpu.system) / 1000
  console.log(`| ${cost} | ${((n * 1000) / ms).toFixed(1)} | ${((n * 1000) / cpuMs).toFixed(1)} | ${(cpuMs / n).toFixed(1)} |`)
}
verifier.close()
