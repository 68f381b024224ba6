/**
 * Operations whose right answer is an error or depends on a fault: misbehaving origins (origins/bad.ts),
 * authentication (missing, wrong, and a user who comes and goes with the users file), denied destinations
 * (always, and per configuration across reloads), a refused port, and names that the DNS server may be
 * refusing to answer.
 */
import { CONFIGS, PASSWORDS, basic } from "../env/Files.ts"
import { STRAY } from "../origins/bad.ts"
import { Corrupted, Unexpected } from "../report/Ledger.ts"
import { POOL_SIZE, StreamCheck } from "../rng.ts"
import { field, head, responseFraming } from "../wire/http1.ts"
import { Conn, type Env, expectBody, expectError, sleep } from "./Client.ts"
import { connectHead, runStreams } from "./tunnels.ts"

const get = (authority: string, path: string, auth: string | undefined, close = true): Buffer =>
  head(`GET http://${authority}${path} HTTP/1.1`, [
    ["Host", authority],
    ...(auth === undefined ? [] : ([["Proxy-Authorization", auth]] as const)),
    ...(close ? ([["Connection", "close"]] as const) : []),
  ])

/** A GET that must succeed: 200 and the exact body. */
const expectData = async (env: Env, c: Conn, o: number, n: number): Promise<void> => {
  const h = (await c.finalHead()).head
  if (h.status !== 200) {
    const detail = h.status >= 400 ? await expectError(c, h.status, "", h).catch(() => "?") : ""
    throw new Unexpected(`status ${h.status} ${h.reason} (${detail}), expected 200`)
  }
  c.checkVia(h)
  await expectBody(c, env, responseFraming("GET", h), o, n)
  env.ledger.requests++
}

export const originResetBefore = async (env: Env, signal: AbortSignal): Promise<void> => {
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(get(`127.0.0.1:${env.ports.bad}`, "/reset-before", env.alice))
    await expectError(c, 502, /^the origin (connection failed|closed the connection without a response)/)
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** Head and k bytes, then a reset: a prefix of at most k bytes, then the cut (or a 502 if the reset won the race). */
export const originResetMid = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(100_000, 2_000_000)
  const k = rng.int(0, 30_000)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(get(`127.0.0.1:${env.ports.bad}`, `/reset-mid?o=${o}&n=${n}&k=${k}`, env.alice))
    const h = (await c.finalHead()).head
    if (h.status === 502) {
      await expectError(c, 502, "the origin connection failed", h)
    } else {
      if (h.status !== 200) throw new Unexpected(`status ${h.status}`)
      c.checkVia(h)
      const check = new StreamCheck(env.pool, o, n)
      await c.r.rest(check.feed)
      if (check.mismatchAt !== undefined) throw new Corrupted(`byte ${check.mismatchAt} of a cut body differs`)
      if (check.received > k) throw new Corrupted(`${check.received} bytes of a body the origin cut after ${k}`)
      env.ledger.bytesVerified += check.received
    }
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** An origin that never answers: 504 once idleTimeout passes. */
export const originStallHead = async (env: Env, signal: AbortSignal): Promise<void> => {
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(get(`127.0.0.1:${env.ports.bad}`, "/stall-head", env.alice))
    await expectError(c, 504, "the origin did not respond in time")
    const least = Math.min(CONFIGS.a.idleTimeoutMs, CONFIGS.b.idleTimeoutMs)
    if (performance.now() - c.opened < least - 200)
      throw new Unexpected(`504 after ${Math.round(performance.now() - c.opened)} ms, before idleTimeout`)
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** An origin that stops mid-body: exactly the k bytes it sent, then the cut after idleTimeout. */
export const originStallMid = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(50_000, 500_000)
  const k = rng.int(0, 16_000)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(get(`127.0.0.1:${env.ports.bad}`, `/stall-mid?o=${o}&n=${n}&k=${k}`, env.alice))
    const h = (await c.finalHead()).head
    if (h.status !== 200) throw new Unexpected(`status ${h.status}`)
    c.checkVia(h)
    const check = new StreamCheck(env.pool, o, n)
    await c.r.rest(check.feed)
    if (check.mismatchAt !== undefined) throw new Corrupted(`byte ${check.mismatchAt} of a stalled body differs`)
    if (check.received !== k) throw new Unexpected(`${check.received} bytes of a body stalled after ${k}`)
    env.ledger.bytesVerified += k
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** Stray bytes after a response: the client gets exactly the body; the next request gets a clean connection. */
export const originStray = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    for (let i = 0; i < 2; i++) {
      const o = rng.int(0, POOL_SIZE - 1)
      const n = rng.int(0, 20_000)
      c.write(get(`127.0.0.1:${env.ports.bad}`, `/stray?o=${o}&n=${n}`, env.alice, i === 1))
      await expectData(env, c, o, n)
    }
    await c.closed("the last answer")
    if (c.r.buffered > 0 && (await c.r.exact(c.r.buffered)).toString().includes(STRAY.trim()))
      throw new Corrupted("stray origin bytes reached the client")
  } finally {
    c.destroy()
  }
}

