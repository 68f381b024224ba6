/**
 * A program that embeds hctunnel (src/index.ts) exits by itself once it closed its proxies: nothing of
 * theirs (worker threads, timers, sockets, the verifier thread) keeps it alive, and nothing it did not ask
 * for (a signal handler) is left behind. The program runs two proxies, one anonymizing the other, sends a
 * request through both to a loopback origin, hits a failing hook, closes everything and ends; it is run
 * as a child process with the checkout's Node, and the test only watches it.
 * (The same calls against the packed tarball: test/e2e/package.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type HttpOrigin, startHttpOrigin } from "./support/origins.ts"
import { embeddingProgram, expectedReport, reportOf, runProgram } from "./support/embedding-program.ts"
import { ROOT } from "./support/proxy.ts"

let dir: string
let origin: HttpOrigin

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hctunnel-lib-exit-"))
  origin = await startHttpOrigin("exit")
})

afterAll(async () => {
  await origin?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe("a program that embeds hctunnel", () => {
  it("exits by itself after close(), with nothing left running and no signal handler installed", { timeout: 180_000 }, async () => {
    const script = join(dir, "program.mjs")
    writeFileSync(script, embeddingProgram(pathToFileURL(join(ROOT, "src/index.ts")).href))
    const r = await runProgram(script, [String(origin.port)], dir)
    expect(r.killed, `the program did not exit by itself\n${r.stdout}\n${r.stderr}`).toBe(false)
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(reportOf(r.stdout)).toEqual(expectedReport)
    // The hook's error is in the proxy's log (the program's stdout), not in the client's answer.
    expect(r.stdout).toMatch(/ERROR worker \d: route hook: failed for GET fails\.test:\d+: Error: hook trouble/)
  })
})
