#!/usr/bin/env node
/**
 * The `hctunnel` command. This file only checks the Node.js version (in syntax any Node can parse) and
 * then loads the real entry point, src/cli/main.ts, so that an old Node gets a sentence, not a stack.
 */
import { checkNodeVersion } from "./cli/node-version.ts"

const problem = checkNodeVersion(process.versions.node)
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`)
  process.exit(1)
}
await import("./cli/main.ts")
