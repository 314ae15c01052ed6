// SPDX-License-Identifier: Apache-2.0
/**
 * sendfd: name a network namespace across a hop by descriptor, as upstream NSM does.
 *
 * Purpose: a KERNEL mechanism's `inodeURL` that is a `file://<path>` (the sender's own netns,
 * `file:///proc/<pid>/ns/net`) is replaced by `inode://<st_dev>/<st_ino>` of that path, and the
 * path is opened (`O_PATH`) and queued on the unix connection the call goes out on
 * (`queueFdsFor` of src/sdk/grpc/fdtransport.ts); it rides on the call's bytes with SCM_RIGHTS.
 * The receiver's recvfd element finds it by that key. On the way back the `file://` URL is put
 * back into the returned connection.
 * {@link sendFdServer} does the same for the connection a server returns (an NSE naming its own
 * netns): the descriptor goes back on the connection the call came on, with the response.
 * Chain placement: client: after the mechanism elements, before dial; the dial must use
 * `fdChannelCredentials` (otherwise nothing carries the descriptor and the receiver answers
 * InvalidArgument). Server: early (it works on what the rest of the chain returns).
 * Per-connection state: none (each Request sends again; descriptors no call carried are closed
 * when the call returns).
 * Options: {@link SendFdOptions}: which namespaces go as descriptors ({@link SendFdScope}: this
 * process's own, or only those received for the call); any other `file://` path is left as it
 * is. Only `unix://` next hops dialed with descriptor-passing credentials get descriptors;
 * otherwise the URLs are left as they are.
 * Failure behaviour: a sendable `file://` path that cannot be opened is InvalidArgument, before the call.
 */
import { openSync, statSync } from "node:fs";
import { ConnectionSchema, clone, type Mechanism, Param } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";
import { closeQuietly } from "../../../grpc/fdsocket.js";
import { dropQueuedFds, isFdChannel, queueFdsFor } from "../../../grpc/fdtransport.js";
import { grpcPeerKey } from "../../../grpc/service.js";
import { clientUrlOf } from "../clienturl/index.js";
import { channelOf } from "../dial/index.js";
import { isReceivedNetns, kernelMechanismsOf } from "../recvfd/index.js";

/** O_PATH (Linux): a descriptor naming the file, with no access to its contents. */
const O_PATH = 0o10000000;

export { kernelMechanismsOf };

/**
 * Which `file://` namespaces a hop sends as descriptors. `"own"`: only this process's own netns
 * (an NSC, an NSE, a passthrough endpoint's client side). `"received"`: only the ones it received
 * as descriptors for this call (recvfd's {@link isReceivedNetns}: a hop in the middle, nsmgr).
 * Any other `file://` path passes unchanged, so the forwarder applies its pid-based check to it:
 * a hop never turns a caller's plain path into a descriptor (which the forwarder would take as
 * proof of ownership).
 */
export type SendFdScope = "own" | "received";

/** Options of {@link sendFdClient} and {@link sendFdServer}. */
export interface SendFdOptions {
  /** See {@link SendFdScope}. @default "own" */
  readonly sends?: SendFdScope;
}

/** Whether `url` (`file://<path>`) may go as a descriptor under `scope` on the call in `ctx`. */
function sendable(scope: SendFdScope, ctx: CallContext, url: string): boolean {
  if (scope === "received") return isReceivedNetns(ctx, url);
  try {
    return inodeUrlOfPath(url.slice("file://".length)) === inodeUrlOfPath("/proc/self/ns/net");
  } catch {
    return false;
  }
}

/** `inode://dev/ino` of a path (following symlinks: `/proc/<pid>/ns/net` gives the namespace). */
export function inodeUrlOfPath(path: string): string {
  const st = statSync(path, { bigint: true });
  return `inode://${st.dev}/${st.ino}`;
}

interface Swap {
  readonly fileUrl: string;
  readonly inodeUrl: string;
}

/** Opens each `file://` URL `mayOpen` allows, swaps in its `inode://` URL; returns the descriptors and swaps. */
export function openAndSwap(
  mechs: readonly Mechanism[],
  mayOpen: (url: string) => boolean = () => true,
): { fds: number[]; swaps: Swap[] } {
  const fds: number[] = [];
  const swaps: Swap[] = [];
  try {
    for (const m of mechs) {
      const url = m.parameters[Param.INODE_URL] ?? "";
      if (!url.startsWith("file://") || !mayOpen(url)) continue;
      const path = url.slice("file://".length);
      const inodeUrl = inodeUrlOfPath(path);
      fds.push(openSync(path, O_PATH));
      m.parameters[Param.INODE_URL] = inodeUrl;
      swaps.push({ fileUrl: url, inodeUrl });
    }
  } catch (err) {
    for (const fd of fds) closeQuietly(fd);
    throw invalidArgument(`sendfd: cannot open the netns to send: ${(err as Error).message}`);
  }
  return { fds, swaps };
}

/** Puts the `file://` URLs back where the `inode://` ones are. */
export function swapBack(mechs: readonly Mechanism[], swaps: readonly Swap[]): void {
  for (const m of mechs) {
    const s = swaps.find((x) => x.inodeUrl === m.parameters[Param.INODE_URL]);
    if (s) m.parameters[Param.INODE_URL] = s.fileUrl;
  }
}

/** See the module doc. */
export function sendFdClient(options: Readonly<SendFdOptions> = {}): NetworkServiceElement {
  const scope = options.sends ?? "own";
  return {
    name: "sendFdClient",
    async request(req, ctx, next) {
      const url = clientUrlOf(ctx) ?? "";
      const channel = channelOf(ctx);
      if (!url.startsWith("unix://") || (channel && !isFdChannel(channel))) return next.request(req, ctx);
      const socketPath = url.slice("unix://".length);
      const mechs = kernelMechanismsOf(req.connection, req.mechanismPreferences);
      const { fds, swaps } = openAndSwap(mechs, (u) => sendable(scope, ctx, u));
      queueFdsFor(socketPath, fds);
      try {
        const conn = await next.request(req, ctx);
        swapBack(kernelMechanismsOf(conn), swaps);
        return conn;
      } finally {
        dropQueuedFds(socketPath, fds);
        swapBack(kernelMechanismsOf(req.connection, req.mechanismPreferences), swaps);
      }
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** See the module doc: the server's own `file://` netns goes back as a descriptor. */
export function sendFdServer(options: Readonly<SendFdOptions> = {}): NetworkServiceElement {
  const scope = options.sends ?? "own";
  const mayOpen = (ctx: CallContext) => (u: string) => u.startsWith("file://") && sendable(scope, ctx, u);
  return {
    name: "sendFdServer",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const send = ctx.get(grpcPeerKey)?.sendFds;
      const file = kernelMechanismsOf(conn).some((m) => mayOpen(ctx)(m.parameters[Param.INODE_URL] ?? ""));
      if (!send || !file) return conn;
      const out = clone(ConnectionSchema, conn);
      const { fds } = openAndSwap(kernelMechanismsOf(out), mayOpen(ctx));
      send(fds);
      return out;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
