// SPDX-License-Identifier: Apache-2.0
/**
 * Typed reading of the upstream `NSM_*` environment variables.
 *
 * Every role reads its configuration through an {@link Env}; a bad value throws a
 * {@link ConfigError} that names the variable, so a process stops at start with one line
 * such as `NSM_CIDR_PREFIX="172.16.1.300/31": not a valid CIDR`.
 */
import type { LogLevel } from "../sdk/core/logger.js";
import { parseLogLevel } from "../sdk/tools/logger.js";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly variable: string,
    readonly value: string,
    reason: string,
  ) {
    super(`${variable}=${JSON.stringify(value)}: ${reason}`);
  }
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration ("750ms", "10m", "1h30m", "-1m") into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === "0") return 0;
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(t);
  if (!m) return undefined;
  let total = 0;
  for (const part of t.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g))
    total += Number(part[1]) * UNITS[part[2]!]!;
  return m[1] === "-" ? -total : total;
}

export class Env {
  constructor(private readonly vars: NodeJS.ProcessEnv) {}

  raw(name: string): string | undefined {
    const v = this.vars[name];
    return v === undefined || v === "" ? undefined : v;
  }

  string(name: string, def: string): string {
    return this.raw(name) ?? def;
  }

  required(name: string): string {
    const v = this.raw(name);
    if (v === undefined) throw new ConfigError(name, "", "is required");
    return v;
  }

  /** A value checked by `parse`, which returns the parsed value or throws an Error whose message is the reason. */
  parsed<T>(name: string, def: string, parse: (v: string) => T): T {
    const v = this.raw(name) ?? def;
    try {
      return parse(v);
    } catch (err) {
      throw new ConfigError(name, v, (err as Error).message.replace(/^\[\w+\] /, ""));
    }
  }

  /** Comma-separated list (empty entries dropped). */
  list(name: string, def = ""): string[] {
    return (this.raw(name) ?? def)
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (/^(1|t|true|yes|on)$/i.test(v)) return true;
    if (/^(0|f|false|no|off)$/i.test(v)) return false;
    throw new ConfigError(name, v, "expected true or false");
  }

  /** A Go duration in ms. */
  duration(name: string, def: string): number {
    const v = this.raw(name) ?? def;
    const ms = parseDuration(v);
    if (ms === undefined) throw new ConfigError(name, v, 'not a duration (examples: "750ms", "10m", "1h30m")');
    return ms;
  }

  int(name: string, def: number, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(name, v, `expected an integer from ${min} to ${max}`);
    return n;
  }

  logLevel(name = "NSM_LOG_LEVEL", def: LogLevel = "info"): LogLevel {
    const v = this.raw(name);
    if (v === undefined) return def;
    const l = parseLogLevel(v);
    if (!l) throw new ConfigError(name, v, "expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL");
    return l;
  }
}
