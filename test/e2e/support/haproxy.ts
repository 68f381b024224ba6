/**
 * The real HAProxy (Debian package `haproxy`) in front of hctunnel instances, on loopback only.
 *
 * HAPROXY_CONFIG is the configuration docs/deploy.md shows verbatim (a test checks that it does): its
 * addresses come from the environment, which is how HAProxy fills `"${NAME}"`, so the same text runs
 * here (everything on 127.0.0.1) and in production (an EnvironmentFile with the real addresses).
 * `startHaproxy` writes it to a temporary directory and runs `haproxy -db` (foreground); every
 * HAProxy started is killed when the test process exits.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import net from "node:net"
import { cleanEnv } from "./env.ts"

export const HAPROXY = "/usr/sbin/haproxy"

export const HAPROXY_CONFIG = `global
    maxconn 4096

defaults
    mode tcp
    timeout connect 2s
    # Longer than hctunnel's --idle-timeout and --keep-alive-timeout: hctunnel decides when to close.
    timeout client 10m
    timeout server 10m
    # A connection an instance refuses (it is stopping) is retried at once on another instance.
    retries 3
    option redispatch 1

frontend hctunnel_in
    bind "\${FRONTEND_ADDR}"
    default_backend hctunnel

backend hctunnel
    balance leastconn
    # /healthz on the admin endpoint: 200 while serving, 503 from the first SIGTERM.
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 1s fall 1 rise 2
    server hctunnel1 "\${HCTUNNEL1_ADDR}" send-proxy-v2 check port "\${HCTUNNEL1_ADMIN_PORT}"
    server hctunnel2 "\${HCTUNNEL2_ADDR}" send-proxy-v2 check port "\${HCTUNNEL2_ADMIN_PORT}"
`

export interface Backend {
  /** host:port of the hctunnel listener. */
  readonly address: string
  readonly adminPort: number
  /** The PROXY protocol version HAProxy sends to it. */
  readonly version: 1 | 2
}

export interface Haproxy {
  readonly port: number
  readonly child: ChildProcess
  output(): string
  stop(): Promise<void>
}

const accepts = (port: number, host: string): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, host)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const live = new Set<ChildProcess>()
process.once("exit", () => {
  for (const cp of live) cp.kill("SIGKILL")
})

/** HAPROXY_CONFIG with each server line's PROXY protocol version as asked (the template says v2). */
export const configFor = (backends: readonly [Backend, Backend]): string =>
  backends.reduce((text, b, i) => {
    const line = `"\${HCTUNNEL${i + 1}_ADDR}" send-proxy-v2 `
    if (!text.includes(line)) throw new Error(`HAPROXY_CONFIG has no server line with ${line}`)
    return text.replace(line, `"\${HCTUNNEL${i + 1}_ADDR}" ${b.version === 1 ? "send-proxy" : "send-proxy-v2"} `)
  }, HAPROXY_CONFIG)

/** Start HAProxy on `host`:`port` (loopback) in front of two backends; resolves once its frontend accepts connections. */
export const startHaproxy = async (
  port: number,
  backends: readonly [Backend, Backend],
  host: "127.0.0.1" | "::1" = "127.0.0.1",
): Promise<Haproxy> => {
  const dir = await mkdtemp(join(tmpdir(), "hctunnel-haproxy-"))
  const file = join(dir, "haproxy.cfg")
  await writeFile(file, configFor(backends))
  const env = cleanEnv({
    FRONTEND_ADDR: host === "::1" ? `[::1]:${port}` : `${host}:${port}`,
    HCTUNNEL1_ADDR: backends[0].address,
    HCTUNNEL1_ADMIN_PORT: String(backends[0].adminPort),
    HCTUNNEL2_ADDR: backends[1].address,
    HCTUNNEL2_ADMIN_PORT: String(backends[1].adminPort),
  })
  const child = spawn(HAPROXY, ["-db", "-f", file], { env, stdio: ["ignore", "pipe", "pipe"] })
  live.add(child)
  let out = ""
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child)
      resolve()
    }),
  )
  const output = (): string => `$ haproxy -db -f ${file}\n${configFor(backends)}\n--- output ---\n${out}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}\n${output()}`)
    if (await accepts(port, host)) break
    if (i > 200) throw new Error(`haproxy did not listen on ${host} port ${port}\n${output()}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  return {
    port,
    child,
    output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(t)
      await rm(dir, { recursive: true, force: true })
    },
  }
}
