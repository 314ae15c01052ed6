// SPDX-License-Identifier: Apache-2.0
/**
 * Processes of the local runtime: started detached (own session) inside a network namespace
 * with `ip netns exec`, output appended to a log file, identified by pid *and* start time (so a
 * reused pid is never mistaken for ours), stopped by that pid only: SIGTERM, then SIGKILL.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";

/** A process identity: pid plus its start time in clock ticks since boot (`/proc/<pid>/stat` field 22). */
export interface ProcRef {
  readonly pid: number;
  readonly start: number;
}

function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may contain spaces and parentheses.
  const close = text.lastIndexOf(")");
  return close < 0 ? undefined : text.slice(close + 2).split(" ");
}

/** The start time of `pid`, or undefined if there is no such process. */
export function procStartTime(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? Number(f[19]) : undefined;
}

/** True while the very process `ref` runs (not a zombie, not a newer process with the same pid). */
export function isAlive(ref: ProcRef): boolean {
  if (!Number.isInteger(ref.pid) || ref.pid <= 0) return false;
  const f = statFields(ref.pid);
  if (!f) return false;
  if (f[0] === "Z" || f[0] === "X") return false;
  return Number(f[19]) === ref.start;
}

export interface SpawnOptions {
  /** Network namespace name (`ip netns exec`); omitted → the current namespace. */
  readonly netns?: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Appended to (created if needed). */
  readonly log: string;
  readonly cwd?: string;
}

export interface Spawned extends ProcRef {
  /** Resolves with the exit code (or 128 + signal number) when the process ends, while this CLI runs. */
  readonly exited: Promise<number>;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Starts a process detached from this CLI (it outlives it). */
export function spawnDetached(options: SpawnOptions): Spawned {
  const argv = options.netns ? ["ip", "netns", "exec", options.netns, ...options.argv] : [...options.argv];
  const fd = openSync(options.log, "a", 0o644);
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...options.env },
      cwd: options.cwd ?? "/",
    });
    const exited = new Promise<number>((resolve) => {
      child.once("error", () => resolve(127));
      child.once("exit", (code, signal) => resolve(code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0)));
    });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) return { pid: -1, start: -1, exited };
    // `ip netns exec` execs the command in place, so the pid and start time stay the command's.
    return { pid, start: procStartTime(pid) ?? -1, exited };
  } finally {
    closeSync(fd);
  }
}

/** Waits until `ref` has ended, up to `timeoutMs`. */
export async function waitGone(ref: ProcRef, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(ref)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function signal(ref: ProcRef, sig: NodeJS.Signals): void {
  if (!isAlive(ref)) return;
  try {
    process.kill(ref.pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Stops one process: SIGTERM, then SIGKILL after `graceMs`. Returns how it ended:
 * `gone` (was not running), `stopped` (exited after SIGTERM) or `killed`.
 */
export async function stopProc(ref: ProcRef, graceMs = 10_000): Promise<"gone" | "stopped" | "killed"> {
  if (!isAlive(ref)) return "gone";
  signal(ref, "SIGTERM");
  if (await waitGone(ref, graceMs)) return "stopped";
  signal(ref, "SIGKILL");
  await waitGone(ref, 2000);
  return "killed";
}

/** Every live process whose environment has `name=value` (reads /proc/<pid>/environ). */
export function findByEnv(name: string, value: string): ProcRef[] {
  const needle = Buffer.from(`${name}=${value}\0`);
  const out: ProcRef[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let env: Buffer;
    try {
      env = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (!env.subarray(0, needle.length).equals(needle) && !env.includes(Buffer.concat([Buffer.from([0]), needle])))
      continue;
    const start = procStartTime(pid);
    if (start !== undefined && isAlive({ pid, start })) out.push({ pid, start });
  }
  return out;
}

/** The last `lines` lines of a log file ("" if unreadable). */
export function tailFile(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.split("\n").filter(Boolean).slice(-lines).join("\n");
  } catch {
    return "";
  }
}
