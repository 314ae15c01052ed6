// SPDX-License-Identifier: Apache-2.0
/**
 * An X.509 source fed by a SPIFFE Workload API (a SPIRE agent, or `serveWorkloadApi`).
 *
 * `createX509Source({ socket })` opens `FetchX509SVID` with the `workload.spiffe.io: true`
 * header, resolves once the first SVID and bundle arrive, and keeps the stream open: every later
 * message (a rotation) becomes the new `current()` and is announced to subscribers. When the
 * stream breaks it reconnects with exponential backoff (up to `maxRetryMs`), keeping the last
 * snapshot meanwhile. The socket address is what `SPIFFE_ENDPOINT_SOCKET` holds:
 * `unix:///path`, `unix:/path`, or `tcp://host:port`.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { SpiffeWorkloadAPI, X509SVIDRequestSchema, type X509SVIDResponse } from "../../api/gen/workload_pb.js";
import { CallContext, sleep } from "../../sdk/core/context.js";
import { Code, invalidArgument, NsmError } from "../../sdk/core/errors.js";
import type { Logger } from "../../sdk/core/logger.js";
import { silentLogger } from "../../sdk/core/logger.js";
import { closeChannel } from "../../sdk/grpc/dial.js";
import { grpcClient, outgoingMetadataKey, type ServiceClient } from "../../sdk/grpc/service.js";
import { SnapshotHolder, type X509Snapshot, type X509Source } from "../source.js";
import { parseSpiffeId } from "../spiffeid.js";
import { createBundle, parseDerCertificates, svidFromDer, type X509Bundle } from "../x509.js";
import { WORKLOAD_API_HEADER } from "./server.js";

/** The env var naming the Workload API socket. */
export const SPIFFE_ENDPOINT_SOCKET_ENV = "SPIFFE_ENDPOINT_SOCKET";

export interface X509SourceOptions {
  /** The Workload API address (the value of SPIFFE_ENDPOINT_SOCKET). Required. */
  readonly socket: string;
  /** How long to wait for the first SVID. @default 15000 */
  readonly timeoutMs?: number;
  /** First reconnect delay; doubles up to `maxRetryMs`. @default 200 */
  readonly retryMs?: number;
  /** @default 10000 */
  readonly maxRetryMs?: number;
  readonly log?: Logger;
}

/** The grpc-js target of a SPIFFE_ENDPOINT_SOCKET value. */
export function workloadApiTarget(socket: string): string {
  if (socket.startsWith("unix://")) {
    const path = socket.slice("unix://".length);
    if (path.startsWith("/")) return `unix://${path}`;
  } else if (socket.startsWith("unix:/")) {
    return `unix://${socket.slice("unix:".length)}`;
  } else if (socket.startsWith("tcp://")) {
    const hostPort = socket.slice("tcp://".length);
    if (/^[^/]+:\d+$/.test(hostPort)) return hostPort;
  }
  throw invalidArgument(`"${socket}" is not a Workload API address (unix:///path or tcp://ip:port)`);
}

/** Turns a Workload API response into a snapshot (the first SVID is the default one). */
export function snapshotFromResponse(resp: X509SVIDResponse): Omit<X509Snapshot, "version"> {
  const first = resp.svids[0];
  if (!first) throw invalidArgument("the Workload API returned no X.509-SVID");
  const svids = resp.svids.map((s) => svidFromDer(s.x509Svid, s.x509SvidKey, s.spiffeId, s.hint));
  const { trustDomain } = parseSpiffeId(svids[0]!.spiffeId);
  const bundle = createBundle(trustDomain, parseDerCertificates(first.bundle));
  if (bundle.certificates.length === 0) throw invalidArgument("the Workload API returned an empty trust bundle");
  const federatedBundles = new Map<string, X509Bundle>();
  for (const [id, der] of Object.entries(resp.federatedBundles)) {
    const td = parseSpiffeId(id).trustDomain;
    federatedBundles.set(td, createBundle(td, parseDerCertificates(der)));
  }
  return { svid: svids[0]!, svids, bundle, federatedBundles };
}

/** Whether `p` resolves within `ms`. */
async function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), ms);
  });
  const outcome = await Promise.race([p, timedOut]);
  clearTimeout(timer);
  return outcome !== "timeout";
}

/**
 * Follows one X.509-SVID stream, putting each answer in `holder` and calling `onUpdate`, until it
 * breaks (resolves with why) or `signal` aborts (undefined).
 */
async function followSvidStream(
  client: ServiceClient<typeof SpiffeWorkloadAPI>,
  holder: SnapshotHolder,
  signal: AbortSignal,
  log: Logger,
  onUpdate: () => void,
): Promise<{ error: unknown } | undefined> {
  const ctx = CallContext.create({ signal, log }).with(outgoingMetadataKey, { [WORKLOAD_API_HEADER]: "true" });
  try {
    for await (const resp of client.fetchX509SVID(create(X509SVIDRequestSchema, {}), ctx)) {
      const snapshot = holder.set(snapshotFromResponse(resp));
      log.debug(
        { spiffeId: snapshot.svid.spiffeId, notAfter: snapshot.svid.notAfter.toISOString() },
        "X.509-SVID update",
      );
      onUpdate();
    }
    if (signal.aborted) return undefined;
    return { error: new NsmError("the Workload API ended the stream", Code.Unavailable) };
  } catch (err) {
    return signal.aborted ? undefined : { error: err };
  }
}

/** Connects to the Workload API and resolves with a live source once the first SVID arrives. */
export async function createX509Source(options: Readonly<X509SourceOptions>): Promise<X509Source> {
  const log = options.log ?? silentLogger;
  const target = workloadApiTarget(options.socket);
  const channel = new grpc.Client(target, grpc.credentials.createInsecure(), { "grpc.enable_retries": 0 });
  const client = grpcClient(SpiffeWorkloadAPI, channel);
  const holder = new SnapshotHolder(log);
  const lifetime = new AbortController();
  const retryMs = options.retryMs ?? 200;
  const maxRetryMs = options.maxRetryMs ?? 10_000;

  let resolveFirst!: () => void;
  let lastError: unknown;
  const first = new Promise<void>((r) => {
    resolveFirst = r;
  });

  const run = async () => {
    let delay = retryMs;
    while (!lifetime.signal.aborted) {
      const broke = await followSvidStream(client, holder, lifetime.signal, log, () => {
        delay = retryMs;
        resolveFirst();
      });
      if (!broke) return;
      lastError = broke.error;
      log.warn({ err: String(lastError), retryInMs: delay }, "Workload API stream broke; reconnecting");
      try {
        await sleep(delay, lifetime.signal);
      } catch {
        return;
      }
      delay = Math.min(delay * 2, maxRetryMs);
    }
  };
  const running = run();

  const close = () => {
    if (lifetime.signal.aborted) return;
    lifetime.abort();
    holder.clear();
    closeChannel(channel);
  };
  const timeoutMs = options.timeoutMs ?? 15_000;
  if (!(await settlesWithin(first, timeoutMs))) {
    close();
    await running;
    throw new NsmError(
      `no X.509-SVID from the Workload API at ${options.socket} within ${timeoutMs} ms: ${String(lastError ?? "no answer")}`,
      Code.Unavailable,
      { cause: lastError },
    );
  }
  return {
    current: () => holder.current(),
    subscribe: (l) => holder.subscribe(l),
    close,
    [Symbol.dispose]: close,
  };
}
