/**
 * The `hctunnel` command: flags (generated from the settings table in settings.ts), configuration
 * loading, logging set-up, and the supervisor. Everything a person reads on the terminal at start-up
 * and at exit is written here, in the words of wording.ts; the proxy itself runs in the worker threads
 * (src/runtime/worker.ts).
 *
 * Exit codes: 0 after a shutdown on SIGINT/SIGTERM in which every worker reported drained (connections
 * still open at the end of the grace period are cut, and that is still a clean shutdown), and for
 * --help/--version; 1 for a configuration or listen error, or when workers did not report drained within
 * the grace period plus a margin.
 */
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { ChildProcessSpawner } from "effect/process"
import { CliConfig, CliError, Command, Flag, GlobalFlag } from "effect/cli"
import pkg from "../../package.json" with { type: "json" }
import type { StatsSnapshot } from "../runtime/observe/Stats.ts"
import { launch } from "../lib/launch.ts"
import { checkSafety, type HctunnelConfig, loadConfig } from "./config.ts"
import { checkAuthFile, readConfigFile, readSecretFile } from "./files.ts"
import { CONFIG_FLAG, settings } from "./settings.ts"
import { formatLine, type LogSettings, writeLine } from "./logging.ts"
import { describeDrainTimeout, describeListenFailure, formatStatsText, lifecycleLog, startupLine, statsFigures } from "./wording.ts"

/** package.json's version, inlined into dist/main.js by the build (no file to find at run time). */
export const packageVersion = (): string => (typeof pkg.version === "string" ? pkg.version : "unknown")

// ---------------------------------------------------------------------------------------------
// Flags: one per setting, plus --config. All are read as strings so that config.ts gives every
// message (a bad value says where it came from, what is wrong and what is allowed).
// ---------------------------------------------------------------------------------------------

type AnyFlag = Flag.Flag<Option.Option<string>> | Flag.Flag<ReadonlyArray<string>>

const describe = (description: string, defaultText: string, env: string): string => `${description}. Default: ${defaultText}. Env: ${env}`

const settingFlags: Record<string, AnyFlag> = {}
for (const s of settings) {
  let flag = Flag.String(s.flag).pipe(Flag.withDescription(describe(s.description, s.defaultText, s.env)), Flag.withMetavar(s.metavar))
  if (s.alias !== undefined) flag = flag.pipe(Flag.withAlias(s.alias))
  settingFlags[s.key] = s.repeated === true ? flag.pipe(Flag.atLeast(0)) : flag.pipe(Flag.optional)
}
const configFlag = Flag.String(CONFIG_FLAG.flag).pipe(
  Flag.withAlias(CONFIG_FLAG.alias),
  Flag.withMetavar(CONFIG_FLAG.metavar),
  Flag.withDescription(`${CONFIG_FLAG.description}. Env: ${CONFIG_FLAG.env}`),
  Flag.optional,
)

/** The flags the user actually gave, by setting key (the top configuration layer). */
const givenFlags = (input: Readonly<Record<string, unknown>>): Record<string, string | ReadonlyArray<string>> => {
  const out: Record<string, string | ReadonlyArray<string>> = {}
  for (const s of settings) {
    const v = input[s.key]
    if (Array.isArray(v)) {
      if (v.length > 0) out[s.key] = v as ReadonlyArray<string>
    } else if (Option.isOption(v) && Option.isSome(v)) {
      out[s.key] = v.value as string
    }
  }
  return out
}

const printStats = (log: LogSettings) => (s: StatsSnapshot) =>
  Effect.sync(() => {
    if (log.format === "json") {
      process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: "info", message: "stats", ...statsFigures(s) }) + "\n")
    } else {
      process.stdout.write(formatLine("text", "info", formatStatsText(s)))
    }
  })

/**
 * The command's proxy: the library's `launch` with the signal handlers, the start-up line and the log
 * lines. `config` is already judged by the safety rule; `reload` builds the configuration again from the
 * same sources (SIGHUP), not yet judged: launch applies it as a whole or refuses it (planReload).
 */
export const runProxy = (
  config: HctunnelConfig,
  version: string,
  reload?: () => Effect.Effect<HctunnelConfig, { readonly message: string }>,
) => {
  // The main thread's own lines (lifecycle, stats, reloads) follow the log format and level in force, as the
  // workers' lines do: launch updates this object with each reload it applies.
  const log: LogSettings = { format: config.logFormat, level: config.logLevel }
  return launch(config, {
    signals: true,
    log,
    onReady: (addresses, workers, admin) =>
      Effect.sync(() => {
        const line = startupLine(version, addresses, workers, admin)
        // The one line everybody reads: plain in text mode, a log object in JSON mode.
        if (log.format === "json") writeLine("json", "info", line)
        else process.stdout.write(`${line}\n`)
      }),
    printStats: printStats(log),
    ...lifecycleLog,
    ...(reload === undefined ? {} : { reload }),
  })
}

