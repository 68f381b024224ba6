/** Registers a shared property (properties.ts) as a vitest test through @fast-check/vitest. */
import { test } from "@fast-check/vitest"
import { type PropertySpec, runsFor } from "./properties.ts"

export const register = <T>(spec: PropertySpec<T>): void => {
  test.prop([spec.arbitrary], { numRuns: runsFor(spec) })(spec.name, (value) => {
    spec.predicate(value)
  })
}
