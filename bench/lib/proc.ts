/**
 * Reading CPU time and memory of other processes from /proc (Linux only).
 * A "process" here means the pid and all its descendants, so a proxy that forks (squid) is counted whole;
 * threads of one process (Node worker threads) are already inside the pid's own figures.
 */
import { execFileSync } from "node:child_process"
import { readFileSync, readdirSync } from "node:fs"

let clkTck: number | undefined

/** Clock ticks per second, from `getconf CLK_TCK` (100 on almost every Linux). */
export const clockTicks = (): number => {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
    } catch {
      clkTck = 100
    }
  }
  return clkTck
}

interface StatLine {
  readonly ppid: number
  readonly ticks: number // utime + stime
}

const readStat = (pid: number): StatLine | undefined => {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return undefined
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ")
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const ppid = Number(rest[1])
  const utime = Number(rest[11])
  const stime = Number(rest[12])
  return { ppid, ticks: utime + stime }
}

/** The pid and every live descendant. */
export const processTree = (pid: number): number[] => {
  const children = new Map<number, number[]>()
  for (const name of readdirSync("/proc")) {
    const p = Number(name)
    if (!Number.isInteger(p) || p <= 0) continue
    const st = readStat(p)
    if (st === undefined) continue
    const list = children.get(st.ppid)
    if (list === undefined) children.set(st.ppid, [p])
    else list.push(p)
  }
  const out: number[] = []
  const todo = [pid]
  while (todo.length > 0) {
    const p = todo.pop()!
    out.push(p)
    for (const c of children.get(p) ?? []) todo.push(c)
  }
  return out
}

/** CPU seconds (user + system) used so far by the pid and its live descendants. */
export const cpuSeconds = (pid: number): number => {
  let ticks = 0
  for (const p of processTree(pid)) ticks += readStat(p)?.ticks ?? 0
  return ticks / clockTicks()
}

const statusField = (pid: number, field: string): number => {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8")
  } catch {
    return 0
  }
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s*kB`, "m").exec(text)
  return m === null ? 0 : Number(m[1])
}

/** Resident set size in KiB (VmRSS) of the pid and its live descendants. */
export const rssKiB = (pid: number): number => {
  let kib = 0
  for (const p of processTree(pid)) kib += statusField(p, "VmRSS")
  return kib
}

/** Soft limit on open files of a pid, from /proc/PID/limits. */
export const openFilesLimit = (pid: number): number | undefined => {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))
    if (m === null) return undefined
    return m[1] === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(m[1])
  } catch {
    return undefined
  }
}

export const isAlive = (pid: number): boolean => readStat(pid) !== undefined

/**
 * CPU seconds the whole machine spent so far in user, nice and system time (all cpus), from /proc/stat.
 * Interrupt and softirq time is left out: on loopback it is mostly our own network traffic.
 */
export const machineBusySeconds = (): number => {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? ""
  const f = line.trim().split(/\s+/).slice(1, 4).map(Number) // user nice system
  return f.reduce((a, b) => a + b, 0) / clockTicks()
}

/** The 1, 5 and 15-minute load averages, as `uptime` prints them ("1.02 0.80 0.41"). */
export const loadAverage = (): string => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
