// SPDX-License-Identifier: Apache-2.0
/**
 * gRPC over unix sockets that pass file descriptors (upstream NSM's grpcfd), on grpc-js.
 *
 * - Serving: {@link bindFdUnix} accepts on a unix socket with the addon ({@link FdSocket}) and
 *   hands each connection to the grpc-js server through `createConnectionInjector()` with the
 *   server's credentials (mTLS runs over the relayed stream as over a plain socket).
 *   {@link fdTableOfCall} finds, from a handler's call, the descriptor table of the connection
 *   the call came on (grpc-js internals of 1.14: the http2 session's socket, or under TLS the
 *   stream its TLS handle wraps), so descriptors are looked up per connection, never globally.
 * - Dialing: {@link fdChannelCredentials} wraps channel credentials (insecure or mTLS) so that
 *   every connection grpc-js makes to a `unix://` target is an {@link FdSocket} (grpc-js's own
 *   socket is closed unused, the peer sees one extra connection that ends at once). Descriptors
 *   given to {@link queueFdsFor} for that socket path ride on the connection that carries the
 *   next call (they are handed over when grpc-js asks the connection's call credentials for
 *   the call's metadata, as upstream's per-RPC credentials do).
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { Duplex } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import type { SecureConnector, SecureConnectResult } from "@grpc/grpc-js/build/src/channel-credentials.js";
import { closeQuietly, connectFdUnix, type FdListener, FdSocket, type FdTable, listenFdUnix } from "./fdsocket.js";

/** A server listening with descriptor passing; `close()` stops accepting and drops its connections. */
export interface FdServerBinding {
  readonly url: string;
  close(): void;
}

/**
 * Serves `server` on the unix socket at `path` with descriptor passing: the directory is
 * created, a stale socket file removed, mode 0777 (as `bindUrls` does for plain unix sockets).
 */
export function bindFdUnix(server: grpc.Server, path: string, credentials: grpc.ServerCredentials): FdServerBinding {
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  const injector = server.createConnectionInjector(credentials);
  const sockets = new Set<FdSocket>();
  const listener: FdListener = listenFdUnix(path, (socket) => {
    sockets.add(socket);
    // A client's descriptors may ride on another of its connections than its call's.
    socket.fds.siblings = () => [...sockets].map((s) => s.fds);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    injector.injectConnection(socket);
  });
  chmodSync(path, 0o777);
  return {
    url: `unix://${path}`,
    close() {
      listener.close();
      injector.destroy();
      for (const s of sockets) s.destroy();
      rmSync(path, { force: true });
    },
  };
}

interface CallInternals {
  call?: CallInternals;
  nextCall?: CallInternals;
  stream?: { session?: { socket?: unknown } };
}

/** The relayed socket under an http2 session's socket: plain (JSStreamSocket) or TLS. */
function fdSocketUnder(socket: unknown): FdSocket | undefined {
  const s = socket as { stream?: unknown; _handle?: { _parentWrap?: { stream?: unknown } } } | undefined;
  const candidate = s?.stream ?? s?._handle?._parentWrap?.stream;
  return candidate instanceof FdSocket ? candidate : undefined;
}

/**
 * The descriptor table of the connection a grpc-js server call came on, or undefined when the
 * call did not come over {@link bindFdUnix} (TCP, a plain unix socket).
 */
export function fdTableOfCall(call: unknown): FdTable | undefined {
  let c = (call as CallInternals | undefined)?.call;
  for (let i = 0; c && !c.stream && i < 8; i++) c = c.nextCall;
  return fdSocketUnder(c?.stream?.session?.socket)?.fds;
}

/** The live relayed connections dialed to each socket path, oldest first (replies' descriptors arrive there). */
const dialed = new Map<string, Set<FdSocket>>();

/**
 * The descriptor table of the newest live connection dialed with {@link fdChannelCredentials}
 * to the unix socket `path`, with the other live ones to that path as its siblings (a response's
 * descriptors arrive on the connection its call went on, which need not be the newest).
 */
export function fdTableOfDialed(path: string): FdTable | undefined {
  const live = [...(dialed.get(path) ?? [])].filter((s) => !s.destroyed);
  return live.at(-1)?.fds;
}

/**
 * Sends descriptors back on the connection a server call came on, with the next bytes written
 * there (the response). Returns false (and closes them) when that connection passes no
 * descriptors.
 */
export function sendFdsOnCall(call: unknown, fds: readonly number[]): boolean {
  let c = (call as CallInternals | undefined)?.call;
  for (let i = 0; c && !c.stream && i < 8; i++) c = c.nextCall;
  const socket = fdSocketUnder(c?.stream?.session?.socket);
  if (!socket || socket.destroyed) {
    for (const fd of fds) closeQuietly(fd);
    return false;
  }
  socket.sendFds(fds);
  return true;
}

/** Descriptors waiting for the next call to a socket path. */
const pending = new Map<string, number[]>();

