/**
 * latin1: bytes <-> strings for header text, one byte per UTF-16 code unit (ISO-8859-1).
 *
 * Owns: the only conversion between head bytes and strings. Header bytes are never decoded as UTF-8:
 * obs-text (0x80..0xFF) must survive a parse/serialize round trip unchanged, and TextDecoder's "latin1"
 * label is really windows-1252 (it remaps 0x80..0x9F), so it is not used either.
 */

/** Arguments per String.fromCharCode call: well under any engine's argument limit. */
const SLICE = 4096

/** Decode bytes [start, end) of `bytes`, one character per byte. */
export const decodeLatin1 = (bytes: Uint8Array, start: number, end: number): string => {
  if (end - start <= SLICE) {
    return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as Array<number>)
  }
  let s = ""
  for (let i = start; i < end; i += SLICE) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + SLICE)) as unknown as Array<number>)
  }
  return s
}

/**
 * Encode a string one byte per code unit. Units above 0xFF (only possible in text that did not come from
 * decodeLatin1, e.g. configuration) become "?" rather than being truncated into some other byte.
 */
export const encodeLatin1 = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out[i] = c > 0xff ? 0x3f : c
  }
  return out
}
