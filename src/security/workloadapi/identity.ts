// SPDX-License-Identifier: Apache-2.0
/**
 * Building blocks for `resolveIdentity(pid)` (the Workload API's pid → SPIFFE ID mapping).
 *
 * The runtime knows which processes it started for which pod or component; these helpers turn
 * that knowledge into a resolver:
 * - {@link resolveByProcessTree}: a process inherits the identity of its nearest registered
 *   ancestor (the runtime registers the pids it spawns; their children are covered too);
 * - {@link resolveByNetns}: the identity of the network namespace the process is in (local
 *   runtime pods are network namespaces; a process cannot move itself into another pod's
 *   namespace without privileges).
 * Do not resolve from the process's own environment variables: any local process can start a
 * child with whatever environment it likes.
 */
import { readFile, stat } from "node:fs/promises";
import type { ResolveIdentity } from "./server.js";

/** The parent pid of `pid` (from /proc/<pid>/stat), or undefined if the process is gone. */
export async function parentPid(pid: number): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid …": comm may contain spaces and parentheses.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(rest[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves a pid to the identity of itself or its nearest ancestor for which `lookup` answers
 * (at most `maxDepth` generations; pid 1 and 0 end the walk).
 */
export function resolveByProcessTree(lookup: (pid: number) => string | undefined, maxDepth = 64): ResolveIdentity {
  return async (pid) => {
    let cur: number | undefined = pid;
    for (let depth = 0; cur !== undefined && cur > 1 && depth <= maxDepth; depth++) {
      const id = lookup(cur);
      if (id !== undefined) return id;
      cur = await parentPid(cur);
    }
    return undefined;
  };
}

/** The inode of the network namespace `pid` is in, or undefined if the process is gone. */
export async function netnsInodeOf(pid: number): Promise<number | undefined> {
  try {
    return Number((await stat(`/proc/${pid}/ns/net`)).ino);
  } catch {
    return undefined;
  }
}

/** Resolves a pid by the network namespace it is in (`lookup(netnsInode, pid)`). */
export function resolveByNetns(lookup: (netnsInode: number, pid: number) => string | undefined): ResolveIdentity {
  return async (pid) => {
    const ino = await netnsInodeOf(pid);
    return ino === undefined ? undefined : lookup(ino, pid);
  };
}
