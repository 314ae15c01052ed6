// SPDX-License-Identifier: Apache-2.0
/**
 * A logger for tests that keeps every line (level, message, fields with the child bindings)
 * so that a test can assert what was logged.
 */
import type { LogFn, Logger, LogLevel } from "../core/logger.js";

export interface LogLine {
  readonly level: LogLevel;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

const order: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** A logger at `level` whose lines are appended to `lines`. */
export function recordingLogger(level: LogLevel = "trace"): Logger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (lvl: LogLevel): LogFn =>
      (a: Record<string, unknown> | string, msg?: string) => {
        if (order.indexOf(lvl) < order.indexOf(level)) return;
        if (typeof a === "string") lines.push({ level: lvl, msg: a, fields: { ...bindings } });
        else lines.push({ level: lvl, msg: msg ?? "", fields: { ...bindings, ...a } });
      };
    return {
      trace: at("trace"),
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
      child: (more) => make({ ...bindings, ...more }),
      isLevelEnabled: (lvl) => order.indexOf(lvl) >= order.indexOf(level),
      level,
    };
  };
  return Object.assign(make({}), { lines });
}
