// SPDX-License-Identifier: Apache-2.0
/**
 * Process supervision for the runtime: start a process with its log and record how it was
 * started (so `nsm restart` can start it again the same way), wait until it is ready (failing
 * with the tail of its log if it dies or takes too long), stop or kill it, and clear a netns of
 * whatever still runs in it.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { socketAccepts } from "./cluster.js";
import type { Readiness } from "./components.js";
import type { RuntimeContext } from "./context.js";
import { LocalError } from "./errors.js";
import { renderLogLine } from "./inspect.js";
import { netnsPids } from "./netns.js";
import { NSM_PROCESS_ENV } from "./pods.js";
import {
  isAlive,
  type ProcRef,
  procStartTime,
  type Spawned,
  spawnDetached,
  stopProc,
  tailFile,
  waitGone,
} from "./proc.js";
import { type ManagedProc, RUNTIME_MARKER_ENV, type State } from "./state.js";

/** How long a component may take to be ready (ms). */
export const READY_TIMEOUT = 30_000;
/** How long a process may take to stop on SIGTERM before SIGKILL (ms). */
export const STOP_GRACE = 10_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `p`'s value, or undefined if it takes longer than `ms` (the timer never outlives the race). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Whether the log has a line containing `text` after its first `offset` bytes. */
function logHasAfter(log: string, offset: number, text: string): boolean {
  const fd = openSync(log, "r");
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString("utf8").includes(text);
  } finally {
    closeSync(fd);
  }
}

/** Whether a component started with its log at `offset` bytes is ready. */
export async function isReady(r: Readiness, proc: ManagedProc, offset: number): Promise<boolean> {
  switch (r.kind) {
    case "socket":
      return socketAccepts(r.path);
    case "log":
      return logHasAfter(proc.log, offset, r.text);
    case "running":
      await sleep(300);
      return isAlive(proc);
  }
}

/** The environment of a system process (registry, nsmgr, ...) with `extra` on top. */
export function systemEnv(ctx: RuntimeContext, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {
    PATH: ctx.config.hostPath,
    HOME: "/root",
    TMPDIR: ctx.paths.tmpDir,
    [RUNTIME_MARKER_ENV]: ctx.paths.prefix,
    // As for the roles run as pods: the libuv pool and malloc arenas of a long-running role.
    ...NSM_PROCESS_ENV,
  };
  return { ...env, ...ctx.config.inherited, ...extra };
}

/** What every NSM process of the runtime gets for its identity: the Workload API, or insecure. */
export function securityEnv(ctx: RuntimeContext, state: Pick<State, "insecure">): Record<string, string> {
  return state.insecure ? { NSM_INSECURE: "true" } : { SPIFFE_ENDPOINT_SOCKET: `unix://${ctx.paths.agentSocket}` };
}

/** The last lines of a log, rendered, for the end of an error message. */
export function logTail(file: string): string {
  const tail = tailFile(file, 8)
    .split("\n")
    .map((l) => {
      const r = renderLogLine(l);
      return r.length > 400 ? `${r.slice(0, 400)}…` : r;
    })
    .join("\n");
  return tail ? `\n--- last lines of ${file} ---\n${tail}` : ` (log ${file} is empty)`;
}

function diedError(component: string, proc: ManagedProc, exitCode?: number): LocalError {
  const how = exitCode === undefined ? "exited" : `exited with code ${exitCode}`;
  return new LocalError(`${component} ${how} while starting${logTail(proc.log)}`);
}

export interface StartSpec {
  /** Network namespace; undefined: the CLI's own. */
  readonly netns: string | undefined;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly log: string;
}

export interface Started {
  /** What the state records. */
  readonly proc: ManagedProc;
  /** The running child (its exit code while this CLI runs). */
  readonly spawned: Spawned;
}

/** Starts a process and records it with its log file and how it was started. */
export function startProcess(ctx: RuntimeContext, spec: StartSpec): Started {
  mkdirSync(ctx.paths.logsDir, { recursive: true });
  const argv = [...spec.argv];
  const env = { ...spec.env };
  const spawned = spawnDetached({ netns: spec.netns, argv, env, log: spec.log });
  const proc: ManagedProc = { pid: spawned.pid, start: spawned.start, log: spec.log, argv, netns: spec.netns, env };
  ctx.log.debug({ pid: proc.pid, netns: spec.netns, argv, log: spec.log }, "process started");
  return { proc, spawned };
}

/** Polls `ready` until it is true; fails if the process dies or at the timeout. */
export async function waitReady(
  component: string,
  started: Started,
  ready: () => Promise<boolean>,
  timeoutMs = READY_TIMEOUT,
): Promise<void> {
  const { proc, spawned } = started;
  let exitCode: number | undefined;
  void spawned.exited.then((c) => {
    exitCode = c;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitCode !== undefined || !isAlive(proc)) throw diedError(component, proc, exitCode);
    const ok = await Promise.resolve()
      .then(ready)
      .catch(() => false);
    if (ok) return;
    if (Date.now() > deadline)
      throw new LocalError(`${component} is not ready after ${timeoutMs / 1000}s${logTail(proc.log)}`);
    await sleep(100);
  }
}

/** SIGTERM, then SIGKILL after the grace time. */
export async function stopProcess(
  ctx: RuntimeContext,
  p: ProcRef,
  graceMs = STOP_GRACE,
): Promise<"gone" | "stopped" | "killed"> {
  const how = await stopProc(p, graceMs);
  ctx.log.debug({ pid: p.pid, how }, "process stopped");
  return how;
}

/** SIGKILL now (a crash, for heal tests); "gone" if it was not running. */
export async function killProcess(ctx: RuntimeContext, p: ManagedProc): Promise<"gone" | "killed"> {
  if (!isAlive(p)) return "gone";
  try {
    process.kill(p.pid, "SIGKILL");
  } catch {
    return "gone";
  }
  await waitGone(p, 5000);
  ctx.log.debug({ pid: p.pid }, "process killed");
  return "killed";
}

/** Kills whatever still runs inside one of our namespaces (by pid, after checking it is alive). */
export async function killNetnsProcesses(netns: string): Promise<void> {
  const pids = await netnsPids(netns);
  const refs: ProcRef[] = [];
  for (const pid of pids) {
    const start = procStartTime(pid);
    if (start !== undefined) refs.push({ pid, start });
  }
  await Promise.all(refs.map((r) => stopProc(r, 2000)));
}
