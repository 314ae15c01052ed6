// SPDX-License-Identifier: Apache-2.0
/**
 * What planning needs from the machine: whether a command exists, randomness for pod names and
 * uids, and the clock. The planner takes a {@link Host} so it stays pure; {@link systemHost} is
 * the real one, tests pass their own.
 */
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export interface Host {
  /** True if `cmd` is an executable file (a path, or found in `path`, a PATH value). */
  commandExists(cmd: string, path: string): boolean;
  randomBytes(size: number): Uint8Array;
  /** Milliseconds since the epoch. */
  now(): number;
}

/** True if `cmd` is an executable file (absolute/relative path, or found in `path`). */
export function commandExists(cmd: string, path: string): boolean {
  const candidates = cmd.includes("/") ? [cmd] : path.split(delimiter).map((d) => join(d || ".", cmd));
  return candidates.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export const systemHost: Host = { commandExists, randomBytes, now: () => Date.now() };
