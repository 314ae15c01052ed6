// SPDX-License-Identifier: Apache-2.0
/**
 * The descriptor-passing calls of the N-API addon (`native/src/fdpass.cc`, built into
 * `native/build/Release/nsnl.node`), loaded on first use. The sdk loads the addon itself (the
 * kernel package's loader is out of its reach); only these few functions are typed here.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { unavailable } from "../core/errors.js";

export interface FdBinding {
  /** A listening, non-blocking unix stream socket bound to `path`. */
  unixListen(path: string): number;
  /** An accepted connection, or -errno (-EAGAIN: none pending). */
  unixAccept(fd: number): number;
  /** A connected, non-blocking unix stream socket. */
  unixConnect(path: string): number;
  /** One recvmsg: bytes read (0 = end of stream) and the descriptors that came with them, or -errno. */
  recvFds(fd: number, buffer: Buffer): { n: number; fds: number[]; truncated: boolean } | number;
  /** One sendmsg of buffer[offset, offset+length), with `passFd` (>= 0) as SCM_RIGHTS; bytes sent or -errno. */
  sendFd(fd: number, buffer: Buffer, offset: number, length: number, passFd: number): number;
  /** The peer process of a connected unix socket (SO_PEERCRED, as at connect time). */
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  /** A libuv poll handle on `fd`. */
  pollFd(
    fd: number,
    readable: boolean,
    writable: boolean,
    cb: (status: number, r: boolean, w: boolean) => void,
  ): unknown;
  pollUpdate(handle: unknown, readable: boolean, writable: boolean): void;
  /** Stops and frees a poll handle (before the descriptor is closed). */
  pollStop(handle: unknown): void;
}

const ADDON = join("native", "build", "Release", "nsnl.node");
let cached: FdBinding | undefined;

function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 7; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** The addon's descriptor-passing calls; `Unavailable` when the addon is not built or too old. */
export function loadFdBinding(): FdBinding {
  if (cached) return cached;
  const path = findAddon();
  if (path === undefined) throw unavailable(`the addon ${ADDON} is not built; run "npm run build:native"`);
  const binding = createRequire(import.meta.url)(path) as Partial<FdBinding>;
  if (typeof binding.sendFd !== "function") {
    throw unavailable(`the addon ${path} has no descriptor passing; rebuild it with "npm run build:native"`);
  }
  cached = binding as FdBinding;
  return cached;
}
