/**
 * The tests Stryker runs against each mutant (npm run mutate, stryker.config.json): only the fast unit and
 * property tests of the mutated code, with one fixed seed and fewer runs for the properties. The e2e, CLI and socket tests
 * start processes and servers and would make a mutation run take hours for no more of src/core exercised.
 */
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/core/**/*.test.ts", "test/property/**/*.test.ts"],
    setupFiles: ["test/property/fixed-seed.ts"],
    // A tenth of npm test's property runs: the unit tests kill most mutants, and a survivor runs every
    // covering test, so these runs are most of a mutation run's time.
    env: { HCTUNNEL_FUZZ_RUNS: "0.1" },
    // One worker runs every file (Stryker asks for one): sharing the modules between files makes a run
    // about twice as fast, and these tests keep no state between files.
    isolate: false,
    testTimeout: 30_000,
  },
})
