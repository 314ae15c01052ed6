// SPDX-License-Identifier: Apache-2.0
/**
 * The embedded SPIFFE Workload API: an embedded CA served to local workloads on a unix socket,
 * as a SPIRE agent serves SPIRE's.
 *
 * - `FetchX509SVID` streams the caller's SVID with the trust bundle, then a new message each
 *   time the SVID is rotated (after `rotateFraction` of its lifetime; default half of 1 h).
 * - `FetchX509Bundles` streams the bundle.
 * - The JWT-SVID methods answer Unimplemented.
 * Every request must carry `workload.spiffe.io: true` (InvalidArgument otherwise). The caller
 * is attested by the pid(s) on the other end of its connection (see ./peer.ts: root only) and
 * `resolveIdentity(pid)`, which the runtime provides (e.g. from the pid's environment or
 * cgroup). A caller that resolves to no identity, or whose fd holders disagree, gets
 * PermissionDenied.
 *
 * Connections are accepted by our own `net.Server` and handed to grpc-js through a connection
 * injector, after the peer lookup has started; calls find their connection's attestation by
 * the connection's label (the socket's `remoteAddress`, which grpc-js reports as the peer).
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import * as net from "node:net";
import { dirname } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  SpiffeWorkloadAPI,
  type X509BundlesResponse,
  X509BundlesResponseSchema,
  type X509SVIDResponse,
  X509SVIDResponseSchema,
  X509SVIDSchema,
} from "../../api/gen/workload_pb.js";
import { Code, invalidArgument, NsmError, permissionDenied } from "../../sdk/core/errors.js";
import type { Logger } from "../../sdk/core/logger.js";
import { silentLogger } from "../../sdk/core/logger.js";
import { grpcDefinition } from "../../sdk/grpc/service.js";
import type { CertificateAuthority } from "../ca.js";
import { SvidRotator } from "../source.js";
import { parseSpiffeId, trustDomainId } from "../spiffeid.js";
import { bundleDer, svidChainDer, svidKeyDer, type X509Svid } from "../x509.js";
import { addonNetlinkRequester, createUnixPeerLookup, type UnixPeerLookup } from "./peer.js";

/** The metadata header every Workload API request must carry. */
export const WORKLOAD_API_HEADER = "workload.spiffe.io";

/** Maps a caller's pid to its SPIFFE ID; undefined for a process with no identity. */
export type ResolveIdentity = (pid: number) => string | undefined | Promise<string | undefined>;

export interface WorkloadApiServerOptions {
  /** The CA that issues SVIDs. Required. */
  readonly ca: CertificateAuthority;
  /** Socket path, or `unix:///path`. Required. A stale file is replaced. */
  readonly socket: string;
  /** pid → SPIFFE ID (must be in the CA's trust domain). Required. */
  readonly resolveIdentity: ResolveIdentity;
  /** SVID lifetime. @default the CA's (1 h) */
  readonly svidTtlMs?: number;
  /** Rotate after this share of the lifetime. @default 0.5 */
  readonly rotateFraction?: number;
  /** How callers are found. @default sock_diag + /proc (./peer.ts) */
  readonly peerLookup?: UnixPeerLookup;
  /** Mode of the socket file. @default 0o777 (any local process may ask; attestation decides) */
  readonly socketMode?: number;
  readonly log?: Logger;
}

