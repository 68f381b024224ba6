/**
 * Misbehaving clients, each with what the proxy must do about it (design §6.1, §6.9, §6.11):
 *   abort mid-head (FIN: closed without a byte; RST), abort mid-body (the origin got a prefix, nothing
 *   else), slowloris (408 after headTimeout), a client that stops reading a large body for a while
 *   (backpressure; then every byte arrives), a half-close right after a request (the answer still comes,
 *   then the close), garbage and oversized heads (their exact 400/405/414/431/501).
 */
import { CONFIGS, KEEP_ALIVE_TIMEOUT_MS } from "../env/Files.ts"
import { Corrupted, Lost, Unexpected } from "../report/Ledger.ts"
import { LONG_LENGTHS, LONG_OFFSETS, POOL_SIZE } from "../rng.ts"
import { field, head, responseFraming } from "../wire/http1.ts"
import { Conn, type Env, expectBody, expectError, sleep } from "./Client.ts"

const getHead = (env: Env, path: string, extra: ReadonlyArray<readonly [string, string]> = []): Buffer =>
  head(`GET http://127.0.0.1:${env.ports.good}${path} HTTP/1.1`, [
    ["Host", `127.0.0.1:${env.ports.good}`],
    ["Proxy-Authorization", env.alice],
    ...extra,
  ])

export const abortMidHead = async (env: Env, signal: AbortSignal): Promise<void> => {
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    const whole = getHead(env, "/data?o=1&n=10")
    c.write(whole.subarray(0, env.rng.int(1, whole.length - 3)))
    if (env.rng.chance(0.5)) {
      c.socket.resetAndDestroy()
      return
    }
    c.socket.end()
    await c.closed("a head cut by the client")
    if (c.r.buffered > 0) throw new Unexpected("an answer to a head the client never finished")
  } finally {
    c.destroy()
  }
}

export const abortMidBody = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const id = env.nextId()
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(256 * 1024, 4 * 1024 * 1024)
  const k = rng.int(1, 200 * 1024)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(
      head(`POST http://127.0.0.1:${env.ports.good}/sink?id=${id}&o=${o}&n=${n} HTTP/1.1`, [
        ["Host", `127.0.0.1:${env.ports.good}`],
        ["Proxy-Authorization", env.alice],
        ["Content-Length", String(n)],
      ]),
    )
    if ((await env.verdicts.wait(`${id}:started`, 15_000)) !== "started") throw new Unexpected("the request never reached the origin")
    c.write(env.pool.copy(o, k))
    await sleep(30)
    if (rng.chance(0.5)) c.socket.resetAndDestroy()
    else c.destroy()
  } finally {
    c.destroy()
  }
  const verdict = await env.verdicts.wait(id, 20_000)
  const m = /^prefix (\d+)$/.exec(verdict)
  if (m === null)
    throw verdict.startsWith("mismatch") ? new Corrupted(`the origin saw a ${verdict}`) : new Unexpected(`the origin: ${verdict}`)
  if (Number(m[1]) > k) throw new Corrupted(`the origin got ${m[1]} body bytes, the client sent ${k}`)
  env.ledger.requests++
}

