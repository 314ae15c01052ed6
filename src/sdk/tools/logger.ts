// SPDX-License-Identifier: Apache-2.0
/**
 * The logger interface every library module uses, and its pino-backed implementation.
 *
 * Libraries never write to the console; they receive a {@link Logger} (usually `ctx.log`) and
 * log structured fields (`connId`, `element`, ...). Only `src/cmd` chooses where logs go.
 */
import { pino } from "pino";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** A log method: `(msg)` or `(fields, msg)`, as pino's. */
export interface LogFn {
  (fields: Record<string, unknown>, msg?: string): void;
  (msg: string): void;
}

/** The structured logger elements and processes log to (pino-compatible). */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: LogLevel): boolean;
  level: string;
}

export interface LoggerOptions {
  /** @default "info" */
  level?: LogLevel;
  /** Process/role name, added to every line as `name`. */
  name?: string;
  /** File descriptor to write JSON lines to. @default 2 (stderr) */
  fd?: number;
}

/** Parses NSM_LOG_LEVEL values (upstream uses logrus names: TRACE, DEBUG, INFO, WARN/WARNING, ERROR, FATAL). */
export function parseLogLevel(value: string): LogLevel | undefined {
  const v = value.trim().toLowerCase();
  if (v === "warning") return "warn";
  if (v === "panic") return "fatal";
  return (["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const).find((l) => l === v);
}

/** Creates a JSON-lines logger (one object per line: time, level, name, msg and fields). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const p = pino(
    {
      level: options.level ?? "info",
      name: options.name,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
  return p as unknown as Logger;
}

const noop = () => {};

/** A logger that drops everything; the default for contexts built without one. */
export const silentLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
  isLevelEnabled: () => false,
  level: "silent",
};