/**
 * Queues descriptors to be sent with the next call to the unix socket `path` over
 * {@link fdChannelCredentials}. The queue owns them; {@link dropQueuedFds} takes back (and
 * closes) those no call has carried.
 */
export function queueFdsFor(path: string, fds: readonly number[]): void {
  const q = pending.get(path) ?? [];
  q.push(...fds);
  pending.set(path, q);
}

/** Closes those of `fds` still queued for `path` (the call they were for went elsewhere or failed). */
export function dropQueuedFds(path: string, fds: readonly number[]): void {
  const q = pending.get(path);
  if (!q) return;
  for (const fd of fds) {
    const i = q.indexOf(fd);
    if (i >= 0) {
      q.splice(i, 1);
      closeQuietly(fd);
    }
  }
  if (q.length === 0) pending.delete(path);
}

function takeQueued(path: string): number[] {
  const q = pending.get(path) ?? [];
  pending.delete(path);
  return q;
}

class FdConnector implements SecureConnector {
  #socket: FdSocket | undefined;
  readonly #callCredentials: grpc.CallCredentials;

  constructor(
    private readonly inner: SecureConnector,
    private readonly path: string,
  ) {
    const handOver = grpc.CallCredentials.createFromMetadataGenerator((_options, callback) => {
      const fds = takeQueued(this.path);
      if (fds.length > 0) {
        if (this.#socket && !this.#socket.destroyed) this.#socket.sendFds(fds);
        else for (const fd of fds) closeQuietly(fd);
      }
      callback(null, new grpc.Metadata());
    });
    this.#callCredentials = inner.getCallCredentials().compose(handOver);
  }

  connect(socket: Duplex): Promise<SecureConnectResult> {
    socket.destroy();
    let relayed: FdSocket;
    try {
      relayed = connectFdUnix(this.path);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#socket = relayed;
    const onPath = dialed.get(this.path) ?? new Set<FdSocket>();
    dialed.set(this.path, onPath);
    onPath.add(relayed);
    relayed.fds.siblings = () => [...onPath].map((s) => s.fds);
    relayed.once("close", () => {
      onPath.delete(relayed);
      if (onPath.size === 0 && dialed.get(this.path) === onPath) dialed.delete(this.path);
    });
    return this.inner.connect(relayed as unknown as Parameters<SecureConnector["connect"]>[0]);
  }

  waitForReady(): Promise<void> {
    return this.inner.waitForReady();
  }

  getCallCredentials(): grpc.CallCredentials {
    return this.#callCredentials;
  }

  destroy(): void {
    this.inner.destroy();
  }
}

interface ConnectorMaker {
  _createSecureConnector(target: unknown, options: grpc.ChannelOptions, cc?: grpc.CallCredentials): SecureConnector;
}

class FdChannelCredentials extends grpc.ChannelCredentials {
  constructor(private readonly inner: grpc.ChannelCredentials) {
    super();
  }

  _isSecure(): boolean {
    return this.inner._isSecure();
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(target: unknown, options: grpc.ChannelOptions, cc?: grpc.CallCredentials): SecureConnector {
    const inner = (this.inner as unknown as ConnectorMaker)._createSecureConnector(target, options, cc);
    const t = target as { scheme?: string; authority?: string; path?: string };
    if (t.scheme !== "unix" || !t.path) return inner;
    // grpc-js parses `unix:///abs/path` as authority "" and path "abs/path".
    const path = t.authority !== undefined && !t.path.startsWith("/") ? `/${t.path}` : t.path;
    return new FdConnector(inner, path);
  }
}

const wrapped = new WeakMap<grpc.ChannelCredentials, grpc.ChannelCredentials>();

/** Whether channel credentials pass descriptors on unix targets (made by {@link fdChannelCredentials}). */
export function passesFds(credentials: grpc.ChannelCredentials | undefined): boolean {
  return credentials instanceof FdChannelCredentials;
}

const fdChannels = new WeakSet<grpc.Client>();

/** Records that `channel` was made with descriptor-passing credentials (dialChannel does). */
export function markFdChannel(channel: grpc.Client): void {
  fdChannels.add(channel);
}

/** Whether `channel` passes descriptors (see {@link markFdChannel}). */
export function isFdChannel(channel: grpc.Client): boolean {
  return fdChannels.has(channel);
}

/**
 * Channel credentials that pass descriptors on `unix://` targets (other targets are dialed as
 * `inner` would). The same `inner` always gives the same wrapper, so channel pools keyed by
 * credentials keep sharing channels.
 */
export function fdChannelCredentials(inner: grpc.ChannelCredentials): grpc.ChannelCredentials {
  if (inner instanceof FdChannelCredentials) return inner;
  let w = wrapped.get(inner);
  if (!w) {
    w = new FdChannelCredentials(inner);
    wrapped.set(inner, w);
  }
  return w;
}
