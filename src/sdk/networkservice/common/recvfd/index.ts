// SPDX-License-Identifier: Apache-2.0
/**
 * recvfd: the receiving end of sendfd (upstream NSM's recvfd server).
 *
 * Purpose: a KERNEL mechanism's `inodeURL` of the form `inode://<dev>/<ino>` names a descriptor
 * sent with SCM_RIGHTS on the unix connection the call came on (`GrpcPeer.fds`). The element
 * waits for it (bounded by the call's deadline, or `waitMs`), swaps the parameter for
 * `file:///proc/<own pid>/fd/<n>` for the rest of the chain, and puts the `inode://` URL back on
 * the way out, so the next hop's sendfd sends the namespace on again.
 * Chain placement: early in a server chain (before anything that reads `inodeURL`).
 * Per-connection state: the descriptors a connection id uses; a refresh that sends the
 * namespace again replaces them; they are closed on Close (and a first Request that fails
 * closes what it took). Descriptors no call took are closed when the unix connection ends.
 * Options: `requireSenderNetns`: the descriptor must be the netns of the process at the other
 * end of the unix socket (SO_PEERCRED), for the first hop after a client or endpoint;
 * `waitMs`: the longest wait for a descriptor.
 * Failure behaviour: a malformed `inode://` URL, one that came on a connection that passes no
 * descriptors, or one whose descriptor does not arrive in time is InvalidArgument; a descriptor
 * that is not the sender's own namespace (with `requireSenderNetns`) is PermissionDenied.
 * Nothing goes further down the chain in each case.
 */
import { statSync } from "node:fs";
import { type Connection, type Mechanism, Param } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import { invalidArgument, permissionDenied } from "../../../core/errors.js";
import { closeQuietly, type FdTable, inodeKeyOfFd } from "../../../grpc/fdsocket.js";
import { grpcPeerKey } from "../../../grpc/service.js";
import { kernelMechanismsOf } from "../sendfd/index.js";

const INODE_URL = /^inode:\/\/([0-9]{1,20})\/([0-9]{1,20})$/;

export interface RecvFdOptions {
  /** Refuse a descriptor that is not the netns of the sending process. @default false */
  readonly requireSenderNetns?: boolean;
  /** The longest wait for a descriptor. @default until the call's deadline */
  readonly waitMs?: number;
}

/** Descriptors a connection id holds, by `dev/ino` key. */
type Held = Map<string, number>;

function keyOfInodeUrl(url: string): string {
  const m = INODE_URL.exec(url);
  if (!m) throw invalidArgument(`recvfd: ${JSON.stringify(url)} is not an inode://<dev>/<ino> URL`);
  return `${m[1]}/${m[2]}`;
}

function waitSignal(ctx: CallContext, waitMs: number | undefined): AbortSignal {
  return waitMs === undefined ? ctx.signal : AbortSignal.any([ctx.signal, AbortSignal.timeout(waitMs)]);
}

function checkSenderNetns(fd: number, table: FdTable, key: string): void {
  let own: string;
  try {
    const st = statSync(`/proc/${table.peerPid}/ns/net`, { bigint: true });
    own = `${st.dev}/${st.ino}`;
  } catch {
    own = "";
  }
  if (table.peerPid <= 0 || own !== key || inodeKeyOfFd(fd) !== key) {
    throw permissionDenied(`recvfd: the namespace ${key} is not the sender's own (pid ${table.peerPid})`, {
      reason: "netns-not-owned",
    });
  }
}

/** The descriptor for `key`: newly arrived, or the one this connection already holds. */
async function descriptorFor(
  key: string,
  held: Held | undefined,
  table: FdTable,
  ctx: CallContext,
  options: RecvFdOptions,
): Promise<number> {
  const arrived = table.take(key);
  if (arrived !== undefined) return arrived;
  const mine = held?.get(key);
  if (mine !== undefined) return mine;
  try {
    return await table.waitFor(key, waitSignal(ctx, options.waitMs));
  } catch (err) {
    throw invalidArgument(`recvfd: no descriptor for inode://${key}: ${(err as Error).message}`);
  }
}

