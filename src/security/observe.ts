// SPDX-License-Identifier: Apache-2.0
/**
 * Call observation: what a client-side element learns about the gRPC call made below it.
 *
 * The authorize clients need the server's certificate (to check `next_token_signed`) and the
 * registry grpcmetadata client needs the response header `path`, but the `connect` elements
 * that make the calls do not hand those back. An element runs the rest of its chain inside
 * {@link observeCalls}; {@link callObserverInterceptor}, installed on the channel (see
 * `secureDialOptions`), finds that observation through AsyncLocalStorage when grpc-js creates
 * the call, and fills it when the response headers (or the status) arrive. Nothing extra goes
 * on the wire.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
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

const store = new AsyncLocalStorage<CallObservation>();

/**
 * Runs `fn` and returns its result with what the observer saw of the calls it made. With
 * `join`, an observation already open in an enclosing scope is shared instead of starting a new
 * one (the registry grpcmetadata client inside an authorize client).
 */
export async function observeCalls<T>(
  fn: () => Promise<T>,
  options: { join?: boolean } = {},
): Promise<{ result: T; observation: CallObservation }> {
  const existing = options.join ? store.getStore() : undefined;
  const observation = existing ?? { calls: 0 };
  const result = existing ? await fn() : await store.run(observation, fn);
  return { result, observation };
}

function record(observation: CallObservation, call: grpc.InterceptingCall, headers?: grpc.Metadata): void {
  if (headers) observation.responseHeaders = headers;
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
  const observation = store.getStore();
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
