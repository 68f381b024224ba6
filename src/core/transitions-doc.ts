/**
 * Renders the transition table (./transitions.ts) as Markdown for docs/design.md, and splices it in
 * between the `<!-- transitions:begin -->` and `<!-- transitions:end -->` markers. Pure string work.
 */
import { transitions } from "./transitions.ts"

export const beginMarker = "<!-- transitions:begin -->"
export const endMarker = "<!-- transitions:end -->"

export const renderTable = (): string => {
  const lines = [
    "| id | from | event | when | to | actions |",
    "|---|---|---|---|---|---|",
    ...transitions.map((t) =>
      `| ${t.id} | ${t.from} | ${t.event} | ${t.when || "—"} | ${t.to} | ${t.actions.length === 0 ? "—" : t.actions.join(", ")} |`
    ),
  ]
  return lines.join("\n")
}

export const replaceTable = (doc: string, table: string): string => {
  const begin = doc.indexOf(beginMarker)
  const end = doc.indexOf(endMarker)
  if (begin < 0 || end < begin) throw new Error("docs/design.md lacks the transition table markers")
  return doc.slice(0, begin + beginMarker.length) + "\n" + table + "\n" + doc.slice(end)
}
