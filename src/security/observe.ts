// SPDX-License-Identifier: Apache-2.0
/**
 * Call observation: what a client-side element learns about the gRPC call made below it.
 *
 * The authorize clients need the server's certificate (to check `next_token_signed`) and the
 * registry grpcmetadata client needs the response header `path`, but the `connect` elements
 * that make the calls do not hand those back. An element runs the rest of its chain through
 * {@link observeCalls}, which puts an observation into the context's extra call options
 * (`callOptionsKey`); {@link callObserverInterceptor}, installed on the channel (see
 * `secureDialOptions`), finds it in the options of the call grpc-js creates, and fills it when
 * the response headers (or the status) arrive. Nothing extra goes on the wire. (A context value
 * rather than AsyncLocalStorage: async hooks would slow every promise of the process.)
 */
import type { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { CallContext } from "../sdk/core/context.js";
import { callOptionsKey } from "../sdk/grpc/service.js";
import { certificateOfPeer } from "./x509.js";

/** Facts about the last call made inside an {@link observeCalls} scope. */
export interface CallObservation {
  /** The server's leaf certificate (TLS channels only). */
  peerCertificate?: X509Certificate;
  /** The response headers. */
  responseHeaders?: grpc.Metadata;
  /** Calls observed so far. */
  calls: number;
}

/** The call option carrying the observation. */
const OBSERVATION = "nsm.callObservation";

/**
 * Runs `fn` with a context whose outgoing calls are observed, and returns its result with what
 * the observer saw. With `join`, an observation already open in `ctx` is shared instead of
 * starting a new one (the registry grpcmetadata client inside an authorize client).
 */
export async function observeCalls<T>(
  ctx: CallContext,
  fn: (ctx: CallContext) => Promise<T>,
  options: { join?: boolean } = {},
): Promise<{ result: T; observation: CallObservation }> {
  const extra = ctx.get(callOptionsKey);
  const existing = options.join ? (extra[OBSERVATION] as CallObservation | undefined) : undefined;
  if (existing) return { result: await fn(ctx), observation: existing };
  const observation: CallObservation = { calls: 0 };
  const result = await fn(ctx.with(callOptionsKey, { ...extra, [OBSERVATION]: observation }));
  return { result, observation };
}

function record(observation: CallObservation, call: grpc.InterceptingCall, headers?: grpc.Metadata): void {
  if (headers) observation.responseHeaders = headers;
  // The server of a call does not change between its headers and its status.
  else if (observation.peerCertificate) return;
  try {
    const cert = certificateOfPeer(call.getAuthContext()?.sslPeerCertificate);
    if (cert) observation.peerCertificate = cert;
  } catch {
    // No auth context yet (the call failed before a transport was picked).
  }
}

/**
 * The grpc-js client interceptor that fills observations. Calls made outside any
 * {@link observeCalls} scope pass through untouched.
 */
export const callObserverInterceptor: grpc.Interceptor = (options, nextCall) => {
  const observation = (options as unknown as Record<string, unknown>)[OBSERVATION] as CallObservation | undefined;
  if (!observation) return new grpc.InterceptingCall(nextCall(options));
  observation.calls++;
  const call: grpc.InterceptingCall = new grpc.InterceptingCall(nextCall(options), {
    start(metadata, _listener, next) {
      next(metadata, {
        onReceiveMetadata(md, nextMd) {
          record(observation, call, md);
          nextMd(md);
        },
        onReceiveStatus(status, nextStatus) {
          record(observation, call);
          nextStatus(status);
        },
      });
    },
  });
  return call;
};
