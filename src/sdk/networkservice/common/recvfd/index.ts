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
 * Descriptors are released once the Request that brought them is done (closed when the
 * outermost recvfd element's call returns, so the whole chain, the cross-connect included, can
 * use them): a refresh sends them again, and nothing here keeps a namespace alive between calls.
 * A deleted pod's netns dies with the pod (with the interfaces in it), so a client's liveness
 * check sees the data plane go. Close needs no descriptor: the kernel cross-connects record each
 * side's netns identity (dev:ino) and find a namespace that still lives by it.
 * Per-connection state: the client keeps, per connection id, which `file:///proc/<pid>/fd/<n>`
 * URL stood for which `inode://` URL in the connection it returned (strings only), so that a
 * refresh or Close names the endpoint's netns as the endpoint sent it; removed on Close.
 * Descriptors no call took are closed when the unix connection ends.
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
 * What recvfd elements share during one incoming call (made by the outermost recvfd element):
 * the URLs (`file:///proc/<pid>/fd/<n>`) of descriptors received for it, and the descriptors,
 * closed once the whole call is done.
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

/** Descriptors received for one call, by `dev/ino` key. */
type Taken = Map<string, number>;

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

/** The descriptor for `key` that came on the unix connection (now, or within the wait). */
async function descriptorFor(key: string, table: FdTable, ctx: CallContext, waitMs?: number): Promise<number> {
  const arrived = table.take(key);
  if (arrived !== undefined) return arrived;
  ctx.log.debug({ netns: `inode://${key}`, peerPid: table.peerPid }, "recvfd: waiting for the descriptor");
  // A timer of our own (AbortSignal.timeout's does not keep the process alive while waiting).
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), waitMs ?? DEFAULT_WAIT_MS);
  try {
    return await table.waitFor(key, AbortSignal.any([ctx.signal, timeout.signal]));
  } catch (err) {
    ctx.log.warn({ netns: `inode://${key}`, peerPid: table.peerPid }, "recvfd: the descriptor did not arrive");
    throw invalidArgument(`recvfd: no descriptor for inode://${key}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Swaps every `inode://` URL of `mechs` for a received descriptor and returns what it took.
 * Every descriptor taken is closed when the call in `ctx` is done (see {@link withCallFds}),
 * whether the call succeeds or not.
 */
async function receive(
  mechs: Mechanism[],
  table: FdTable | undefined,
  ctx: CallContext,
  options: Readonly<RecvFdOptions>,
): Promise<Taken> {
  const taken: Taken = new Map();
  const call = ctx.get(callFdsKey);
  for (const m of mechs) {
    const url = m.parameters[Param.INODE_URL] ?? "";
    if (!url.startsWith("inode://")) continue;
    const key = keyOfInodeUrl(url);
    if (!table) throw invalidArgument(`recvfd: ${url} came on a connection that passes no descriptors`);
    let fd = taken.get(key);
    if (fd === undefined) {
      fd = await descriptorFor(key, table, ctx, options.waitMs);
      taken.set(key, fd);
      call?.closeAfter.push(fd);
    }
    if (options.requireSenderNetns) checkSenderNetns(fd, table, key);
    m.parameters[Param.INODE_URL] = fdUrl(fd);
    call?.received.add(fdUrl(fd));
  }
  return taken;
}

/** `file:///proc/<pid>/fd/<n>` → `inode://<key>` of the descriptors `taken`. */
function inodeUrlsOf(taken: Taken): Map<string, string> {
  return new Map([...taken].map(([key, fd]) => [fdUrl(fd), `inode://${key}`]));
}

/** Replaces each URL of `mechs` found in `swaps` by what it maps to. */
function swapUrls(mechs: readonly Mechanism[], swaps: ReadonlyMap<string, string> | undefined): void {
  for (const m of mechs) {
    const to = swaps?.get(m.parameters[Param.INODE_URL] ?? "");
    if (to !== undefined) m.parameters[Param.INODE_URL] = to;
  }
}

const inverse = (swaps: ReadonlyMap<string, string> | undefined) => new Map([...(swaps ?? [])].map(([a, b]) => [b, a]));

/** See the module doc: descriptors that came with a Request. */
export function recvFdServer(options: Readonly<RecvFdOptions> = {}): NetworkServiceElement {
  return {
    name: "recvFdServer",
    request: (req, ctx, next) =>
      withCallFds(ctx, async (c) => {
        const mechs = kernelMechanismsOf(req.connection, req.mechanismPreferences);
        const original = mechs.map((m) => m.parameters[Param.INODE_URL] ?? "");
        let conn: Connection;
        try {
          const taken = await receive(mechs, c.get(grpcPeerKey)?.fds, c, options);
          conn = await next.request(req, c);
          if (taken.size === 0) return conn;
          const out = clone(ConnectionSchema, conn);
          swapUrls(kernelMechanismsOf(out), inodeUrlsOf(taken));
          return out;
        } finally {
          mechs.forEach((m, i) => {
            m.parameters[Param.INODE_URL] = original[i] ?? "";
          });
        }
      }),
    // Nothing is held: the cross-connect finds the namespaces it recorded by their identity.
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** See the module doc: descriptors that came back with the response (the endpoint's netns). */
export function recvFdClient(options: Readonly<RecvFdOptions> = {}): NetworkServiceElement {
  // Per connection: the `file:///proc/<pid>/fd/<n>` URLs this element put in the connection it
  // returned, with the `inode://` URL the endpoint sent (strings only; no descriptor is kept).
  const sent = new Map<string, Map<string, string>>();
  const tableOf = (ctx: CallContext) => {
    const url = clientUrlOf(ctx) ?? "";
    return url.startsWith("unix://") ? fdTableOfDialed(url.slice("unix://".length)) : undefined;
  };
  return {
    name: "recvFdClient",
    request: (req, ctx, next) =>
      withCallFds(ctx, async (c) => {
        const connId = req.connection?.id ?? "";
        swapUrls(kernelMechanismsOf(req.connection, req.mechanismPreferences), sent.get(connId));
        const conn = await next.request(req, c);
        const out = clone(ConnectionSchema, conn);
        let taken: Taken;
        try {
          taken = await receive(kernelMechanismsOf(out), tableOf(c), c, options);
        } catch (err) {
          if (!sent.has(conn.id || connId)) await closeDownstream(next, conn, c, "the endpoint's netns was refused");
          throw err;
        }
        sent.set(conn.id || connId, inodeUrlsOf(taken));
        return taken.size === 0 ? conn : out;
      }),
    async close(conn, ctx, next) {
      const mine = sent.get(conn.id);
      const mechs = kernelMechanismsOf(conn);
      swapUrls(mechs, mine);
      try {
        return await next.close(conn, ctx);
      } finally {
        swapUrls(mechs, inverse(mine));
        sent.delete(conn.id);
      }
    },
  };
}
