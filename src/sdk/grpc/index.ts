// SPDX-License-Identifier: Apache-2.0
/**
 * The gRPC glue, all in this folder: how chains become grpc-js services and clients, and how
 * processes listen on and dial NSM URLs.
 *
 * - `service.ts`: {@link addService} serves a `(request, ctx)` implementation of a generated
 *   service; {@link grpcClient} calls one; NsmError ↔ gRPC status; the call's peer facts.
 * - `dial.ts`: NSM URLs (`unix:///path`, `tcp://host:port`) to channels, pooled channels,
 *   waiting for a channel to connect.
 * - `listen.ts`: binding a server on NSM URLs, and shutting it down.
 * - `registry.ts`: both registry services served from, or called as, registry chains.
 *
 * The wire API itself (messages, service descriptors) is `src/api`, which knows nothing of this.
 */
export type { DialOptions, ParsedUrl } from "./dial.js";
export {
  acquireChannel,
  type ChannelLease,
  closeChannel,
  dialChannel,
  grpcTarget,
  parseNsmUrl,
  RECONNECT_BACKOFF_OPTIONS,
  waitForReady,
} from "./dial.js";
export { bindUrls, shutdown } from "./listen.js";
export { type Registries, registryClients, serveRegistry } from "./registry.js";
export type { AddServiceOptions, ClientCallOptions, GrpcPeer, ServiceClient, ServiceImpl } from "./service.js";
export { addService, callOptionsKey, grpcClient, grpcDefinition, grpcPeerKey, outgoingMetadataKey } from "./service.js";
