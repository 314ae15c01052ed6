// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm logs -f`: after what `podLogs` printed, the lines the pod's containers append (every
 * container, or the one named), polled every `pollMs`, until `signal` aborts. A log file that
 * shrinks (a component restarted and truncated it) is read again from its start.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { renderLogLine } from "./inspect.js";
import type { PodState } from "./state.js";

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, from: number, to: number): string {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(to - from);
    const n = readSync(fd, buf, 0, buf.length, from);
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

export interface FollowOptions {
  container?: string;
  raw?: boolean;
  /** @default 200 */
  pollMs?: number;
  signal: AbortSignal;
}

/** New complete lines of one log since the last call (offsets and partial lines kept in `seen`). */
function newLines(file: string, seen: Map<string, { at: number; partial: string }>): string[] {
  const prev = seen.get(file) ?? { at: 0, partial: "" };
  const size = sizeOf(file);
  const at = size < prev.at ? 0 : prev.at;
  if (size === at) return [];
  const lines = (prev.partial + readFrom(file, at, size)).split("\n");
  seen.set(file, { at: size, partial: lines.pop() ?? "" });
  return lines.filter((l) => l.length > 0);
}

/** Writes new log lines (`[container] line`) with `write` until the signal aborts. */
export async function followPodLogs(pod: PodState, write: (text: string) => void, o: FollowOptions): Promise<void> {
  const containers = o.container ? pod.containers.filter((c) => c.name === o.container) : pod.containers;
  const seen = new Map(containers.map((c) => [c.log, { at: sizeOf(c.log), partial: "" }]));
  while (!o.signal.aborted) {
    await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
    for (const c of containers) {
      for (const l of newLines(c.log, seen)) write(`[${c.name}] ${o.raw ? l : renderLogLine(l)}\n`);
    }
  }
}
