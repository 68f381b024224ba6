/**
 * The README is a user's first screen (issue 16): short, with the two set-up commands that `.ci/run` and
 * test/cli/newcomer.test.ts rely on, and one click from the settings reference, whose table names every
 * setting the command knows (src/cli/settings.ts), on all three layers.
 */
import { readFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { CONFIG_FLAG, settings } from "../../src/cli/settings.ts"
import { links } from "./markdown-links.ts"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const read = (path: string) => readFileSync(resolve(ROOT, path), "utf8")

describe("README.md", () => {
  const readme = read("README.md")

  it("fits a first screen's budget: at most 16 KB", () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(16 * 1024)
  })

  it("shows the two set-up commands", () => {
    expect(readme).toContain("npm install && npx hctunnel")
    expect(readme).toMatch(/^npm test\b/m)
  })

  it("links to the settings reference before its first section", () => {
    const intro = readme.slice(0, readme.indexOf("\n## "))
    expect(links(intro).map((l) => l.target)).toContain("docs/configuration.md")
  })
})

describe("docs/configuration.md", () => {
  const rows = read("docs/configuration.md")
    .split("\n")
    .filter((line) => line.startsWith("| `--"))

  it.each(settings.map((s) => [s.flag, s] as const))("its settings table has --%s with its env var and config key", (_, s) => {
    const row = rows.find((r) => r.startsWith(`| \`--${s.flag}\``))
    expect(row, `no row for --${s.flag}`).toBeDefined()
    expect(row).toContain(`\`${s.env}\``)
    expect(row).toContain(`| \`${s.key}\` |`)
    if (s.alias !== undefined) expect(row).toContain(`\`-${s.alias}\``)
  })

  it("its settings table has --config", () => {
    const row = rows.find((r) => r.startsWith(`| \`--${CONFIG_FLAG.flag}\``))
    expect(row).toContain(`\`-${CONFIG_FLAG.alias}\``)
    expect(row).toContain(`\`${CONFIG_FLAG.env}\``)
  })
})
