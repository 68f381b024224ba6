/**
 * The lanes of load: each runs one operation after another until the soak stops, drawing what to do from
 * its own seeded Rng. Ten at once: two of bulk tunnels, four of HTTP sessions (one mixed with small
 * tunnels), two of misbehaving clients and fault-dependent requests, two of slow operations.
 */
import type { Ledger } from "../report/Ledger.ts"
import type { Rng } from "../rng.ts"
import type { Env } from "./Client.ts"
import * as faulty from "./faulty.ts"
import { httpSession } from "./http.ts"
import * as mis from "./misbehaving.ts"
import { abortMidTunnel, tunnel, upgrade } from "./tunnels.ts"

type Op = readonly [string, (env: Env, signal: AbortSignal) => Promise<void>]

/** Misbehaving clients and origins, authentication, destinations, names; by weight. */
const MISC: ReadonlyArray<readonly [number, Op]> = [
  [4, ["abort mid-head", mis.abortMidHead]],
  [4, ["abort mid-body", mis.abortMidBody]],
  [3, ["paused reader", mis.neverReads]],
  [5, ["half-close after request", mis.halfCloseAfterRequest]],
  [5, ["garbage head", mis.garbageHead]],
  [3, ["oversized head", mis.oversizedHead]],
  [4, ["origin reset before head", faulty.originResetBefore]],
  [4, ["origin reset mid-body", faulty.originResetMid]],
  [4, ["origin stray bytes", faulty.originStray]],
  [5, ["origin closes on reuse", faulty.originCloseOnReuse]],
  [6, ["unauthenticated", faulty.unauthenticated]],
  [3, ["wrong password", faulty.wrongPassword]],
  [4, ["carol", faulty.carol]],
  [6, ["denied destination", faulty.denied]],
  [3, ["refused port", faulty.refusedPort]],
  [8, ["names", faulty.names]],
  [5, ["upgrade", upgrade]],
  [3, ["abort mid-tunnel", abortMidTunnel]],
]

/** Operations that wait for a timeout of the proxy (6-30 s each). */
const SLOW: ReadonlyArray<readonly [number, Op]> = [
  [2, ["slowloris", mis.slowloris]],
  [2, ["origin stalls before head", faulty.originStallHead]],
  [2, ["origin stalls mid-body", faulty.originStallMid]],
  [1, ["idle keep-alive client", mis.idleKeepAlive]],
]

const bulk: Op = ["bulk tunnel", (env, signal) => tunnel(env, signal, true)]
const small: Op = ["small tunnel", (env, signal) => tunnel(env, signal, false)]
const session: Op = ["http session", httpSession]

/** Lane number (its Rng stream), the timeout of each of its operations, and how it picks the next. */
const LANES: ReadonlyArray<readonly [number, number, (rng: Rng) => Op]> = [
  [1, 120_000, () => bulk],
  [2, 120_000, () => bulk],
  [3, 60_000, (rng) => (rng.chance(0.8) ? small : session)],
  [4, 60_000, () => session],
  [5, 60_000, () => session],
  [6, 60_000, () => session],
  [7, 40_000, (rng) => rng.weighted(MISC)],
  [8, 40_000, (rng) => rng.weighted(MISC)],
  [9, 60_000, (rng) => rng.weighted(SLOW)],
  [10, 60_000, (rng) => rng.weighted(SLOW)],
]

/** Starts every lane; each promise resolves once its lane saw `stopping()` and finished its operation. */
export const startLanes = (ledger: Ledger, envFor: (stream: number) => Env, stopping: () => boolean): Array<Promise<void>> =>
  LANES.map(async ([stream, timeoutMs, pick]) => {
    const env = envFor(stream)
    while (!stopping()) {
      const [kind, run] = pick(env.rng)
      env.stage.now = ""
      await ledger.op(
        kind,
        timeoutMs,
        (signal) => run(env, signal),
        () => env.stage.now,
      )
    }
  })
