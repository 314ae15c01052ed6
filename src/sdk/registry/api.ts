// SPDX-License-Identifier: Apache-2.0
/**
 * The registry client shapes that the rest of the SDK depends on.
 *
 * They match both a remote registry reached over gRPC (`grpcClient(NetworkServiceRegistry, …)`)
 * and an in-process registry chain, so elements such as discover can use either.
 */

import type {
  NetworkService,
  NetworkServiceEndpoint,
  NetworkServiceEndpointQuery,
  NetworkServiceEndpointResponse,
  NetworkServiceQuery,
  NetworkServiceResponse,
} from "../../api/gen/registry_pb.js";
import type { CallContext } from "../core/context.js";

/** The NetworkService registry: a remote one over gRPC or a local chain, alike. */
export interface NsRegistry {
  register(ns: NetworkService, ctx: CallContext): Promise<NetworkService>;
  /** With `watch=false` the stream ends after the current matches; with `watch=true` it follows changes until ctx aborts. */
  find(query: NetworkServiceQuery, ctx: CallContext): AsyncIterable<NetworkServiceResponse>;
  unregister(ns: NetworkService, ctx: CallContext): Promise<unknown>;
}

/** The NetworkServiceEndpoint registry: a remote one over gRPC or a local chain, alike. */
export interface NseRegistry {
  register(nse: NetworkServiceEndpoint, ctx: CallContext): Promise<NetworkServiceEndpoint>;
  find(query: NetworkServiceEndpointQuery, ctx: CallContext): AsyncIterable<NetworkServiceEndpointResponse>;
  unregister(nse: NetworkServiceEndpoint, ctx: CallContext): Promise<unknown>;
}
