/**
 * The relative links of Markdown files, and whether each leads somewhere: the file (or folder) it names
 * exists, and a `#anchor` on a link to a Markdown file (or on a bare `#anchor`) is the slug of one of
 * that file's headings, as GitHub makes them.
 *
 * Pure: the checker reads files through the two functions it is given, so its self-test runs on strings.
 * It knows the Markdown the docs use: inline links and images `[text](target "title")`, reference
 * definitions `[name]: target`, `href`/`src` attributes, ATX headings (`## Title`); code blocks and code
 * spans are neither links nor headings. External links (a scheme such as `https:`, or `//host`) are not
 * checked: the tests never leave the machine.
 */
import { dirname, join, normalize } from "node:path"

/** One link that leads nowhere, with where it is and why. */
export interface BrokenLink {
  readonly file: string
  readonly line: number
  readonly target: string
  readonly reason: string
}

/** How the checker sees the files: paths relative to the repository root, with `/` separators. */
export interface Files {
  /** The text of a Markdown file, or undefined when there is no such file. */
  readonly read: (path: string) => string | undefined
  /** Whether a file or a folder exists. */
  readonly exists: (path: string) => boolean
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/
const ATX_HEADING = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/
const EMPTY_HEADING = /^ {0,3}#{1,6}[ \t]*$/
const INLINE_LINK = /\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g
const REFERENCE_DEFINITION = /^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)/
const HTML_ATTRIBUTE = /\b(?:href|src)\s*=\s*"([^"]*)"/g
const SCHEME = /^[a-z][a-z0-9+.-]*:/i

/**
 * The lines of a Markdown text with its fenced code blocks blanked (so line numbers stay): a `# comment`
 * in a shell example is not a heading. An unclosed fence runs to the end, as in CommonMark.
 */
const proseLines = (text: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  let fence: string | undefined
  for (const line of text.split("\n")) {
    const open = FENCE.exec(line)
    if (fence === undefined) {
      if (open) fence = open[1]!
      out.push(open ? "" : line)
    } else {
      // A closing fence is the same character, at least as long, and nothing else on the line.
      const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line)
      if (close && close[1]![0] === fence[0] && close[1]!.length >= fence.length) fence = undefined
      out.push("")
    }
  }
  return out
}

/** A line with its code spans blanked: a link written as code is an example, not a link. */
const withoutCodeSpans = (line: string): string => line.replace(/(`+)(?:(?!\1).)+?\1/g, (span) => " ".repeat(span.length))

/** A heading's text as GitHub renders it: links reduced to their text, code and emphasis marks dropped. */
const headingText = (raw: string): string =>
  raw
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .replace(/[`*]/g, "")

/**
 * GitHub's anchor for a heading text: lower-case; every character that is not a letter, a mark, a digit,
 * a space, `-` or `_` removed; each space made a `-`. (GitHub reads `_` of `_emphasis_` as markup; the
 * docs do not emphasise headings that way.)
 */
export const slug = (text: string): string =>
  headingText(text)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}_\- ]/gu, "")
    .replace(/ /g, "-")

/** The anchors of a Markdown text's headings, in order; a repeated one gets `-1`, `-2`... as on GitHub. */
export const anchors = (text: string): ReadonlySet<string> => {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const line of proseLines(text)) {
    if (EMPTY_HEADING.test(line)) continue
    const m = ATX_HEADING.exec(line)
    if (!m) continue
    const base = slug(m[1]!)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** Every link target of a Markdown text, external ones included, with its line number (1-based). */
export const links = (text: string): ReadonlyArray<{ readonly line: number; readonly target: string }> => {
  const out: Array<{ line: number; target: string }> = []
  proseLines(text).forEach((raw, i) => {
    const line = withoutCodeSpans(raw)
    const found = [...line.matchAll(INLINE_LINK), ...line.matchAll(HTML_ATTRIBUTE)]
    const def = REFERENCE_DEFINITION.exec(line)
    if (def) found.push(def)
    // In the order they appear on the line, so a report reads like the file.
    found.sort((a, b) => a.index - b.index)
    for (const m of found) out.push({ line: i + 1, target: m[1]!.replace(/^<|>$/g, "") })
  })
  return out
}

const isExternal = (target: string): boolean => SCHEME.test(target) || target.startsWith("//")

/**
 * The links of `file` that lead nowhere. A target is relative to the file's folder, or to the repository
 * root when it starts with `/` (as GitHub reads it); `?query` is ignored, `%xx` decoded.
 */
export const brokenLinks = (file: string, files: Files): ReadonlyArray<BrokenLink> => {
  const text = files.read(file)
  if (text === undefined) return [{ file, line: 0, target: file, reason: "no such Markdown file" }]
  const broken: Array<BrokenLink> = []
  for (const { line, target } of links(text)) {
    if (isExternal(target)) continue
    const hash = target.indexOf("#")
    const pathPart = (hash < 0 ? target : target.slice(0, hash)).replace(/\?.*$/, "")
    const anchor = hash < 0 ? undefined : target.slice(hash + 1)
    let path: string
    try {
      const decoded = decodeURIComponent(pathPart)
      path = decoded === "" ? file : normalize(decoded.startsWith("/") ? decoded.slice(1) : join(dirname(file), decoded))
    } catch {
      broken.push({ file, line, target, reason: "not a valid percent-encoded path" })
      continue
    }
    path = path.replace(/\\/g, "/").replace(/\/$/, "")
    if (path.startsWith("../") || path === "..") {
      broken.push({ file, line, target, reason: "leads outside the repository" })
      continue
    }
    if (path !== file && !files.exists(path)) {
      broken.push({ file, line, target, reason: `${path} does not exist` })
      continue
    }
    if (anchor === undefined || !path.endsWith(".md")) continue
    const targetText = files.read(path)
    if (targetText === undefined) {
      broken.push({ file, line, target, reason: `${path} cannot be read` })
    } else if (!anchors(targetText).has(anchor)) {
      broken.push({ file, line, target, reason: `${path} has no heading whose anchor is #${anchor}` })
    }
  }
  return broken
}

/** A broken link as one line: `README.md:12: docs/x.md#y: docs/x.md has no heading...`. */
export const describeBroken = (b: BrokenLink): string => `${b.file}:${b.line}: ${b.target}: ${b.reason}`
