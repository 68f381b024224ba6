// Regenerates the transition table and the state diagram in docs/design.md from src/core/transitions.ts.
// Usage: node scripts/design-table.ts [--check]   (--check exits 1 if the document is out of date)
import { readFileSync, writeFileSync } from "node:fs"
import { renderDesign } from "./design-doc.ts"

const path = new URL("../docs/design.md", import.meta.url)
const doc = readFileSync(path, "utf8")
const next = renderDesign(doc)
if (process.argv.includes("--check")) {
  if (next !== doc) {
    console.error("docs/design.md is out of date: run `npm run docs`")
    process.exit(1)
  }
} else if (next !== doc) {
  writeFileSync(path, next)
  console.log("docs/design.md: transition table and state diagram updated")
}
