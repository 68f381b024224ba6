/**
 * CONNECT tunnels and upgraded connections carrying seeded streams both ways (origins/stream.ts): the client
 * hashes what comes down, the origin hashes what goes up, both must match the pool's SHA-256 exactly.
 * Sizes run from empty to 50 MB; large ones take their offset and length from the pool's memoized set.
 */
import { Corrupted, Lost, Unexpected } from "../report/Ledger.ts"
import { HashCheck, LONG_LENGTHS, LONG_OFFSETS, POOL_SIZE, type Rng, StreamCheck } from "../rng.ts"
import { field, head, writeAll } from "../wire/http1.ts"
import { Conn, type Env, lost } from "./Client.ts"

export const ESTABLISHED = "HTTP/1.1 200 Connection established\r\n\r\n"

interface Stream {
  readonly o: number
  readonly n: number
}

const stream = (rng: Rng, large: boolean): Stream =>
  large
    ? { o: rng.pick(LONG_OFFSETS), n: rng.pick(LONG_LENGTHS) }
    : { o: rng.int(0, POOL_SIZE - 1), n: rng.chance(0.1) ? 0 : rng.int(1, 256 * 1024) }

/** Runs the stream protocol on an established tunnel: both directions at once, both checked. */
export const runStreams = async (env: Env, c: Conn, id: string, up: Stream, down: Stream, early?: Buffer): Promise<void> => {
  const header = `SOAK ${id} ${up.o} ${up.n} ${down.o} ${down.n} full\r\n`
  if (early === undefined) c.write(header)
  const check = new HashCheck(env.pool, down.o, down.n)
  // Byte for byte as well (a memcmp, cheap): a stream cut part-way must still be a true prefix.
  const prefix = new StreamCheck(env.pool, down.o, down.n)
  const receiving = c.r.rest((chunk) => {
    check.feed(chunk)
    prefix.feed(chunk)
  })
  env.stage.now = `tunnel ${id}: up ${up.n} B, down ${down.n} B`
  await writeAll(c.socket, env.pool.slices(up.o, up.n), up.n > 256 * 1024 ? env.pace : undefined)
    .then(() => c.socket.end())
    .catch(lost)
  const ended = await receiving
  if (prefix.mismatchAt !== undefined && prefix.mismatchAt < down.n)
    throw new Corrupted(`down stream byte ${prefix.mismatchAt} of ${down.n} differs`)
  const down_ = check.verdict()
  if (down_ === "long" || down_ === "hash") throw new Corrupted(`down stream of ${down.n} bytes: ${down_} (${check.received} received)`)
  if (ended.how !== "end" || down_ === "short") throw new Lost(`down stream ${check.received}/${down.n} bytes, then ${ended.how}`)
  const up_ = await env.verdicts.wait(id, 30_000)
  if (up_ === "long" || up_ === "hash" || up_.startsWith("mismatch"))
    throw new Corrupted(`up stream of ${up.n} bytes: ${up_} at the origin`)
  if (up_ === "none") throw new Unexpected("the origin never finished the up stream")
  if (up_ !== "ok") throw new Lost(`up stream at the origin: ${up_}`)
  env.ledger.bytesVerified += up.n + down.n
  env.ledger.tunnels++
}

/** Reads the 200 of a CONNECT: exactly its 39 bytes (design §6.5). */
export const expectEstablished = async (c: Conn): Promise<void> => {
  const got = await c.r.exact(ESTABLISHED.length).catch(lost)
  if (got.toString("latin1") !== ESTABLISHED) {
    if (got.toString("latin1").startsWith("HTTP/1.1 "))
      throw new Unexpected(`CONNECT answered ${JSON.stringify(got.toString("latin1").split("\r\n")[0])}`)
    throw new Corrupted(`CONNECT answer ${JSON.stringify(got.toString("latin1"))}`)
  }
}

/** A CONNECT head with alice's credentials, or with `auth` (null: none). */
export const connectHead = (env: Env, authority: string, auth: string | null = env.alice): string =>
  `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth === null ? "" : `Proxy-Authorization: ${auth}\r\n`}\r\n`

/** A CONNECT tunnel: small or large streams each way; sometimes the stream header goes before the 200. */
export const tunnel = async (env: Env, signal: AbortSignal, bulk: boolean): Promise<void> => {
  const rng = env.rng
  const up = stream(rng, bulk && rng.chance(0.6))
  const down = stream(rng, bulk && rng.chance(0.6))
  const id = env.nextId()
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    const early = rng.chance(0.3)
    const line = Buffer.from(`SOAK ${id} ${up.o} ${up.n} ${down.o} ${down.n} full\r\n`)
    c.write(
      early
        ? Buffer.concat([Buffer.from(connectHead(env, `127.0.0.1:${env.ports.stream}`)), line])
        : connectHead(env, `127.0.0.1:${env.ports.stream}`),
    )
    await expectEstablished(c)
    await runStreams(env, c, id, up, down, early ? line : undefined)
  } finally {
    c.destroy()
  }
}

/** An upgrade (101) to the stream protocol, through a plain HTTP request. */
export const upgrade = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(
      head(`GET http://127.0.0.1:${env.ports.good}/upgrade HTTP/1.1`, [
        ["Host", `127.0.0.1:${env.ports.good}`],
        ["Proxy-Authorization", env.alice],
        ["Connection", "upgrade"],
        ["Upgrade", "soak-stream"],
      ]),
    )
    const h = await c.head()
    if (h.status !== 101) throw new Unexpected(`upgrade answered ${h.status} ${h.reason}`)
    c.checkVia(h)
    if (field(h.fields, "upgrade") !== "soak-stream" || field(h.fields, "connection") !== "upgrade")
      throw new Unexpected(`101 with Upgrade ${field(h.fields, "upgrade")}, Connection ${field(h.fields, "connection")}`)
    env.ledger.requests++
    await runStreams(env, c, env.nextId(), stream(rng, false), stream(rng, false))
  } finally {
    c.destroy()
  }
}

/** A client that cuts its tunnel part-way: the origin must have received a prefix of what was sent, nothing else. */
export const abortMidTunnel = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const id = env.nextId()
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(64 * 1024, 2 * 1024 * 1024)
  const k = rng.int(1, 48 * 1024)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(connectHead(env, `127.0.0.1:${env.ports.stream}`))
    await expectEstablished(c)
    c.write(`SOAK ${id} ${o} ${n} 0 ${rng.int(0, 4 * 1024 * 1024)} abort\r\n`)
    c.write(env.pool.copy(o, k))
    await new Promise((resolve) => setTimeout(resolve, 50))
    if (rng.chance(0.5)) c.socket.resetAndDestroy()
    else c.destroy()
  } finally {
    c.destroy()
  }
  const verdict = await env.verdicts.wait(id, 20_000)
  const m = /^prefix (\d+)$/.exec(verdict)
  if (m === null) {
    if (verdict.startsWith("mismatch")) throw new Corrupted(`the origin of an aborted tunnel saw a ${verdict}`)
    throw new Unexpected(`the origin of an aborted tunnel: ${verdict}`)
  }
  if (Number(m[1]) > k) throw new Corrupted(`the origin got ${m[1]} bytes, the client sent ${k}`)
  env.ledger.tunnels++
}