/** The flaky origin closes every reused connection: each GET must still get its 200 (the proxy's retry). */
export const originCloseOnReuse = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    for (let i = 0; i < 3; i++) {
      const o = rng.int(0, POOL_SIZE - 1)
      const n = rng.int(0, 50_000)
      c.write(get(`127.0.0.1:${env.ports.flaky}`, `/data?o=${o}&n=${n}`, env.alice, i === 2))
      await expectData(env, c, o, n)
      await sleep(rng.int(0, 300))
    }
    await c.closed("the last answer")
  } finally {
    c.destroy()
  }
}

/** No credentials: 407, the connection kept; the retry with credentials on it gets the data. */
export const unauthenticated = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(0, 20_000)
  const c = await Conn.open(env, "127.0.0.2", signal)
  try {
    const connect = rng.chance(0.3)
    c.write(
      connect
        ? connectHead(env, `127.0.0.1:${env.ports.stream}`, null)
        : get(`127.0.0.1:${env.ports.good}`, `/data?o=${o}&n=${n}`, undefined, false),
    )
    const h = (await c.finalHead()).head
    if (field(h.fields, "proxy-authenticate") !== 'Basic realm="hctunnel", charset="UTF-8"')
      throw new Unexpected(
        `${connect ? "CONNECT" : "GET"} without credentials: ${h.status} ${h.reason}, Proxy-Authenticate ${field(h.fields, "proxy-authenticate")}`,
      )
    await expectError(c, 407, "proxy authentication required", h)
    if (field(h.fields, "connection") !== undefined) throw new Unexpected("a 407 to a request without a body closed the connection")
    env.ledger.requests++
    c.write(get(`127.0.0.1:${env.ports.good}`, `/data?o=${o}&n=${n}`, env.alice, true))
    await expectData(env, c, o, n)
    await c.closed("the last answer")
  } finally {
    c.destroy()
  }
}

/**
 * A wrong password: 407. A third of them from one address, which the rate limit soon refuses outright; the
 * rest spread over ten addresses that stay under it, so bcrypt runs now and then all along (the verifier
 * thread then stays up, instead of stopping after 30 s idle and starting again, which moves the RSS by
 * ~20 MB each time and would blur the slope).
 */
