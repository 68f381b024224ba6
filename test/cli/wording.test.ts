/**
 * What the command says about the running proxy (src/cli/wording.ts): the supervisor's tagged errors and
 * figures as a person reads them, and the tagged errors' reasons as data a caller can branch on.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { checkSafety, ConfigError, loadConfig } from "../../src/cli/config.ts"
import { describeCut, describeDrainTimeout, describeListenFailure, statsFigures } from "../../src/cli/wording.ts"
import { zeroStats } from "../../src/runtime/observe/Stats.ts"
import { START_FAILED } from "../../src/runtime/protocol.ts"
import { DrainTimeout, ListenError } from "../../src/runtime/supervisor.ts"

const at = [{ host: "::1", port: 9090 }]

describe("listen failures", () => {
  it("the admin endpoint's name --admin; the proxy's name --port/--listen", () => {
    expect(
      describeListenFailure(new ListenError({ endpoint: "admin", reason: "EADDRINUSE", detail: "listen EADDRINUSE", addresses: at })),
    ).toBe("cannot serve the admin endpoint on [::1]:9090: the address is already in use. Choose another port with --admin.")
    expect(describeListenFailure(new ListenError({ endpoint: "admin", reason: "EWHATEVER", detail: "odd", addresses: at }))).toBe(
      "cannot serve the admin endpoint on [::1]:9090 (--admin): odd (EWHATEVER)",
    )
    expect(describeListenFailure(new ListenError({ endpoint: "proxy", reason: "EACCES", detail: "listen EACCES", addresses: at }))).toMatch(
      /^cannot listen on \[::1\]:9090: permission denied\. .*8888\.$/,
    )
  })

  it("a worker that could not start says its own words", () => {
    expect(describeListenFailure(new ListenError({ endpoint: "proxy", reason: START_FAILED, detail: "bad CIDR", addresses: at }))).toBe(
      "a worker could not start: bad CIDR",
    )
  })
})

describe("the rest of what the supervisor reports", () => {
  it("a drain overrun names the grace period, or the second signal it came after", () => {
    expect(describeDrainTimeout(new DrainTimeout({ graceMs: 1500, marginMs: 3000, afterSecondSignal: false }))).toBe(
      "the workers did not finish within the grace period of 1500 ms plus 3000 ms; they were stopped with their connections",
    )
    expect(describeDrainTimeout(new DrainTimeout({ graceMs: 20_000, marginMs: 3000, afterSecondSignal: true }))).toBe(
      "the workers did not close their connections within 3000 ms of the second signal; they were stopped with them",
    )
  })

  it("what a shutdown had to close: at the end of the grace period, or at once on a second signal", () => {
    expect(describeCut(2, false)).toBe("grace period over: closed 2 connections still open")
    expect(describeCut(1, true)).toBe("second signal: closed 1 connection at once")
    expect(describeCut(0, true)).toBe("second signal: closed 0 connections at once")
  })

  it("the /stats figures are the snapshot, flat", () => {
    const figures = statsFigures({
      pid: 1,
      uptimeMs: 2,
      cpuUserMs: 3,
      cpuSystemMs: 4,
      rssBytes: 5,
      workers: 6,
      workersRunning: 7,
      restarts: 8,
      totals: { ...zeroStats, requests: 9 },
    })
    expect(figures).toMatchObject({ pid: 1, workersRunning: 7, requests: 9, tunnels: 0 })
    expect(figures).not.toHaveProperty("totals")
  })
})

describe("ConfigError", () => {
  it("says why as data: a value that does not decode, or a valid one the safety rule refuses", () => {
    const reasonOf = (flags: Record<string, string>) =>
      Effect.runSync(
        loadConfig({ flags, env: {} }).pipe(
          Effect.flatMap(checkSafety),
          Effect.as("ok"),
          Effect.catchTag("ConfigError", (e: ConfigError) => Effect.succeed(e.reason)),
        ),
      )
    expect(reasonOf({ port: "70000" })).toBe("invalid")
    expect(reasonOf({ listen: "0.0.0.0:3128" })).toBe("unsafe")
    expect(reasonOf({ port: "3128" })).toBe("ok")
  })

  it("is an Error whose message lists the problems", () => {
    const e = new ConfigError({ reason: "invalid", problems: ["a"] })
    expect(e).toBeInstanceOf(Error)
    expect(e.message).toBe("invalid configuration: a")
  })
})
