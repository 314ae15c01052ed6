// SPDX-License-Identifier: Apache-2.0
/**
 * The logger interface every library module uses.
 *
 * Libraries never write to the console; they receive a {@link Logger} (usually `ctx.log`) and
 * log structured fields (`connId`, `element`, ...). Only `src/cmd` chooses where logs go; the
 * pino-backed implementation is `createLogger` in `../tools/logger.ts`.
 */

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface LogFn {
  (fields: Record<string, unknown>, msg?: string): void;
  (msg: string): void;
}

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
