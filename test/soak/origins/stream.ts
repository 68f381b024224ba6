/**
 * The far end of CONNECT tunnels and upgraded connections: a tiny protocol over the raw bytes.
 *
 * The client opens with one line, `SOAK <id> <upOffset> <upLength> <downOffset> <downLength> <mode>` CRLF;
 * then both directions flow at once: the client sends the up stream and half-closes, the origin sends the
 * down stream and half-closes, each side checks what it receives. `full`: the origin hashes the up stream
 * (SHA-256) and must see exactly its length, then a FIN; it also compares it byte for byte as it comes, so
 * that a stream cut part-way (a worker ended) is known to be a true prefix. `abort`: the client will cut the connection
 * part-way; the origin checks byte for byte that what it got is a prefix of the stream. The verdict goes
 * to `Verdicts` under the id.
 */
import type net from "node:net"
import { HashCheck, StreamCheck } from "../rng.ts"
import { writeAll } from "../wire/http1.ts"
import type { Reader } from "../wire/Reader.ts"
import type { OriginContext } from "./serve.ts"

export const STREAM_LINE = /^SOAK (\S+) (\d+) (\d+) (\d+) (\d+) (full|abort)$/

export const serveStream = async (
  ctx: OriginContext & { pace: (n: number) => Promise<void> },
  socket: net.Socket,
  r: Reader,
): Promise<void> => {
  let line: string
  try {
    line = (await r.line(256)).toString("latin1")
  } catch {
    socket.destroy()
    return
  }
  const m = STREAM_LINE.exec(line)
  if (m === null) {
    ctx.ledger.record("origin: stream", "corrupted", `the stream header arrived as ${JSON.stringify(line.slice(0, 80))}`)
    socket.destroy()
    return
  }
  const [, id, upOff, upLen, downOff, downLen, mode] = m
  const sending = writeAll(socket, ctx.pool.slices(Number(downOff), Number(downLen)), ctx.pace).then(
    () => void socket.end(),
    () => {},
  )
  if (mode === "full") {
    const check = new HashCheck(ctx.pool, Number(upOff), Number(upLen))
    // Byte for byte as well (a memcmp, cheap): a stream cut part-way must still be a true prefix.
    const prefix = new StreamCheck(ctx.pool, Number(upOff), Number(upLen))
    const ended = await r.rest((chunk) => {
      check.feed(chunk)
      prefix.feed(chunk)
    })
    const verdict =
      prefix.mismatchAt !== undefined && prefix.mismatchAt < Number(upLen)
        ? `mismatch at byte ${prefix.mismatchAt}`
        : ended.how === "end"
          ? check.verdict()
          : `lost after ${check.received} bytes (${ended.message})`
    ctx.verdicts.settle(id!, verdict)
  } else {
    const check = new StreamCheck(ctx.pool, Number(upOff), Number(upLen))
    await r.rest(check.feed)
    ctx.verdicts.settle(id!, check.mismatchAt === undefined ? `prefix ${check.received}` : `mismatch at byte ${check.mismatchAt}`)
    socket.destroy()
  }
  await sending
}
