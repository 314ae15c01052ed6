// SPDX-License-Identifier: Apache-2.0
/**
 * Loads the N-API addon built from `native/` (`native/build/Release/nsnl.node`).
 *
 * The addon does only what Node cannot: create an AF_NETLINK socket inside a netns, send and
 * receive on it off the main thread, and open files (sysctls, /dev/net/tun) inside a netns.
 * Every `setns()` runs on a throwaway thread. Errors carry `errno`, `code` and `syscall`.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { unavailable } from "../sdk/core/errors.js";

export interface NativeBinding {
  /** An AF_NETLINK socket of `protocol` created inside the netns at `nsPath`; resolves to its fd. */
  openNetlink(nsPath: string, protocol: number, rcvTimeoutMs: number): Promise<number>;
  /**
   * Sends one netlink message and resolves with the reply datagrams (only messages carrying the
   * request's sequence number), up to NLMSG_DONE / NLMSG_ERROR / a message without NLM_F_MULTI.
   * At most one request per fd at a time.
   */
  request(fd: number, message: Buffer): Promise<Buffer[]>;
  /** open(O_WRONLY) + write + close of `path` by a thread inside the netns at `nsPath`. */
  writeFile(nsPath: string, path: string, data: Buffer): Promise<void>;
  /** A persistent TUN (or TAP) device `name` created inside the netns at `nsPath`. */
  createTun(nsPath: string, name: string, tap: boolean): Promise<void>;
  /** `stat(2)` of a path (following symlinks): the netns identity for `/proc/<pid>/ns/net`. */
  stat(path: string): { dev: bigint; ino: bigint };
  close(fd: number): void;
}

const ADDON = join("native", "build", "Release", "nsnl.node");

/** Finds `native/build/Release/nsnl.node` above this module (works from `src/` and `dist/src/`). */
function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

let cached: NativeBinding | undefined;

/**
 * The addon, loaded once. Throws `Unavailable` when it has not been built
 * (`npm run build:native`, or `npm install`).
 */
export function loadNativeBinding(addonPath?: string): NativeBinding {
  if (addonPath === undefined && cached) return cached;
  const path = addonPath ?? findAddon();
  if (path === undefined) {
    throw unavailable(`the netlink addon ${ADDON} is not built; run "npm run build:native"`);
  }
  const binding = createRequire(import.meta.url)(path) as NativeBinding;
  if (addonPath === undefined) cached = binding;
  return binding;
}
