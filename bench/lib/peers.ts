/**
 * Peers and floors the harness runs beside hctunnel in the same run, so that each row of the table compares
 * figures measured minutes apart on the same machine: tinyproxy and Squid (when installed), the C relay
 * (bench/reference/relay.c, compiled with the system's C compiler when there is one) and the minimal Node relay
 * (bench/reference/relay.mjs). Each listens on a free loopback port and is stopped with the harness (the
 * guard kills it when the harness's pipe closes). A peer that is not installed is skipped with a hint.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import { join } from "node:path"
import { compileC } from "./cgen.ts"
import { startJson, stop } from "./children.ts"
import type { Endpoint } from "./wire.ts"

export interface Peer {
  readonly label: string
  readonly ep: Endpoint
  /** The process whose tree's CPU and RSS are the peer's. */
  readonly pid: number
  readonly stop: () => Promise<void>
}

export type PeerName = "tinyproxy" | "squid" | "c-relay" | "node-relay"
export const PEER_NAMES: ReadonlyArray<PeerName> = ["tinyproxy", "squid", "c-relay", "node-relay"]

const which = (cmd: string): string | undefined => {
  const r = spawnSync("bash", ["-c", `command -v ${cmd} || { [ -x /usr/sbin/${cmd} ] && echo /usr/sbin/${cmd}; }`], { encoding: "utf8" })
  const path = r.stdout.trim()
  return r.status === 0 && path !== "" ? path : undefined
}

const NOFILE = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"'

/**
 * Start COMMAND under the guard (which ties its life to ours), with the open-files limit raised; with quiet, its
 * stdout goes to /dev/null (an access log would otherwise be read by the guard and the harness, on our cores).
 */
const guarded = async (
  label: string,
  port: number,
  guard: string,
  command: string,
  args: ReadonlyArray<string>,
  quiet = false,
): Promise<Peer> => {
  const g = await startJson(process.execPath, [guard, "bash", "-c", NOFILE + (quiet ? " >/dev/null" : ""), command, ...args], 10_000)
  return { label, ep: { host: "127.0.0.1", port }, pid: Number(g.hello["pid"]), stop: () => stop(g.cp, 5000) }
}

export interface PeerContext {
  readonly here: string // bench/
  readonly freePort: () => Promise<number>
  readonly log: (s: string) => void
}

/** Start one peer, or return undefined (with a logged hint) when it is not installed here. */
export const startPeer = async (name: PeerName, ctx: PeerContext): Promise<Peer | undefined> => {
  const guard = join(ctx.here, "lib", "guard.ts")
  const dir = mkdtempSync(join(os.tmpdir(), `hctunnel-bench-${name}-`))
  const port = await ctx.freePort()
  switch (name) {
    case "tinyproxy": {
      const bin = which("tinyproxy")
      if (bin === undefined) return void ctx.log("peer tinyproxy: not installed (apt-get install -y tinyproxy): skipped")
      // As measured outside the project (issue 20): no ConnectPort line (CONNECT to any port is allowed),
      // MaxClients 12000, LogLevel Error. Root would need a User line; nobody can read /tmp.
      const conf = [
        `Port ${port}`,
        "Listen 127.0.0.1",
        "Timeout 600",
        "MaxClients 12000",
        "Allow 127.0.0.1",
        "LogLevel Error",
        `LogFile "${dir}/tinyproxy.log"`,
        "DisableViaHeader Yes",
        "",
      ]
      writeFileSync(join(dir, "tinyproxy.conf"), conf.join("\n"))
      return guarded("tinyproxy", port, guard, bin, ["-d", "-c", join(dir, "tinyproxy.conf")])
    }
    case "squid": {
      const bin = which("squid")
      if (bin === undefined) return void ctx.log("peer squid: not installed (apt-get install -y squid): skipped")
      const conf = [
        `http_port 127.0.0.1:${port}`,
        "acl localhost src 127.0.0.1/32",
        "http_access allow localhost",
        "http_access deny all",
        "cache deny all",
        "access_log none",
        `cache_log ${dir}/cache.log`,
        `pid_filename ${dir}/squid.pid`,
        "max_filedescriptors 20000",
        `coredump_dir ${dir}`,
        "shutdown_lifetime 1 seconds",
        "",
      ]
      writeFileSync(join(dir, "squid.conf"), conf.join("\n"))
      return guarded("squid", port, guard, bin, ["-N", "-f", join(dir, "squid.conf")])
    }
    case "c-relay": {
      const c = compileC(join(ctx.here, "reference", "relay.c"), "relay", ["-pthread"])
      if ("error" in c) return void ctx.log(`peer c-relay: ${c.error}: skipped`)
      return guarded("c-relay", port, guard, c.bin, [String(port)])
    }
    case "node-relay":
      return guarded("node-relay", port, guard, process.execPath, [join(ctx.here, "reference", "relay.mjs"), String(port), "2"])
  }
}

/**
 * A variant of hctunnel run as one more peer in the same rounds (`--variant LABEL=ARGS`): the same dist/cli.js
 * (or another build's, when ARGS has a path ending in .js) with ARGS instead of `--log-level none`; an
 * argument `node:--flag` is a flag for Node (e.g. node:--single-threaded-gc). Its stdout (an access log, if
 * ARGS leaves it on) goes to /dev/null.
 */
export const startVariant = async (spec: string, ctx: PeerContext & { readonly cli: string; readonly workers: string }): Promise<Peer> => {
  const eq = spec.indexOf("=")
  if (eq <= 0) throw new Error(`--variant ${spec}: expected LABEL=ARGS, e.g. log=--log-level,info`)
  const label = spec.slice(0, eq)
  const args = spec
    .slice(eq + 1)
    .split(/[,\s]+/)
    .filter((a) => a !== "")
  const nodeFlags = args.filter((a) => a.startsWith("node:")).map((a) => a.slice("node:".length))
  const rest = args.filter((a) => !a.startsWith("node:"))
  const cli = rest[0]?.endsWith(".js") === true ? rest.shift()! : ctx.cli
  const port = await ctx.freePort()
  const guard = join(ctx.here, "lib", "guard.ts")
  return guarded(
    label,
    port,
    guard,
    process.execPath,
    [...nodeFlags, cli, "--listen", `127.0.0.1:${port}`, "--workers", ctx.workers, ...rest],
    true,
  )
}
