// SPDX-License-Identifier: Apache-2.0
/**
 * recvfd: the receiving end of sendfd (upstream NSM's recvfd server and client).
 *
 * Purpose: a KERNEL mechanism's `inodeURL` of the form `inode://<dev>/<ino>` names a descriptor
 * sent with SCM_RIGHTS on the unix connection: for {@link recvFdServer}, the one the request
 * came on (`GrpcPeer.fds`); for {@link recvFdClient}, the one the response came back on. The
 * element waits for it (bounded by the call's deadline and `waitMs`), swaps the parameter for
 * `file:///proc/<own pid>/fd/<n>` (server: for the rest of its chain, then back to `inode://`
 * in what it returns, so the previous hop sees its own URL; client: in the connection it
 * returns), and records that URL as received in the call's context ({@link isReceivedNetns}), the
 * proof of ownership a forwarder accepts.
 * Chain placement: server: early, before anything that reads `inodeURL`; client: before dial.
 * Per-connection state: the descriptors a connection id uses; a refresh that sends the
 * namespace again replaces them; they are closed on Close (and a first Request that fails
 * closes what it took). Descriptors no call took are closed when the unix connection ends.
 * Options: {@link RecvFdOptions}.
 * Failure behaviour: a malformed `inode://` URL, one that came on a connection that passes no
 * descriptors, or one whose descriptor does not arrive in time is InvalidArgument; a descriptor
 * that is not the sender's own namespace (with `requireSenderNetns`) is PermissionDenied.
 * Nothing goes further down the chain in each case.
 */
import { statSync } from "node:fs";
import {
  type Connection,
  ConnectionSchema,
  clone,
  type Mechanism,
  MechanismType,
  Param,
} from "../../../../api/index.js";
import { closeQuietly as closeDownstream, type NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, createContextKey } from "../../../core/context.js";
import { invalidArgument, permissionDenied } from "../../../core/errors.js";
import { closeQuietly, type FdTable, inodeKeyOfFd } from "../../../grpc/fdsocket.js";
import { fdTableOfDialed } from "../../../grpc/fdtransport.js";
import { grpcPeerKey } from "../../../grpc/service.js";
import { clientUrlOf } from "../clienturl/index.js";

const DEFAULT_WAIT_MS = 5000;

/** The mechanisms of a request or connection that may carry an `inodeURL`. */
export function kernelMechanismsOf(conn: Connection | undefined, prefs: readonly Mechanism[] = []): Mechanism[] {
  const all = [...(conn?.mechanism ? [conn.mechanism] : []), ...prefs];
  return all.filter((m) => m.type === MechanismType.KERNEL && m.parameters[Param.INODE_URL] !== undefined);
}
const INODE_URL = /^inode:\/\/([0-9]{1,20})\/([0-9]{1,20})$/;

export interface RecvFdOptions {
  /**
   * Refuse a descriptor that is not the netns of the process at the other end of the unix
   * socket (SO_PEERCRED): for the hop right after the NSC (server) or the NSE (client).
   * @default false
   */
  readonly requireSenderNetns?: boolean;
  /**
   * The longest wait for a descriptor (it normally comes with the request's own bytes); the
   * call's deadline ends the wait earlier. @default 5000
   */
  readonly waitMs?: number;
}

/**
 * What recvfd elements share during one incoming call (made by the outermost recvFdServer):
 * the URLs (`file:///proc/<pid>/fd/<n>`) of descriptors received for it, and descriptors to
 * close once the whole call is done (a recvFdClient's on Close: the server elements above it,
 * the cross-connect, still remove the interface in that namespace after the client chain).
 */
interface CallFds {
  readonly received: Set<string>;
  readonly closeAfter: number[];
}

const callFdsKey = createContextKey<CallFds | undefined>(undefined, "recvfd.call");

/** Whether `url` names a descriptor this process received for the current call. */
export function isReceivedNetns(ctx: CallContext, url: string): boolean {
  return ctx.get(callFdsKey)?.received.has(url) === true;
}

