/**
 * The soak in CI: a 60-second seeded run of `test/soak/main.ts` (the program behind `npm run soak`) against
 * the built proxy, which must come out clean: nothing corrupted, nothing unexpected, fds and live
 * connections back, the proxy's exit clean. On failure the message carries the program's output, whose
 * first line is the seed and the command that replays the run.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, it } from "vitest"

const here = dirname(fileURLToPath(import.meta.url))
const dir = mkdtempSync(join(tmpdir(), "hctunnel-soak-test-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/**
 * Fixed, so a CI failure replays the same choices: `npm run soak -- --seconds 60 --seed 20260118 --rate 8`. The
 * bulk streams are paced at half the default, to leave CPU to the test files that run beside this one.
 */
const SEED = 20260118

describe("soak", () => {
  it("60 s of mixed load with reloads, users changes, DNS silence, fd pressure and a worker ended: clean", { timeout: 300_000 }, async ({
    expect,
  }) => {
    const json = join(dir, "soak.json")
    const out: Array<string> = []
    const code = await new Promise<number | null>((done) => {
      const child = spawn(
        process.execPath,
        [resolve(here, "main.ts"), "--seconds", "60", "--seed", String(SEED), "--rate", "8", "--json", json],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      )
      child.stdout.on("data", (d: Buffer) => out.push(d.toString()))
      child.stderr.on("data", (d: Buffer) => out.push(d.toString()))
      const bound = setTimeout(() => child.kill("SIGKILL"), 280_000)
      child.once("exit", (c) => {
        clearTimeout(bound)
        done(c)
      })
    })
    const output = out.join("")
    expect(output, output).toMatch(
      new RegExp(`^soak: seed ${SEED}, 60 s \\(replay: npm run soak -- --seconds 60 --seed ${SEED} --rate 8\\)`),
    )
    const report = JSON.parse(readFileSync(json, "utf8")) as Record<string, number | boolean>
    const figures = { corrupted: report["corrupted"], unexpected: report["unexpected"], liveEnd: report["liveEnd"], clean: report["clean"] }
    expect(figures, output).toEqual({ corrupted: 0, unexpected: 0, liveEnd: 0, clean: true })
    expect(Math.abs(Number(report["fdsEnd"]) - Number(report["fdsStart"])), output).toBeLessThanOrEqual(Number(report["fdSlack"]))
    expect(Number(report["reloads"]), output).toBeGreaterThanOrEqual(3)
    expect(Number(report["workerRestarts"]), output).toBeGreaterThanOrEqual(1)
    expect(Number(report["bytesVerified"]), output).toBeGreaterThan(0)
    expect(code, output).toBe(0)
  })
})
