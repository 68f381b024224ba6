/**
 * `npm run fuzz`: the properties of test/property/properties.ts with as many runs as fit in a time
 * budget (default 120 s in total, shared evenly; `--seconds N`). Prints the runs done per property and,
 * for a failure, the seed, path and counterexample to replay it:
 *
 *   node test/property/fuzz.ts --only "<name prefix>" --seed <seed> --path <path>
 *
 * (or `fc.assert(fc.property(spec.arbitrary, spec.predicate), { seed, path })` in a test). A failure found
 * this way belongs in test/property/regressions.test.ts as a plain example. Exit code 1 if any property fails.
 *
 * `--coverage`: run every property for the runs it has in `npm test` (with one seed, 22 unless `--seed N`;
 * or for the time budget when `--seconds` is given) and print how often each (state, trigger) pair of the
 * transition table was exercised (test/property/coverage.ts). Exit code 1 if a pair was reached fewer than
 * 100 times or a property failed.
 */
import * as fc from "fast-check"
import { countPairs, report } from "./coverage.ts"
import { allProperties, type PropertySpec, runsFor } from "./properties.ts"

const args = process.argv.slice(2)
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}

const coverage = args.includes("--coverage")
const seconds = Number(option("seconds") ?? 120)
if (!Number.isFinite(seconds) || seconds <= 0) {
  console.error(`--seconds must be a positive number, got ${option("seconds")}`)
  process.exit(2)
}
const only = option("only")
const seedArg = option("seed")
const pathArg = option("path")

const selected = allProperties.filter((p) => only === undefined || p.name.startsWith(only))
if (selected.length === 0) {
  console.error(`no property name starts with ${JSON.stringify(only)}; names:\n${allProperties.map((p) => `  ${p.name}`).join("\n")}`)
  process.exit(2)
}

const budgetMs = Math.floor((seconds * 1000) / selected.length)
// Coverage counts the runs of `npm test` unless a time budget is asked for.
const timed = !coverage || option("seconds") !== undefined
console.log(
  timed
    ? `fuzzing ${selected.length} properties, ${(budgetMs / 1000).toFixed(1)} s each`
    : `running ${selected.length} properties for their npm test runs, seed ${seedArg ?? 22}`,
)

const counted = coverage ? countPairs() : undefined
let failures = 0
for (const spec of selected as ReadonlyArray<PropertySpec<unknown>>) {
  const started = Date.now()
  const runs = coverage ? { numRuns: runsFor(spec), seed: Number(seedArg ?? 22) } : undefined
  const details = fc.check(
    fc.property(spec.arbitrary, (v) => spec.predicate(v)),
    {
      numRuns: seedArg === undefined || coverage ? Number.MAX_SAFE_INTEGER : 1,
      // Stop generating new runs when the budget is spent; shrinking a failure gets the same budget again.
      ...(timed ? { interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false } : {}),
      ...(seedArg === undefined ? {} : { seed: Number(seedArg) }),
      ...(pathArg === undefined ? {} : { path: pathArg }),
      ...(timed ? {} : runs),
    },
  )
  const elapsed = ((Date.now() - started) / 1000).toFixed(1)
  if (!details.failed) {
    console.log(`ok    ${details.numRuns} runs in ${elapsed} s  ${spec.name}`)
    continue
  }
  failures++
  console.log(`FAIL  after ${details.numRuns} runs in ${elapsed} s  ${spec.name}`)
  console.log(`      seed: ${details.seed}  path: ${JSON.stringify(details.counterexamplePath)}`)
  console.log(
    `      replay: node test/property/fuzz.ts --only ${JSON.stringify(spec.name.slice(0, 24))} --seed ${details.seed} --path ${JSON.stringify(details.counterexamplePath)}`,
  )
  console.log(`      counterexample: ${fc.stringify(details.counterexample?.[0])}`)
  const error = details.errorInstance
  console.log(`      error: ${error instanceof Error ? error.message : String(error)}`)
}

console.log(failures === 0 ? "all properties hold" : `${failures} propert${failures === 1 ? "y" : "ies"} failed`)
if (counted !== undefined) {
  const { lines, reached, reachable } = report(counted())
  for (const line of lines) console.log(line)
  if (reached < reachable) failures++
}
process.exit(failures === 0 ? 0 : 1)