/** A running Workload API server. */
export interface WorkloadApiServer {
  /** The socket path. */
  readonly socketPath: string;
  /** The value for `SPIFFE_ENDPOINT_SOCKET` (`unix:///path`). */
  readonly endpoint: string;
  /** Stops accepting, ends every stream, stops rotations (idempotent). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function socketPathOf(socket: string): string {
  const path = socket.startsWith("unix://") ? socket.slice("unix://".length) : socket;
  if (!path.startsWith("/")) throw invalidArgument(`the Workload API socket must be an absolute path, got "${socket}"`);
  return path;
}

function svidResponse(svid: X509Svid, bundle: Buffer): X509SVIDResponse {
  return create(X509SVIDResponseSchema, {
    svids: [
      create(X509SVIDSchema, {
        spiffeId: svid.spiffeId,
        x509Svid: svidChainDer(svid),
        x509SvidKey: svidKeyDer(svid),
        bundle,
      }),
    ],
  });
}

/**
 * Subscribes at once (so nothing pushed from now on is missed) and yields what `subscribe`
 * pushes until `signal` aborts or the generator is returned.
 */
function follow<T>(subscribe: (push: (v: T) => void) => () => void, signal: AbortSignal): AsyncGenerator<T> {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = subscribe((v) => {
    queue.push(v);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  async function* run(): AsyncGenerator<T> {
    try {
      while (!signal.aborted) {
        const v = queue.shift();
        if (v !== undefined) {
          yield v;
          continue;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      unsubscribe();
    }
  }
  const it = run();
  const stop = it.return.bind(it);
  // A generator that never started ignores return(): clean up here too.
  it.return = (v) => {
    signal.removeEventListener("abort", onAbort);
    unsubscribe();
    return stop(v);
  };
  return it;
}

/** A server-streaming call with a signal that aborts when the client cancels or the server stops. */
type Call = grpc.ServerWritableStream<unknown, unknown> & { signal: AbortSignal };

/**
 * Writes what `produce` yields to a server-streaming call; an error ends the call with its
 * status (`emit("error")`, which grpc-js turns into the trailers), a client cancel stops it.
 */
function serveStream<T>(
  call: grpc.ServerWritableStream<unknown, unknown>,
  stop: AbortSignal,
  produce: (call: Call) => AsyncGenerator<T>,
): void {
  const ac = new AbortController();
  const onStop = () => ac.abort();
  call.on("cancelled", onStop);
  stop.addEventListener("abort", onStop, { once: true });
  const c = Object.assign(call, { signal: ac.signal });
  void (async () => {
    try {
      await writeAll(c, produce(c));
      if (!call.cancelled) call.end();
    } catch (err) {
      const e = NsmError.from(err, Code.Internal);
      if (!call.cancelled) call.emit("error", { code: e.code, details: e.rawMessage, metadata: new grpc.Metadata() });
    } finally {
      stop.removeEventListener("abort", onStop);
    }
  })();
}

/** Writes the items to the call, waiting for the stream to drain when it asks to, until the call stops. */
async function writeAll<T>(call: Call, items: AsyncGenerator<T>): Promise<void> {
  for await (const item of items) {
    if (call.signal.aborted) break;
    if (!call.write(item))
      await new Promise<void>((r) => {
        call.once("drain", r);
        call.signal.addEventListener("abort", () => r(), { once: true });
      });
  }
}

const JWT_UNIMPLEMENTED = "JWT-SVIDs are not implemented by this Workload API";

/** The calls of one Workload API server: caller attestation, SVID rotators by SPIFFE ID, the streams. */
class WorkloadApiHandlers {
  /** The pids found for each accepted connection, by connection label. */
  readonly attested = new Map<string, Promise<number[]>>();
  readonly rotators = new Map<string, SvidRotator>();
  readonly #bundle: Buffer;
  readonly #log: Logger;

  constructor(readonly options: Readonly<WorkloadApiServerOptions>) {
    this.#bundle = bundleDer(options.ca.bundle);
    this.#log = options.log ?? silentLogger;
  }

  async identify(metadata: grpc.Metadata, connection: string): Promise<string> {
    const header = metadata.get(WORKLOAD_API_HEADER);
    if (header.length !== 1 || header[0] !== "true") {
      throw invalidArgument("security header missing from request");
    }
    const pids = await (this.attested.get(connection) ?? Promise.resolve([]));
    if (pids.length === 0) {
      this.#log.warn({ connection }, "Workload API caller not found");
      throw permissionDenied("no identity issued");
    }
    const only = await this.#singleIdentity(pids);
    if (parseSpiffeId(only).trustDomain !== this.options.ca.trustDomain) {
      this.#log.error({ spiffeId: only }, "resolveIdentity returned an ID outside the CA's trust domain");
      throw permissionDenied("no identity issued");
    }
    this.#log.debug({ pids, spiffeId: only }, "Workload API caller attested");
    return only;
  }

  /** The one identity all `pids` resolve to; PermissionDenied when they have none or several. */
  async #singleIdentity(pids: number[]): Promise<string> {
    const ids = await Promise.all(pids.map(async (pid) => [pid, await this.options.resolveIdentity(pid)] as const));
    const distinct = new Set(ids.map(([, id]) => id));
    const [only] = distinct;
    if (distinct.size !== 1 || only === undefined) {
      this.#log.warn({ pids: ids.map(([pid, id]) => ({ pid, id })) }, "Workload API caller has no single identity");
      throw permissionDenied("no identity issued");
    }
    return only;
  }

  #rotatorFor(spiffeId: string): SvidRotator {
    let r = this.rotators.get(spiffeId);
    if (!r) {
      const { svidTtlMs: ttlMs, rotateFraction } = this.options;
      r = new SvidRotator(this.options.ca, spiffeId, { ttlMs, rotateFraction, log: this.#log });
      this.rotators.set(spiffeId, r);
    }
    return r;
  }

  #release(r: SvidRotator): void {
    if (r.listenerCount === 0 && this.rotators.get(r.spiffeId) === r) {
      r.close();
      this.rotators.delete(r.spiffeId);
    }
  }

  async *svids(call: Call): AsyncGenerator<X509SVIDResponse> {
    const spiffeId = await this.identify(call.metadata, call.getPeer());
    const rotator = this.#rotatorFor(spiffeId);
    const updates = follow<X509Svid>((push) => rotator.onSvid(push), call.signal);
    try {
      let last = await rotator.svid();
      yield svidResponse(last, this.#bundle);
      for await (const svid of updates) {
        if (svid === last) continue; // the first issuance is also announced to listeners
        last = svid;
        yield svidResponse(svid, this.#bundle);
      }
    } finally {
      await updates.return(undefined);
      this.#release(rotator);
    }
  }

  async *bundles(call: Call): AsyncGenerator<X509BundlesResponse> {
    await this.identify(call.metadata, call.getPeer());
    yield create(X509BundlesResponseSchema, {
      bundles: { [trustDomainId(this.options.ca.trustDomain)]: this.#bundle },
    });
    if (!call.signal.aborted) await new Promise((r) => call.signal.addEventListener("abort", r, { once: true }));
  }

  /** The gRPC server with the SpiffeWorkloadAPI service; streams stop when `stop` aborts. */
  grpcServer(stop: AbortSignal): grpc.Server {
    const unimplemented: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) =>
      callback({ code: grpc.status.UNIMPLEMENTED, details: JWT_UNIMPLEMENTED });
    const server = new grpc.Server();
    server.addService(grpcDefinition(SpiffeWorkloadAPI), {
      fetchX509SVID: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        serveStream(call, stop, (c) => this.svids(c)),
      fetchX509Bundles: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        serveStream(call, stop, (c) => this.bundles(c)),
      fetchJWTSVID: unimplemented,
      fetchJWTBundles: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: JWT_UNIMPLEMENTED }),
      validateJWTSVID: unimplemented,
    });
    return server;
  }
}

/** Listens on a unix socket (replacing a stale one) with the given mode. */
async function listenUnix(listener: net.Server, socketPath: string, mode: number): Promise<void> {
  mkdirSync(dirname(socketPath), { recursive: true });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(socketPath, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  chmodSync(socketPath, mode);
}

/** Starts the Workload API on a unix socket. */
export async function serveWorkloadApi(options: Readonly<WorkloadApiServerOptions>): Promise<WorkloadApiServer> {
  const log = options.log ?? silentLogger;
  const socketPath = socketPathOf(options.socket);
  const netlink = options.peerLookup ? undefined : addonNetlinkRequester();
  const lookup = options.peerLookup ?? createUnixPeerLookup(netlink!.request);
  const handlers = new WorkloadApiHandlers(options);
  const { attested, rotators } = handlers;
  const lifetime = new AbortController();
  let connections = 0;
  const server = handlers.grpcServer(lifetime.signal);
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());

  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const label = `workloadapi-connection-${++connections}`;
    // grpc-js reports the socket's remoteAddress as the call's peer: label the connection.
    Object.defineProperty(socket, "remoteAddress", { value: label, configurable: true });
    const pids = lookup(socket).catch((err: unknown) => {
      log.error({ err: String(err) }, "cannot find the Workload API caller's pid");
      return [] as number[];
    });
    attested.set(label, pids);
    socket.once("close", () => attested.delete(label));
    injector.injectConnection(socket);
  });
  await listenUnix(listener, socketPath, options.socketMode ?? 0o777);
  log.info({ socket: socketPath, trustDomain: options.ca.trustDomain }, "SPIFFE Workload API serving");

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      lifetime.abort();
      for (const r of rotators.values()) r.close();
      rotators.clear();
      injector.destroy();
      server.forceShutdown();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((r) => listener.close(() => r()));
      await netlink?.close();
      rmSync(socketPath, { force: true });
    })();
    return closing;
  };
  return { socketPath, endpoint: `unix://${socketPath}`, close, [Symbol.asyncDispose]: close };
}
