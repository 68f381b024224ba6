/**
 * The bench's C tools: bench/gen/tunnelgen.c (load generator and TCP echo origin) compiled with the system's C
 * compiler into a temporary directory, once per harness. A generator in C takes a fifth of the CPU per tunnel
 * that bench/gen/rate.ts takes, so on two shared cores it leaves the proxy under test the CPU a real client
 * machine would (docs/performance.md, "Round three"). Without a compiler the harness falls back to the Node
 * generators, and says so.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import os from "node:os"
import { join } from "node:path"
import { startJson } from "./children.ts"

const compiler = (): string | undefined => {
  for (const cc of ["cc", "gcc", "clang"]) {
    const r = spawnSync("bash", ["-c", `command -v ${cc}`], { encoding: "utf8" })
    if (r.status === 0 && r.stdout.trim() !== "") return r.stdout.trim()
  }
  return undefined
}

/** Compile one C file of the bench; the binary's path, or an error message. */
export const compileC = (source: string, name: string, flags: ReadonlyArray<string> = []): { bin: string } | { error: string } => {
  const cc = compiler()
  if (cc === undefined) return { error: "no C compiler (apt-get install -y gcc)" }
  const bin = join(mkdtempSync(join(os.tmpdir(), `hctunnel-bench-${name}-`)), name)
  const r = spawnSync(cc, ["-O2", ...flags, "-o", bin, source], { encoding: "utf8" })
  if (r.status !== 0) return { error: `${cc} failed: ${r.stderr.trim().split("\n")[0]}` }
  return { bin }
}

/** bench/gen/tunnelgen.c, compiled; undefined (with a logged hint) when it cannot be. */
export const buildTunnelgen = (here: string, log: (s: string) => void): string | undefined => {
  const r = compileC(join(here, "gen", "tunnelgen.c"), "tunnelgen")
  if ("bin" in r) return r.bin
  log(`C generator: ${r.error}; new tunnels and latency use the Node generators (bench/gen/*.ts)`)
  return undefined
}

export interface EchoOrigin {
  readonly pid: number
  readonly ports: ReadonlyArray<number>
  readonly stop: () => void
}

/** `tunnelgen echo`: TCP echo on `ports` loopback ports, in a process of its own (it exits when our pipe closes). */
export const startEcho = async (tunnelgen: string, ports: number): Promise<EchoOrigin> => {
  const { cp, hello } = await startJson(tunnelgen, ["echo", "--ports", String(ports)], 5000)
  return {
    pid: Number(hello["pid"]),
    ports: (hello["ports"] as number[]).map(Number),
    stop: () => {
      cp.stdin?.end()
      cp.kill("SIGTERM")
    },
  }
}