/** A head sent a byte at a time, too slowly: 408 once headTimeout passes, then the close. */
export const slowloris = async (env: Env, signal: AbortSignal): Promise<void> => {
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    const whole = getHead(env, "/data?o=1&n=10")
    let i = 0
    const drip = setInterval(() => {
      if (i < whole.length - 4 && !c.socket.destroyed && c.r.buffered === 0) c.socket.write(whole.subarray(i, ++i))
    }, 400)
    try {
      const h = (await c.finalHead()).head
      const longest = Math.max(CONFIGS.a.headTimeoutMs, CONFIGS.b.headTimeoutMs)
      if (performance.now() - c.opened < Math.min(CONFIGS.a.headTimeoutMs, CONFIGS.b.headTimeoutMs) - 500)
        throw new Unexpected(`408 before headTimeout (${Math.round(performance.now() - c.opened)} ms, ${longest} at most)`)
      clearInterval(drip)
      await expectError(c, 408, "the request head did not arrive in time", h)
    } finally {
      clearInterval(drip)
    }
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** A client that does not read a large body for 1.5 s: the proxy must hold back (bounded), then deliver every byte. */
export const neverReads = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const o = rng.pick(LONG_OFFSETS)
  const n = rng.pick(LONG_LENGTHS.slice(0, 5))
  const chunked = rng.chance(0.5)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.socket.pause()
    c.write(getHead(env, `/data?o=${o}&n=${n}&te=${chunked ? "ch" : "cl"}`, [["Connection", "close"]]))
    await sleep(1500)
    c.socket.resume()
    const h = (await c.finalHead()).head
    if (h.status !== 200) throw new Unexpected(`a paused reader got ${h.status}`)
    c.checkVia(h)
    await expectBody(c, env, responseFraming("GET", h), o, n)
    await c.closed("the body")
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** A request followed at once by the client's FIN: the answer still comes whole, then the proxy closes. */
export const halfCloseAfterRequest = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(0, 512 * 1024)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(getHead(env, `/data?o=${o}&n=${n}&te=${rng.chance(0.5) ? "ch" : "cl"}`))
    c.socket.end()
    const h = (await c.finalHead()).head
    if (h.status !== 200) throw new Unexpected(`a half-closed client got ${h.status}`)
    c.checkVia(h)
    const conn = field(h.fields, "connection")
    if (conn !== undefined && conn !== "close") throw new Unexpected(`Connection: ${conn}`)
    await expectBody(c, env, responseFraming("GET", h), o, n)
    await c.closed("the answer to a half-closed client")
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** Heads the proxy must refuse, each with its status and detail (design §6.9). */
const garbage = (env: Env): ReadonlyArray<{ bytes: Buffer; status: number; detail: string | RegExp }> => {
  const p = env.ports.good
  const rng = env.rng
  const noise = Buffer.from(Array.from({ length: rng.int(0, 200) }, () => rng.int(0, 255)))
  const first = rng.int(0, 8)
  return [
    {
      bytes: Buffer.concat([Buffer.from([first]), noise, Buffer.from("\r\n\r\n")]),
      status: 400,
      detail: `invalid character 0x0${first} in the method`,
    },
    {
      bytes: Buffer.from("GET /relative HTTP/1.1\r\nHost: a\r\n\r\n"),
      status: 400,
      detail: "this is a proxy: the request-target must be an absolute URI",
    },
    {
      bytes: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
      status: 400,
      detail: "the client sent a TLS handshake",
    },
    {
      bytes: Buffer.from(`GET http://127.0.0.1:${p}/ HTTP/1.1\r\nHost : a\r\n\r\n`),
      status: 400,
      detail: "whitespace between a field name and its colon",
    },
    { bytes: Buffer.from(`TRACE http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\n\r\n`), status: 405, detail: "TRACE is refused" },
    {
      bytes: Buffer.from(`GET ftp://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\n\r\n`),
      status: 501,
      detail: 'the URI scheme "ftp" is not supported',
    },
    {
      bytes: Buffer.from(`GET http://127.0.0.1:${p}/ HTTP/3.0\r\nHost: a\r\n\r\n`),
      status: 505,
      detail: "HTTP version HTTP/3.0 is not supported",
    },
    {
      bytes: Buffer.from(`POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`),
      status: 400,
      detail: "both Transfer-Encoding and Content-Length",
    },
  ]
}

export const garbageHead = async (env: Env, signal: AbortSignal): Promise<void> => {
  const cases = garbage(env)
  const g = env.rng.pick(cases)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(g.bytes)
    await expectError(c, g.status, g.detail)
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/**
 * Oversized heads: a head over maxHeadBytes (64 KiB) is 431, a target over maxRequestLine (8 KiB) 414. The
 * client stops writing once it has sent the deciding byte and a little more (the proxy answers and closes
 * then; bytes it never reads would turn its close into a reset).
 */
export const oversizedHead = async (env: Env, signal: AbortSignal): Promise<void> => {
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    if (env.rng.chance(0.5)) {
      const line = `GET http://127.0.0.1:${env.ports.good}/data HTTP/1.1\r\nHost: a\r\n`
      const pad = `X-Pad: ${"p".repeat(990)}\r\n`
      let bytes = line
      while (bytes.length <= 65 * 1024) bytes += pad
      c.write(bytes)
      await expectError(c, 431, "the request head is larger than 65536 bytes")
    } else {
      c.write(`GET http://127.0.0.1:${env.ports.good}/${"t".repeat(8300)} HTTP/1.1\r\n`)
      await expectError(c, 414, "the request-target is longer than")
    }
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** A kept-alive client that goes quiet: the proxy closes it, silently, once keepAliveTimeout has passed (not before). */
export const idleKeepAlive = async (env: Env, signal: AbortSignal): Promise<void> => {
  const o = env.rng.int(0, POOL_SIZE - 1)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(getHead(env, `/data?o=${o}&n=100`))
    const h = (await c.finalHead()).head
    if (h.status !== 200) throw new Unexpected(`status ${h.status}`)
    c.checkVia(h)
    await expectBody(c, env, responseFraming("GET", h), o, 100)
    const answered = performance.now()
    env.stage.now = "idle, waiting for the keep-alive timeout"
    await c.closed("an idle keep-alive period")
    const idle = performance.now() - answered
    // Too early is a lost connection: excused only if a worker was being ended then.
    if (idle < KEEP_ALIVE_TIMEOUT_MS - 500)
      throw new Lost(`an idle client closed after ${Math.round(idle)} ms, keepAliveTimeout is ${KEEP_ALIVE_TIMEOUT_MS}`)
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}