/** Runs `fn` with the call's shared state, creating it (and closing its deferred descriptors after) if absent. */
async function withCallFds<T>(ctx: CallContext, fn: (ctx: CallContext) => Promise<T>): Promise<T> {
  if (ctx.get(callFdsKey)) return fn(ctx);
  const state: CallFds = { received: new Set(), closeAfter: [] };
  try {
    return await fn(ctx.with(callFdsKey, state));
  } finally {
    for (const fd of state.closeAfter.splice(0)) closeQuietly(fd);
  }
}

const fdUrl = (fd: number) => `file:///proc/${process.pid}/fd/${fd}`;

/** Descriptors a connection id holds, by `dev/ino` key. */
type Held = Map<string, number>;

function keyOfInodeUrl(url: string): string {
  const m = INODE_URL.exec(url);
  if (!m) throw invalidArgument(`recvfd: ${JSON.stringify(url)} is not an inode://<dev>/<ino> URL`);
  return `${m[1]}/${m[2]}`;
}

function checkSenderNetns(fd: number, table: FdTable, key: string): void {
  let own = "";
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
async function descriptorFor(key: string, held: Held | undefined, table: FdTable, ctx: CallContext, waitMs?: number) {
  const arrived = table.take(key);
  if (arrived !== undefined) return arrived;
  const mine = held?.get(key);
  if (mine !== undefined) return mine;
  // A timer of our own (AbortSignal.timeout's does not keep the process alive while waiting).
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), waitMs ?? DEFAULT_WAIT_MS);
  try {
    return await table.waitFor(key, AbortSignal.any([ctx.signal, timeout.signal]));
  } catch (err) {
    throw invalidArgument(`recvfd: no descriptor for inode://${key}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** The descriptors held per connection id, shared by the request and close paths of one element. */
class HeldFds {
  readonly #byConnection = new Map<string, Held>();

  constructor(private readonly options: Readonly<RecvFdOptions>) {}

  get(connId: string): Held | undefined {
    return this.#byConnection.get(connId);
  }

  /** Swaps every `inode://` URL of `mechs` for a received descriptor; returns what it took. */
  async receive(mechs: Mechanism[], connId: string, table: FdTable | undefined, ctx: CallContext): Promise<Held> {
    const taken: Held = new Map();
    const held = this.#byConnection.get(connId);
    try {
      for (const m of mechs) {
        const url = m.parameters[Param.INODE_URL] ?? "";
        if (!url.startsWith("inode://")) continue;
        const key = keyOfInodeUrl(url);
        if (!table) throw invalidArgument(`recvfd: ${url} came on a connection that passes no descriptors`);
        const fd = taken.get(key) ?? (await descriptorFor(key, held, table, ctx, this.options.waitMs));
        taken.set(key, fd);
        if (this.options.requireSenderNetns) checkSenderNetns(fd, table, key);
        m.parameters[Param.INODE_URL] = fdUrl(fd);
        ctx.get(callFdsKey)?.received.add(fdUrl(fd));
      }
    } catch (err) {
      this.drop(connId, taken);
      throw err;
    }
    return taken;
  }

  /** Keeps what a successful Request took (closing descriptors it replaced). */
  keep(connId: string, taken: Held): void {
    const held = this.#byConnection.get(connId) ?? new Map<string, number>();
    for (const [key, fd] of taken) {
      const old = held.get(key);
      if (old !== undefined && old !== fd) closeQuietly(old);
      held.set(key, fd);
    }
    if (held.size > 0) this.#byConnection.set(connId, held);
  }

  /** Closes what a failed Request took and this connection does not hold. */
  drop(connId: string, taken: Held): void {
    const mine = new Set(this.#byConnection.get(connId)?.values() ?? []);
    for (const fd of taken.values()) if (!mine.has(fd)) closeQuietly(fd);
  }

  /** Closes what `connId` holds: now, or when the call in `ctx` is done (see CallFds). */
  release(connId: string, ctx?: CallContext): void {
    const later = ctx?.get(callFdsKey)?.closeAfter;
    for (const fd of this.#byConnection.get(connId)?.values() ?? []) {
      if (later) later.push(fd);
      else closeQuietly(fd);
    }
    this.#byConnection.delete(connId);
  }
}

/** Puts `inode://key` back where `file:///proc/<pid>/fd/<n>` of a held descriptor is. */
function toInodeUrls(mechs: readonly Mechanism[], held: Held | undefined): void {
  for (const m of mechs) {
    for (const [key, fd] of held ?? []) {
      if (m.parameters[Param.INODE_URL] === fdUrl(fd)) m.parameters[Param.INODE_URL] = `inode://${key}`;
    }
  }
}

/** Swaps held `inode://key` URLs for their descriptors' paths. */
function toFdUrls(mechs: readonly Mechanism[], held: Held | undefined): void {
  for (const m of mechs) {
    const url = m.parameters[Param.INODE_URL] ?? "";
    const fd = url.startsWith("inode://") ? held?.get(url.slice("inode://".length)) : undefined;
    if (fd !== undefined) m.parameters[Param.INODE_URL] = fdUrl(fd);
  }
}

/** See the module doc: descriptors that came with a Request. */
export function recvFdServer(options: Readonly<RecvFdOptions> = {}): NetworkServiceElement {
  const held = new HeldFds(options);
  return {
    name: "recvFdServer",
    request: (req, ctx, next) =>
      withCallFds(ctx, async (c) => {
        const mechs = kernelMechanismsOf(req.connection, req.mechanismPreferences);
        const original = mechs.map((m) => m.parameters[Param.INODE_URL] ?? "");
        const connId = req.connection?.id ?? "";
        const taken = await held.receive(mechs, connId, c.get(grpcPeerKey)?.fds, c);
        let conn: Connection;
        try {
          conn = await next.request(req, c);
        } catch (err) {
          held.drop(connId, taken);
          mechs.forEach((m, i) => {
            m.parameters[Param.INODE_URL] = original[i] ?? "";
          });
          throw err;
        }
        held.keep(conn.id || connId, taken);
        if (taken.size === 0) return conn;
        const out = clone(ConnectionSchema, conn);
        toInodeUrls(kernelMechanismsOf(out), taken);
        return out;
      }),
    close: (conn, ctx, next) =>
      withCallFds(ctx, async (c) => {
        const mine = held.get(conn.id);
        const mechs = kernelMechanismsOf(conn);
        toFdUrls(mechs, mine);
        for (const fd of mine?.values() ?? []) c.get(callFdsKey)?.received.add(fdUrl(fd));
        try {
          return await next.close(conn, c);
        } finally {
          toInodeUrls(mechs, mine);
          held.release(conn.id);
        }
      }),
  };
}

/** See the module doc: descriptors that came back with the response (the endpoint's netns). */
export function recvFdClient(options: Readonly<RecvFdOptions> = {}): NetworkServiceElement {
  const held = new HeldFds(options);
  const tableOf = (ctx: CallContext) => {
    const url = clientUrlOf(ctx) ?? "";
    return url.startsWith("unix://") ? fdTableOfDialed(url.slice("unix://".length)) : undefined;
  };
  return {
    name: "recvFdClient",
    async request(req, ctx, next) {
      const connId = req.connection?.id ?? "";
      const mechs = kernelMechanismsOf(req.connection, req.mechanismPreferences);
      toInodeUrls(mechs, held.get(connId));
      const conn = await next.request(req, ctx);
      const out = clone(ConnectionSchema, conn);
      let taken: Held;
      try {
        taken = await held.receive(kernelMechanismsOf(out), conn.id || connId, tableOf(ctx), ctx);
      } catch (err) {
        if (!held.get(conn.id || connId)) await closeDownstream(next, conn, ctx, "the endpoint's netns was refused");
        throw err;
      }
      held.keep(conn.id || connId, taken);
      return taken.size === 0 ? conn : out;
    },
    async close(conn, ctx, next) {
      const mine = held.get(conn.id);
      const mechs = kernelMechanismsOf(conn);
      toInodeUrls(mechs, mine);
      try {
        return await next.close(conn, ctx);
      } finally {
        toFdUrls(mechs, mine);
        held.release(conn.id, ctx);
      }
    },
  };
}