export const wrongPassword = async (env: Env, signal: AbortSignal): Promise<void> => {
  const from = env.rng.chance(1 / 3) ? "127.0.0.3" : `127.0.0.${30 + env.rng.int(0, 9)}`
  const c = await Conn.open(env, from, signal)
  try {
    c.write(get(`127.0.0.1:${env.ports.good}`, "/data?o=0&n=10", basic("alice", "not-the-password")))
    await expectError(c, 407, /^(wrong user name or password|too many failed attempts)/)
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** carol exists only while the users file has her: 200 or 407, as the file said when the request was judged. */
export const carol = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(0, 10_000)
  // Ten addresses, so that her failures while she is absent never reach the rate limit (10 a minute per address).
  const c = await Conn.open(env, `127.0.0.${10 + rng.int(0, 9)}`, signal)
  try {
    const sent = performance.now()
    c.write(get(`127.0.0.1:${env.ports.good}`, `/data?o=${o}&n=${n}`, basic("carol", PASSWORDS.carol)))
    const h = (await c.finalHead()).head
    const states = env.ledger.carolStates(sent, performance.now())
    if (h.status === 200 && states.has(true)) {
      c.checkVia(h)
      await expectBody(c, env, responseFraming("GET", h), o, n)
      env.ledger.requests++
    } else if (h.status === 407 && states.has(false)) {
      await expectError(c, 407, /^wrong user name or password/, h)
      env.ledger.requests++
    } else
      throw new Unexpected(
        `carol got ${h.status} while the users file said ${[...states].map((p) => (p ? "present" : "absent")).join(" or ")}`,
      )
  } finally {
    c.destroy()
  }
}

/** Destinations denied by both configurations, by one of them, and the proxy itself; by GET or CONNECT. */
export const denied = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const which = rng.pick(["all", "a", "b", "self"] as const)
  const port = which === "all" ? env.ports.denyAll : which === "a" ? env.ports.denyA : which === "b" ? env.ports.denyB : env.proxyPort
  const authority = `127.0.0.1:${port}`
  const tunnel = which === "self" || rng.chance(0.3)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(tunnel ? connectHead(env, authority) : get(authority, "/data?o=5&n=100", env.alice))
    const h = (await c.finalHead()).head
    const configs = c.configs()
    const mustDeny = which === "all" || which === "self" || (configs.size === 1 && configs.has(which))
    const mayDeny = mustDeny || configs.has(which as "a" | "b")
    if (h.status === 403 && mayDeny) {
      await expectError(c, 403, `destination ${authority} denied`, h)
    } else if (h.status === 200 && !mustDeny && tunnel) {
      if (h.raw.toString("latin1") !== "HTTP/1.1 200 Connection established")
        throw new Unexpected(`CONNECT answered ${h.raw.toString("latin1")}`)
    } else if (h.status === 200 && !mustDeny) {
      c.checkVia(h)
      await expectBody(c, env, responseFraming("GET", h), 5, 100)
    } else
      throw new Unexpected(
        `${tunnel ? "CONNECT" : "GET"} to a destination denied under ${which} got ${h.status}, Via ${field(h.fields, "via")} (configurations ${[...configs].join("/")})`,
      )
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/** A port nothing listens on: 502 connection refused. */
export const refusedPort = async (env: Env, signal: AbortSignal): Promise<void> => {
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    c.write(get(`127.0.0.1:${env.ports.closed}`, "/", env.alice))
    await expectError(c, 502, `connection refused by 127.0.0.1:${env.ports.closed}`)
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}

/**
 * Names: a 1 s-TTL name (asked again and again) must work except while the DNS server is silent (then 502
 * could not resolve); a name the server does not know is always 502; a tunnel to the long-TTL name.
 */
export const names = async (env: Env, signal: AbortSignal): Promise<void> => {
  const rng = env.rng
  const kind = rng.weighted([
    [5, "short"],
    [2, "unknown"],
    [2, "tunnel"],
  ] as const)
  const name = kind === "unknown" ? `nx-${env.nextId()}.soak.test` : kind === "tunnel" ? env.names.cached : rng.pick(env.names.shortTtl)
  const port = kind === "tunnel" ? env.ports.stream : env.ports.good
  const o = rng.int(0, POOL_SIZE - 1)
  const n = rng.int(0, 30_000)
  const c = await Conn.open(env, "127.0.0.1", signal)
  try {
    const start = performance.now()
    if (kind === "tunnel") {
      c.write(connectHead(env, `${name}:${port}`))
      const h = (await c.finalHead()).head
      if (h.status === 502 && env.ledger.mayMissDns(start, performance.now())) {
        await expectError(c, 502, `could not resolve host ${name}`, h)
        env.ledger.dnsMisses++
      } else {
        if (h.raw.toString("latin1") !== "HTTP/1.1 200 Connection established")
          throw new Unexpected(`CONNECT ${name} answered ${h.raw.toString("latin1")}`)
        await runStreams(env, c, env.nextId(), { o, n }, { o: (o + 7) % POOL_SIZE, n })
      }
      env.ledger.requests++
      return
    }
    c.write(get(`${name}:${port}`, `/data?o=${o}&n=${n}`, env.alice))
    const h = (await c.finalHead()).head
    if (h.status === 502 && (kind === "unknown" || env.ledger.mayMissDns(start, performance.now()))) {
      await expectError(c, 502, `could not resolve host ${name}`, h)
      if (kind !== "unknown") env.ledger.dnsMisses++
    } else if (kind === "short" && h.status === 200) {
      c.checkVia(h)
      await expectBody(c, env, responseFraming("GET", h), o, n)
    } else throw new Unexpected(`${name}: ${h.status} ${h.reason}`)
    env.ledger.requests++
  } finally {
    c.destroy()
  }
}
