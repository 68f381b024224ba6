/**
 * Renders the generated parts of docs/design.md from the transition table (src/core/transitions.ts):
 * the table of §5, between `<!-- transitions:begin -->` and `<!-- transitions:end -->`, and the state
 * diagram, between `<!-- diagram:begin -->` and `<!-- diagram:end -->`. Pure string work; the prose
 * around the markers is never touched.
 */
import { states, type Transition, transitions, triggersOf } from "../src/core/transitions.ts"

const cell = (s: string | undefined): string => (s === undefined || s === "" ? "—" : s.replaceAll("|", "\\|"))

export const renderTable = (): string =>
  [
    "| id | from | event | when | to | actions | Close(client) | Close(origin) | log |",
    "|---|---|---|---|---|---|---|---|---|",
    ...transitions.map(
      (t) =>
        `| ${t.id} | ${t.from} | ${cell(t.event)} | ${cell(t.when)} | ${t.to} | ${t.actions.length === 0 ? "—" : t.actions.join(", ")} | ${cell(t.closeClient)} | ${cell(t.closeOrigin)} | ${cell(t.log)} |`,
    ),
  ].join("\n")

/**
 * One arrow per pair of different states that some row joins, labelled with the triggers of those rows
 * and their IDs; rows that stay in their state are the table's business, not the diagram's.
 */
export const renderDiagram = (): string => {
  const edges = new Map<string, Transition[]>()
  for (const t of transitions) {
    if (t.from === t.to) continue
    const key = `${t.from} --> ${t.to}`
    edges.set(key, [...(edges.get(key) ?? []), t])
  }
  const order = (key: string) => {
    const [from, to] = key.split(" --> ") as [string, string]
    return states.indexOf(from as never) * 10 + states.indexOf(to as never)
  }
  const lines = ["```mermaid", "stateDiagram-v2", "    [*] --> AwaitingHead: start()"]
  for (const key of [...edges.keys()].sort((a, b) => order(a) - order(b))) {
    const rows = edges.get(key)!
    const byTrigger = new Map<string, string[]>()
    for (const t of rows) for (const trigger of triggersOf(t)) byTrigger.set(trigger, [...(byTrigger.get(trigger) ?? []), t.id])
    const label = [...byTrigger].map(([trigger, ids]) => `${trigger} ${ids.join(" ")}`).join("; ")
    lines.push(`    ${key}: ${label.replaceAll(":", "")}`)
  }
  lines.push("    Closed --> [*]", "```")
  return lines.join("\n")
}

const splice = (doc: string, begin: string, end: string, content: string): string => {
  const at = doc.indexOf(begin)
  const to = doc.indexOf(end)
  if (at < 0 || to < at) throw new Error(`docs/design.md lacks the markers ${begin} ... ${end}`)
  return doc.slice(0, at + begin.length) + "\n" + content + "\n" + doc.slice(to)
}

/** The document with its generated parts brought up to date. */
export const renderDesign = (doc: string): string =>
  splice(
    splice(doc, "<!-- transitions:begin -->", "<!-- transitions:end -->", renderTable()),
    "<!-- diagram:begin -->",
    "<!-- diagram:end -->",
    renderDiagram(),
  )
