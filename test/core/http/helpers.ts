/** Test helpers shared by the http tests: latin1 bytes from strings, and splitting bytes at given points. */

export const bytes = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

export const text = (b: Uint8Array): string => String.fromCharCode(...b)

/** Split `input` at the given cut points (any numbers; reduced modulo length+1, sorted, deduplicated). */
export const splitAt = (input: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b)
  const parts: Array<Uint8Array> = []
  let prev = 0
  for (const p of points) {
    parts.push(input.subarray(prev, p))
    prev = p
  }
  parts.push(input.subarray(prev))
  return parts
}
