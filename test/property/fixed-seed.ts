/**
 * A setup file for the mutation run (vitest.stryker.config.ts): every property uses one fixed seed, so a
 * mutant meets the same generated cases on every run, and the test names (which @fast-check/vitest ends with
 * the seed) stay the same between runs, as Stryker's incremental mode needs to match tests.
 */
import * as fc from "fast-check"

fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: 22 })
