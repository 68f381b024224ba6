// Draws one run of the bench as an SVG: for each target, the measured value as a bar and the target as
// a line, green when it is met. Usage: node bench/chart.ts RESULTS.json OUT.svg [title]
import { readFileSync, writeFileSync } from "node:fs"

interface Target {
  readonly text: string
  readonly pass: boolean
}
interface Workload {
  readonly name: string
  readonly title: string
  readonly unit: string
  readonly workUnit?: string
  readonly ratio?: number
  readonly addedUs?: number
  readonly proxyCpuPerWork?: number
  readonly proxy?: { readonly median: number }
  readonly targets: ReadonlyArray<Target>
}

const [input, output, title = "hctunnel bench"] = process.argv.slice(2)
if (input === undefined || output === undefined) {
  console.error("usage: node bench/chart.ts RESULTS.json OUT.svg [title]")
  process.exit(2)
}
const { results } = JSON.parse(readFileSync(input, "utf8")) as { results: ReadonlyArray<Workload> }

/** One bar: what was measured for one target, against the target's number. */
interface Bar {
  readonly label: string
  readonly value: number
  readonly target: number
  readonly unit: string
  readonly higherIsBetter: boolean
  readonly pass: boolean
}

const bars: Bar[] = []
for (const w of results) {
  for (const t of w.targets) {
    const limit = Number(/(-?[\d.]+)/.exec(t.text)?.[1])
    const higher = t.text.includes(">=")
    let value: number | undefined
    let unit = ""
    if (t.text.startsWith("ratio")) value = w.ratio
    else if (t.text.includes("CPU-s")) {
      value = w.proxyCpuPerWork
      unit = ` CPU-s/${w.workUnit ?? ""}`
    } else if (t.text.startsWith("added")) {
      value = w.addedUs
      unit = " µs added"
    } else {
      value = w.proxy?.median
      unit = ` ${w.unit}`
    }
    if (value === undefined || !Number.isFinite(limit)) continue
    bars.push({ label: `${w.name}: ${t.text}`, value, target: limit, unit, higherIsBetter: higher, pass: t.pass })
  }
}

const rowHeight = 34
const labelWidth = 300
const barWidth = 420
const width = labelWidth + barWidth + 170
const height = 60 + bars.length * rowHeight
const escapeXml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2))

const rows = bars.map((b, i) => {
  const y = 50 + i * rowHeight
  const scale = barWidth / (Math.max(b.value, b.target) * 1.15)
  const colour = b.pass ? "#2e7d32" : "#c62828"
  const targetX = labelWidth + b.target * scale
  return [
    `<text x="${labelWidth - 10}" y="${y + 16}" text-anchor="end">${escapeXml(b.label)}</text>`,
    `<rect x="${labelWidth}" y="${y + 4}" width="${(b.value * scale).toFixed(1)}" height="18" fill="${colour}" opacity="0.85"/>`,
    `<line x1="${targetX.toFixed(1)}" x2="${targetX.toFixed(1)}" y1="${y}" y2="${y + 26}" stroke="#000" stroke-width="2"/>`,
    `<text x="${labelWidth + barWidth + 10}" y="${y + 16}">${escapeXml(fmt(b.value) + b.unit)} ${b.pass ? "met" : "missed"}</text>`,
  ].join("\n")
})

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>
<text x="10" y="40" fill="#555">bar: measured (green met, red missed); black line: target. Ratios are proxy / direct in the same run.</text>
${rows.join("\n")}
</svg>
`
writeFileSync(output, svg)
console.log(`wrote ${output}: ${bars.length} targets, ${bars.filter((b) => b.pass).length} met`)
