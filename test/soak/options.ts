/** The soak's command line: `--seconds N`, `--seed S`, `--json FILE`, `--rate MB/s`. */
import { randomInt } from "node:crypto"

export const DEFAULT_RATE_MB = 16

export interface Options {
  readonly seconds: number
  readonly json: string | undefined
  readonly seed: number
  readonly rateMb: number
}

export const parseArgs = (argv: ReadonlyArray<string>): Options => {
  const o = { seconds: 600, json: undefined as string | undefined, seed: randomInt(1, 2 ** 31), rateMb: DEFAULT_RATE_MB }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) usage(`${a} needs a value`)
      return v!
    }
    const number = (name: string, min: number, max: number): number => {
      const v = Number(value())
      if (!Number.isInteger(v) || v < min || v > max) usage(`${name} must be an integer from ${min} to ${max}`)
      return v
    }
    if (a === "--seconds") o.seconds = number("--seconds", 60, 7 * 24 * 3600)
    else if (a === "--json") o.json = value()
    else if (a === "--seed") o.seed = number("--seed", 0, 2 ** 31)
    else if (a === "--rate") o.rateMb = number("--rate", 1, 1000)
    else if (a === "--help" || a === "-h") usage()
    else usage(`unknown argument ${a}`)
  }
  return o
}

function usage(problem?: string): never {
  const text = `usage: npm run soak -- [--seconds N (default 600)] [--json FILE] [--seed S] [--rate MB/s (bulk data, default ${DEFAULT_RATE_MB})]`
  if (problem !== undefined) {
    console.error(`soak: ${problem}\n${text}`)
    process.exit(2)
  }
  console.log(text)
  process.exit(0)
}

/** The command that runs the same choices again. */
export const replayCommand = (o: Options): string =>
  `npm run soak -- --seconds ${o.seconds} --seed ${o.seed}${o.rateMb === DEFAULT_RATE_MB ? "" : ` --rate ${o.rateMb}`}`