export const hctunnel = Command.make("hctunnel", { config: configFlag, ...settingFlags }, (input) =>
  Effect.gen(function* () {
    const env = process.env
    const configPath = Option.getOrUndefined(input.config as Option.Option<string>) ?? (env[CONFIG_FLAG.env] || undefined)
    const flags = givenFlags(input)
    // The configuration from its sources; SIGHUP reads them again (the config file: flags and environment are fixed).
    const load = Effect.suspend(() =>
      Effect.gen(function* () {
        const file = configPath === undefined ? undefined : yield* readConfigFile(configPath)
        return yield* loadConfig({ flags, env, file, readFile: readSecretFile })
      }),
    )
    const checkUsers = (config: HctunnelConfig) => (config.authFile === undefined ? Effect.void : checkAuthFile(config.authFile))
    // At start-up the safety rule judges it here; on SIGHUP, planReload judges the result of the reload.
    const config = yield* load.pipe(Effect.flatMap(checkSafety), Effect.tap(checkUsers))
    yield* runProxy(config, packageVersion(), () => load.pipe(Effect.tap(checkUsers)))
  }),
).pipe(
  Command.withDescription(
    "An HTTP/1.1 forward proxy: plain HTTP requests in absolute form (GET http://host/path) and CONNECT tunnels (HTTPS, WebSocket, any TCP). " +
      "Settings come from flags, then HCTUNNEL_* environment variables, then the --config JSON file, then the defaults. " +
      "Durations take a unit (250ms, 10s, 5m, 1h; a bare number is milliseconds); sizes take bytes or KiB/MiB. " +
      "Signals: SIGINT/SIGTERM drain and stop (twice: stop now), SIGHUP reloads the configuration (the --config file, applied whole or not at all; new requests use it), SIGUSR1 prints one stats line.",
  ),
  Command.withExamples([
    {
      command: "hctunnel",
      description: "Listen on 127.0.0.1:8888 for local clients; then: curl -x http://127.0.0.1:8888 https://example.com",
    },
    {
      command: "hctunnel --listen 0.0.0.0:3128 --allow 10.0.0.0/8",
      description: "Serve a private network (a non-loopback listener needs --allow)",
    },
    {
      command: "htpasswd -B -c users.htpasswd alice && hctunnel --listen 0.0.0.0:3128 --auth-file users.htpasswd",
      description: "Serve a team with proxy authentication (curl --proxy-user alice -x http://HOST:3128 ...)",
    },
    { command: "hctunnel --port 9000 --workers 4 --log-format json", description: "Another port, 4 threads, JSON logs" },
  ]),
)

/**
 * What `Command.run` asks for. effect/cli reads files (Flag.file, Prompt.file) and spawns processes only for
 * flag kinds and prompts hctunnel does not use: its flags are strings and it reads --config itself. So the
 * file system and the process spawner are stand-ins that fail, and Node's (NodeServices.layer) are not
 * loaded: they pull node:child_process, node:crypto and Effect's streams into the main thread (~2 MB of RSS).
 */
const cliServices = Layer.mergeAll(
  NodeStdio.layer,
  NodePath.layer,
  NodeTerminal.layer,
  FileSystem.layerNoop({}),
  Layer.succeed(ChildProcessSpawner.ChildProcessSpawner)(ChildProcessSpawner.make(() => Effect.die("hctunnel starts no child process"))),
)

/** A failure already told on stderr, in a sentence (`tell`): exit 1, nothing more to print. */
class Told extends Data.TaggedError("Told")<Record<never, never>> {}

const tell = (text: string): Effect.Effect<never, Told> =>
  Effect.sync(() => process.stderr.write(`hctunnel: ${text}\n`)).pipe(Effect.andThen(Effect.fail(new Told())))

/** Prints what went wrong, unless already told; returns the exit code. */
const report = (cause: Cause.Cause<unknown>): number => {
  if (Cause.hasInterruptsOnly(cause)) return 130
  const error = Cause.squash(cause)
  if (error instanceof Told) {
    // Already said by `tell`.
  } else if (CliError.isCliError(error)) {
    // Already shown by Command.run (the help and the parse error).
  } else if (process.execArgv.includes("--enable-source-maps")) {
    // A developer asked for stacks in the TypeScript sources.
    process.stderr.write(`hctunnel: unexpected error: ${Cause.pretty(cause)}\n`)
  } else {
    // A user never sees a (minified) stack: the message, and how to get the stack.
    const message = error instanceof Error ? error.message : String(error)
    process.stderr.write(
      `hctunnel: unexpected error: ${message}\n(a bug in hctunnel: please report it; \`node --enable-source-maps\` in a checkout shows where it happened)\n`,
    )
  }
  return 1
}

/** Like NodeRuntime.runMain, but SIGINT/SIGTERM are the supervisor's (a drain, then exit 0), not an interrupt. */
const runMain = Runtime.makeRunMain(({ fiber }) => {
  fiber.addObserver((exit) => {
    const code = Exit.isSuccess(exit) ? 0 : report(exit.cause)
    process.exitCode = code
    // Worker threads are closed by now; exit even if some handle lingers.
    setImmediate(() => process.exit(code))
  })
})

hctunnel.pipe(
  Command.run({ version: packageVersion() }),
  // The failures a person can act on, each in its words.
  Effect.catchTags({
    ConfigError: (e) => tell(`${e.message}\n(see hctunnel --help)`),
    StartupError: (e) => tell(e.message),
    ListenError: (e) => tell(describeListenFailure(e)),
    DrainTimeout: (e) => tell(describeDrainTimeout(e)),
  }),
  // Our --log-level is a setting like the others (with an env var and a config key), so Effect's global
  // --log-level (which only affects the main thread) is left out of the built-in flags.
  Effect.provide(CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Completions] })),
  Effect.provide(cliServices),
  (eff) => runMain(eff, { disableErrorReporting: true }),
)
