// SPDX-License-Identifier: Apache-2.0
/** Child processes in tests: collect their output, end them by their own PID. */
import type { ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";

/** How a finished command went. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Collects the output of `child` and resolves when it closes (code -1 when killed by a signal). */
export function collectOutput(child: ChildProcess & { stdout: Readable; stderr: Readable }): Promise<CommandResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Resolves when `c` has exited, sending SIGKILL to it after `graceMs`. */
export function exitOrKill(c: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      c.kill("SIGKILL");
      resolve();
    }, graceMs);
    c.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Ends `c` (SIGTERM to its PID, SIGKILL after `graceMs`); nothing when it has already exited. */
export async function stopChild(c: ChildProcess, graceMs = 5000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  c.kill("SIGTERM");
  await exitOrKill(c, graceMs);
}
