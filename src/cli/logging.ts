/**
 * The main thread's log lines, in the same two formats as the workers' diagnostics (AccessLog):
 * text `LEVEL message` and JSON `{"time", "level", "message"}`, one line each, on stdout.
 * Effect's `Effect.log*` calls go through `loggerLayer`, whose logger reads the format and the level from
 * a `LogSettings` at every line: a reload that changes them changes the main thread's lines at once, like
 * the workers' (References.MinimumLogLevel lets everything through to it).
 */
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import { isGreaterThanOrEqualTo, type LogLevel as EffectLogLevel } from "effect/LogLevel"
import type { LogFormat, LogLevel } from "./settings.ts"

/** What the main thread's lines look like now: the start-up configuration's, then each reload's. */
export interface LogSettings {
  format: LogFormat
  level: LogLevel
}

const toEffectLevel: Readonly<Record<LogLevel, EffectLogLevel>> = {
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
  none: "None",
}

const levelName = (l: EffectLogLevel): string =>
  l === "Warn" ? "warn" : l === "Fatal" ? "error" : l === "Trace" || l === "All" ? "debug" : l.toLowerCase()

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((p) => (typeof p === "string" ? p : p instanceof Error ? p.message : JSON.stringify(p))).join(" ")
}

/** One formatted line (with the trailing newline) for a main-thread message. */
export const formatLine = (format: LogFormat, level: string, text: string, time = new Date()): string =>
  format === "json"
    ? JSON.stringify({ time: time.toISOString(), level, message: text }) + "\n"
    : `${level.toUpperCase()} ${text.replace(/[\x00-\x09\x0b-\x1f\x7f]/g, "?")}\n`

export const writeLine = (format: LogFormat, level: string, text: string): void => {
  try {
    process.stdout.write(formatLine(format, level, text))
  } catch {
    // stdout closed: nothing to do
  }
}

/** Writes each message at or above `settings.level` in `settings.format`, as they are when it is written. */
export const makeLogger = (settings: LogSettings) =>
  Logger.make<unknown, void>((o) => {
    const min = toEffectLevel[settings.level]
    if (min === "None" || !isGreaterThanOrEqualTo(o.logLevel, min)) return
    writeLine(settings.format, levelName(o.logLevel), messageText(o.message))
  })

/** Replaces Effect's default logger; the level is filtered by the logger, from `settings`. */
export const loggerLayer = (settings: LogSettings) =>
  Layer.mergeAll(Logger.layer([makeLogger(settings)]), Layer.succeed(References.MinimumLogLevel, "All"))
