// SPDX-License-Identifier: Apache-2.0
/**
 * From a KERNEL mechanism's `inodeURL` to a netns path the {@link KernelApi} can open.
 *
 * Namespaces passed as descriptors (`inode://dev/ino` on the wire, as upstream) reach the
 * cross-connects as `file:///proc/<forwarder pid>/fd/<n>`: recvfd swaps the URL for the
 * descriptor it received, which is open only while the Request that brought it runs. So a
 * recorded path may later name nothing or another file: each side also records its netns
 * identity ({@link netnsIdentity}), and {@link relocateNetns} finds the namespace again by it.
 * The only accepted form here is a `file://` URL with an absolute, normalized path:
 * `file:///proc/<pid>/ns/net`, `file:///var/run/netns/<name>`, or any other absolute path to a
 * netns file. Everything else (a bare `inode://` URL whose descriptor no recvfd took, too) is
 * `InvalidArgument` with a message that says what to send instead.
 */

import { statSync } from "node:fs";
import { invalidArgument, type NsmError } from "../../../sdk/core/errors.js";
import type { KernelApi } from "../../api.js";

const bad = (url: string, why: string): NsmError =>
  invalidArgument(`netns URL ${JSON.stringify(url)}: ${why}`, { reason: "bad-netns-url" });

/**
 * The netns path named by a mechanism's `inodeURL`.
 *
 * - `file:///proc/<pid>/ns/net`, `file:///var/run/netns/<name>`, `file://localhost/<path>` → the path
 *   (percent-escapes decoded);
 * - `inode://…` → InvalidArgument "fd passing is not supported: send a file:// netns URL";
 * - other schemes, relative paths (`file://proc/1/ns/net` has host `proc`), `.`/`..`/empty
 *   segments, a query or fragment, NUL → InvalidArgument;
 * - `/proc/self/…` and `/proc/thread-self/…` → InvalidArgument: in the forwarder they would name
 *   the forwarder's own namespace, never the sender's (the sender must resolve its pid first).
 *
 * Whether the caller may use that namespace is not checked here (see the `checkNetns` hook of
 * `kernelXconnectServer`).
 */
export function netnsPathFromUrl(url: string): string {
  if (typeof url !== "string" || url === "") {
    throw invalidArgument("no netns URL (KERNEL mechanism parameter inodeURL)", { reason: "bad-netns-url" });
  }
  const path = decodedPath(url, fileUrlPath(url));
  checkNetnsPath(url, path);
  return path;
}

/** The (still percent-encoded) path of a `file://` or `file://localhost` URL. */
function fileUrlPath(url: string): string {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === "inode") throw bad(url, "fd passing is not supported: send a file:// netns URL");
  if (scheme !== "file") throw bad(url, "only file:// netns URLs are supported (e.g. file:///proc/<pid>/ns/net)");
  const rest = url.slice("file:".length);
  if (!rest.startsWith("//")) throw bad(url, "expected file:///absolute/path");
  const authority = rest.slice(2);
  const slash = authority.indexOf("/");
  const host = slash < 0 ? authority : authority.slice(0, slash);
  if (host !== "" && host.toLowerCase() !== "localhost") {
    throw bad(url, `the path is relative (host part ${JSON.stringify(host)}): use three slashes, file:///…`);
  }
  const raw = slash < 0 ? "" : authority.slice(slash);
  if (raw === "" || raw === "/") throw bad(url, "no path");
  if (/[?#]/.test(raw)) throw bad(url, "a query or fragment is not allowed");
  return raw;
}

function decodedPath(url: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw bad(url, "bad percent-encoding");
  }
}

/** An absolute, normalized path without NUL that does not name the forwarder's own namespace. */
function checkNetnsPath(url: string, path: string): void {
  if (path.includes("\0")) throw bad(url, "NUL in path");
  const segments = path.split("/").slice(1);
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw bad(url, "the path must be absolute and normalized (no empty, . or .. segments)");
  }
  if (segments[0] === "proc" && (segments[1] === "self" || segments[1] === "thread-self")) {
    throw bad(url, "it names the forwarder's own namespace: send file:///proc/<pid>/ns/net with your pid");
  }
}

/** The identity (`dev:ino`) of the namespace at `path`, or undefined when it cannot be read. */
export function netnsIdentity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * When a side recorded earlier names the same namespace (same identity) under another path —
 * an NSC sidecar taking over the connection of `nsc --init`, whose `/proc/<pid>` path died with
 * it — the record adopts the new path, so the interface is kept and later calls use a live path.
 */
export function followNetns(
  recorded: { netns: string; netnsId?: string },
  now: { netns: string; netnsId?: string },
): void {
  if (recorded.netns !== now.netns && recorded.netnsId !== undefined && recorded.netnsId === now.netnsId) {
    recorded.netns = now.netns;
  }
}

/**
 * A path that reaches the namespace recorded as `side` now: its recorded path while that still
 * names the same namespace, else any other path to it (a bind mount under /var/run/netns, a
 * process still inside). The recorded path is usually `/proc/<pid>/ns/net` of the client or
 * endpoint process; when that process has died (a killed client whose connection expires) the
 * namespace and the interfaces in it may well live on, held by the pod. Undefined when the
 * identified namespace is gone; a side recorded without identity keeps its path.
 */
export async function relocateNetns(
  kernel: Pick<KernelApi, "listNetns">,
  side: { netns: string; netnsId?: string },
): Promise<string | undefined> {
  // Without a recorded identity there is nothing to follow: the recorded path is all we have.
  if (side.netnsId === undefined) return side.netns;
  if (netnsIdentity(side.netns) === side.netnsId) return side.netns;
  for (const path of await kernel.listNetns()) {
    if (path !== undefined && netnsIdentity(path) === side.netnsId) return path;
  }
  return undefined;
}

/**
 * A path to the namespace an `inode://<dev>/<ino>` URL names (as a connection shows it after a
 * hop that passes descriptors), found among the namespaces the kernel can list; undefined when
 * the URL is not of that form or no such namespace is reachable. For read-only views (the
 * local runtime's traffic counters): it proves nothing about who owns the namespace.
 */
export async function netnsPathOfInodeUrl(
  kernel: Pick<KernelApi, "listNetns">,
  url: string,
): Promise<string | undefined> {
  const m = /^inode:\/\/([0-9]{1,20})\/([0-9]{1,20})$/.exec(url);
  if (!m) return undefined;
  return relocateNetns(kernel, { netns: "", netnsId: `${m[1]}:${m[2]}` });
}
