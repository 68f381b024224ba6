/**
 * Every relative link in the repository's Markdown files leads somewhere (issue 16): the file or folder
 * exists, and a `#anchor` on a link to a Markdown file is one of its headings' anchors. The checker
 * (markdown-links.ts) is first tried on made-up files, so a checker that passes everything fails here.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { anchors, brokenLinks, describeBroken, type Files, links, slug } from "./markdown-links.ts"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

/** A made-up tree: path -> text (folders are the prefixes of the paths). */
const fakeFiles = (tree: Record<string, string>): Files => ({
  read: (path) => tree[path],
  exists: (path) => path in tree || Object.keys(tree).some((p) => p.startsWith(`${path}/`)),
})

describe("the link checker, on made-up files", () => {
  it("makes GitHub's anchors: lower-case, spaces to '-', other punctuation but '-' and '_' dropped", () => {
    expect(slug("Set up")).toBe("set-up")
    expect(slug("Destinations: `--allow-to` and `--deny-to`")).toBe("destinations---allow-to-and---deny-to")
    expect(slug("6.9 Responses the proxy writes itself")).toBe("69-responses-the-proxy-writes-itself")
    expect(slug("Logs, stats and signals")).toBe("logs-stats-and-signals")
    expect(slug("Behind a load balancer (PROXY protocol)")).toBe("behind-a-load-balancer-proxy-protocol")
    expect(slug("The `max_head_bytes` limit")).toBe("the-max_head_bytes-limit")
    expect(slug("6.1 Request heads (client → proxy)")).toBe("61-request-heads-client--proxy")
    expect(slug("Über **alles** [here](x.md)")).toBe("über-alles-here")
  })

  it("numbers repeated headings and skips '#' lines inside code blocks", () => {
    const text = "# A\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Notes\n\n~~~\n## Hidden\n~~~\n### Notes ###\n"
    expect([...anchors(text)]).toEqual(["a", "notes", "notes-1", "notes-2"])
  })

  it("finds inline links, images, reference definitions and href, but not code", () => {
    const text = [
      'See [a](a.md) and ![b](img/b.svg "title") and [c](<c d.md>).',
      "`[not](code.md)` and ``[nor](this.md)``",
      "```",
      "[nor](fenced.md)",
      "```",
      "[ref]: ref.md",
      '<a href="html.md">x</a> [web](https://example.com/x.md)',
    ].join("\n")
    expect(links(text)).toEqual([
      { line: 1, target: "a.md" },
      { line: 1, target: "img/b.svg" },
      { line: 1, target: "c d.md" },
      { line: 6, target: "ref.md" },
      { line: 7, target: "html.md" },
      { line: 7, target: "https://example.com/x.md" },
    ])
  })

  const tree = {
    "README.md": [
      "# Project",
      "## Set up",
      "[ok](docs/guide.md) [ok anchor](docs/guide.md#the-settings-table) [ok here](#set-up)",
      "[folder](docs/) [root-relative](/docs/guide.md) [code file anchor](src/x.ts#L3) [web](https://x.test/nope.md)",
      "[missing file](docs/nope.md)",
      "[missing anchor](docs/guide.md#settings)",
      "[missing here](#setup)",
      "[outside](../elsewhere.md)",
    ].join("\n"),
    "docs/guide.md": "# Guide\n\n## The settings table\n\n[back](../README.md#set-up) [broken back](../README.md#project-1)\n",
    "src/x.ts": "export {}\n",
  }

  it("passes links that lead somewhere and reports each one that does not, with its line and why", () => {
    const files = fakeFiles(tree)
    expect(brokenLinks("README.md", files).map(describeBroken)).toEqual([
      "README.md:5: docs/nope.md: docs/nope.md does not exist",
      "README.md:6: docs/guide.md#settings: docs/guide.md has no heading whose anchor is #settings",
      "README.md:7: #setup: README.md has no heading whose anchor is #setup",
      "README.md:8: ../elsewhere.md: leads outside the repository",
    ])
    expect(brokenLinks("docs/guide.md", files).map(describeBroken)).toEqual([
      "docs/guide.md:5: ../README.md#project-1: README.md has no heading whose anchor is #project-1",
    ])
  })
})

/** The Markdown files of the repository: tracked ones, and new ones not yet added (but not ignored ones). */
const markdownFiles = (): ReadonlyArray<string> => {
  const r = spawnSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "--", "*.md"], {
    cwd: ROOT,
    encoding: "utf8",
  })
  if (r.status !== 0) throw new Error(`git ls-files failed: ${r.stderr}`)
  return [...new Set(r.stdout.split("\n").filter((f) => f !== "" && existsSync(resolve(ROOT, f))))].sort()
}

const repositoryFiles: Files = {
  read: (path) => {
    try {
      return readFileSync(resolve(ROOT, path), "utf8")
    } catch {
      return undefined
    }
  },
  exists: (path) => existsSync(resolve(ROOT, path)),
}

describe("the repository's Markdown", () => {
  const files = markdownFiles()

  it("includes the README, CONTRIBUTING.md and the docs", () => {
    for (const f of ["README.md", "CONTRIBUTING.md", "docs/configuration.md", "docs/security.md", "docs/design.md"]) {
      expect(files).toContain(f)
    }
  })

  it.each(files)("%s: every relative link leads to a file, and every anchor to a heading", (file) => {
    expect(brokenLinks(file, repositoryFiles).map(describeBroken)).toEqual([])
  })
})

/** Source paths a document names in code spans (`src/runtime/dial/Dialer.ts`): a moved file must not leave them stale. */
const SOURCE_PATH = /`((?:src|test|bench|scripts|examples)\/[A-Za-z0-9_./-]+\.(?:ts|mjs|c|json|md))`/g
/** Files a run writes, not the repository: named in the docs, never committed. */
const GENERATED = new Set(["bench/results/latest.json"])

const missingSourcePaths = (text: string, exists: (path: string) => boolean): Array<string> =>
  [...new Set([...text.matchAll(SOURCE_PATH)].map((m) => m[1] as string))].filter((p) => !GENERATED.has(p) && !exists(p))

describe("source paths named in the Markdown", () => {
  it("the check reports a path that does not exist and passes one that does", () => {
    const text = "see `src/runtime/Gone.ts` and `src/core/postman.ts`, not `npm test`"
    expect(missingSourcePaths(text, repositoryFiles.exists)).toEqual(["src/runtime/Gone.ts"])
  })

  it.each(markdownFiles())("%s: every `src/...`, `test/...` path it names exists", (file) => {
    expect(missingSourcePaths(repositoryFiles.read(file) ?? "", repositoryFiles.exists)).toEqual([])
  })
})
