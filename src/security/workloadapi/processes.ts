// SPDX-License-Identifier: Apache-2.0
/**
 * The process identity file: which processes a runtime started, and which SPIFFE ID each one
 * (and every process it starts) is.
 *
 * The runtime that spawns workloads (the local runtime, a test or bench harness) writes it,
 * root-only (mode 0600), after every change; the embedded Workload API server resolves its
 * callers from it, and the forwarder resolves the owner of a `/proc/<pid>/ns/net` from it, so
 * both answer "who is pid N" the same way, from facts only root can write:
 *
 * ```json
 * { "version": 1, "trustDomain": "nsm.local",
 *   "processes": [{ "pid": 4242, "start": 123456, "spiffeId": "spiffe://nsm.local/ns/ns-a/pod/web-0" }] }
 * ```
 *
 * `start` is the process's start time (`/proc/<pid>/stat` field 22, clock ticks since boot), so a
 * recycled pid never inherits an identity. A pid resolves to the entry of itself or of its
 * nearest listed ancestor ({@link resolveByProcessTree}); nothing the process says about itself
 * (environment, arguments) is looked at.
 */
import { closeSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { invalidArgument } from "../../sdk/core/errors.js";
import { parseSpiffeId } from "../spiffeid.js";
import { resolveByProcessTree } from "./identity.js";
import type { ResolveIdentity } from "./server.js";

/** One process the runtime started and the identity it (and its descendants) get. */
export interface ProcessIdentity {
  readonly pid: number;
  /** Start time in clock ticks since boot (`/proc/<pid>/stat` field 22). */
  readonly start: number;
  readonly spiffeId: string;
}

/** The content of a process identity file. */
export interface ProcessIdentities {
  readonly version: 1;
  readonly trustDomain: string;
  readonly processes: readonly ProcessIdentity[];
}

/** The start time of `pid` (clock ticks since boot), or undefined if there is no such process. */
export function processStartTime(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    if (f[0] === "Z" || f[0] === "X") return undefined;
    const start = Number(f[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** The entry for a running process (its pid and current start time). */
export function processIdentity(pid: number, spiffeId: string): ProcessIdentity | undefined {
  const start = processStartTime(pid);
  return start === undefined ? undefined : { pid, start, spiffeId };
}

function check(value: unknown, path: string): ProcessIdentities {
  const v = value as Partial<ProcessIdentities> | undefined;
  if (v?.version !== 1 || typeof v.trustDomain !== "string" || !Array.isArray(v.processes)) {
    throw invalidArgument(`${path} is not a process identity file (version 1)`);
  }
  for (const p of v.processes) {
    if (!Number.isInteger(p?.pid) || !Number.isInteger(p?.start) || typeof p?.spiffeId !== "string") {
      throw invalidArgument(`${path}: bad entry ${JSON.stringify(p)}`);
    }
    if (parseSpiffeId(p.spiffeId).trustDomain !== v.trustDomain) {
      throw invalidArgument(`${path}: ${p.spiffeId} is not in the trust domain ${v.trustDomain}`);
    }
  }
  return v as ProcessIdentities;
}

/** Writes the file atomically (temp file + rename), readable by its owner only. */
export function writeProcessIdentities(path: string, value: ProcessIdentities): void {
  check(value, path);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, `${JSON.stringify(value)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Reads the file; undefined when it does not exist. */
export function readProcessIdentities(path: string): ProcessIdentities | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return check(JSON.parse(text), path);
}

export interface ProcessIdentityResolverOptions {
  /**
   * How long to wait for an unknown, running process to appear in the file (a runtime writes the
   * file just after spawning, and the process may ask first). @default 0
   */
  readonly waitMs?: number;
  /** How often to look again while waiting. @default 50 */
  readonly pollMs?: number;
}

/**
 * pid → SPIFFE ID from the process identity file at `path` (re-read when it changes): the entry
 * of the process itself or of its nearest listed ancestor, whose start time must match.
 */
export function processIdentityResolver(
  path: string,
  options: Readonly<ProcessIdentityResolverOptions> = {},
): ResolveIdentity {
  let cached: { key: string; byPid: Map<number, ProcessIdentity> } | undefined;
  const table = (): Map<number, ProcessIdentity> => {
    let key: string;
    try {
      const st = statSync(path);
      key = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return new Map();
    }
    if (cached?.key !== key) {
      const file = readProcessIdentities(path);
      cached = { key, byPid: new Map((file?.processes ?? []).map((p) => [p.pid, p])) };
    }
    return cached.byPid;
  };
  const lookup = (pid: number): string | undefined => {
    const entry = table().get(pid);
    if (!entry) return undefined;
    return processStartTime(pid) === entry.start ? entry.spiffeId : undefined;
  };
  const byTree = resolveByProcessTree(lookup);
  const waitMs = options.waitMs ?? 0;
  const pollMs = options.pollMs ?? 50;
  return async (pid) => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const id = await byTree(pid);
      if (id !== undefined || Date.now() >= deadline || processStartTime(pid) === undefined) return id;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
}
