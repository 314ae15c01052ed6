// SPDX-License-Identifier: Apache-2.0
/**
 * The pino-backed implementation of the {@link Logger} interface (`../core/logger.ts`), and the
 * parser for NSM_LOG_LEVEL. Only `src/cmd` chooses where logs go.
 */
import { pino } from "pino";
import type { Logger, LogLevel } from "../core/logger.js";

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