/** See the module doc. */
export function recvFdServer(options: Readonly<RecvFdOptions> = {}): NetworkServiceElement {
  const byConnection = new Map<string, Held>();

  const receive = async (mechs: Mechanism[], connId: string, ctx: CallContext) => {
    const taken: Held = new Map();
    const table = ctx.get(grpcPeerKey)?.fds;
    const held = byConnection.get(connId);
    try {
      for (const m of mechs) {
        const url = m.parameters[Param.INODE_URL] ?? "";
        if (!url.startsWith("inode://")) continue;
        const key = keyOfInodeUrl(url);
        if (!table) throw invalidArgument(`recvfd: ${url} came on a connection that passes no descriptors`);
        const fd = taken.get(key) ?? (await descriptorFor(key, held, table, ctx, options));
        taken.set(key, fd);
        if (options.requireSenderNetns) checkSenderNetns(fd, table, key);
        m.parameters[Param.INODE_URL] = `file:///proc/${process.pid}/fd/${fd}`;
      }
    } catch (err) {
      for (const fd of taken.values()) if (![...(held?.values() ?? [])].includes(fd)) closeQuietly(fd);
      throw err;
    }
    return taken;
  };

  const keep = (connId: string, taken: Held) => {
    const held = byConnection.get(connId) ?? new Map<string, number>();
    for (const [key, fd] of taken) {
      const old = held.get(key);
      if (old !== undefined && old !== fd) closeQuietly(old);
      held.set(key, fd);
    }
    if (held.size > 0) byConnection.set(connId, held);
  };

  const release = (connId: string) => {
    for (const fd of byConnection.get(connId)?.values() ?? []) closeQuietly(fd);
    byConnection.delete(connId);
  };

  return {
    name: "recvFdServer",
    async request(req, ctx, next) {
      const mechs = kernelMechanismsOf(req.connection, req.mechanismPreferences);
      const original = mechs.map((m) => m.parameters[Param.INODE_URL]);
      const connId = req.connection?.id ?? "";
      const taken = await receive(mechs, connId, ctx);
      const restore = (conn: Connection | undefined) => restoreUrls(kernelMechanismsOf(conn), taken);
      let conn: Connection;
      try {
        conn = await next.request(req, ctx);
      } catch (err) {
        if (!byConnection.has(connId)) for (const fd of taken.values()) closeQuietly(fd);
        else keep(connId, taken);
        mechs.forEach((m, i) => {
          if (original[i] !== undefined) m.parameters[Param.INODE_URL] = original[i];
        });
        throw err;
      }
      keep(conn.id || connId, taken);
      restore(conn);
      return conn;
    },
    async close(conn, ctx, next) {
      const held = byConnection.get(conn.id);
      const mechs = kernelMechanismsOf(conn);
      for (const m of mechs) {
        const url = m.parameters[Param.INODE_URL] ?? "";
        const fd = url.startsWith("inode://") ? held?.get(url.slice("inode://".length)) : undefined;
        if (fd !== undefined) m.parameters[Param.INODE_URL] = `file:///proc/${process.pid}/fd/${fd}`;
      }
      try {
        return await next.close(conn, ctx);
      } finally {
        if (held) restoreUrls(mechs, held);
        release(conn.id);
      }
    },
  };
}

/** Puts `inode://key` back where `file:///proc/<pid>/fd/<n>` of a held descriptor is. */
function restoreUrls(mechs: readonly Mechanism[], held: Held): void {
  for (const m of mechs) {
    for (const [key, fd] of held) {
      if (m.parameters[Param.INODE_URL] === `file:///proc/${process.pid}/fd/${fd}`) {
        m.parameters[Param.INODE_URL] = `inode://${key}`;
      }
    }
  }
}
