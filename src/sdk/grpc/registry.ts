// SPDX-License-Identifier: Apache-2.0
/**
 * gRPC for the registries: serve both registry services, and call them.
 *
 * - {@link serveRegistry} registers `registry.NetworkServiceRegistry` and
 *   `registry.NetworkServiceEndpointRegistry` on a grpc-js server, backed by bound registry
 *   chains (for example `memoryRegistry()` or `nsmgrRegistry()`), or any registry client.
 * - {@link registryClients} returns `NsRegistry`/`NseRegistry` clients over a grpc-js channel;
 *   wrap them with the `connect` element to use them as the tail of a chain.
 *
 * The wire paths come from the generated service descriptors (reference §1.1). Errors travel
 * as gRPC statuses with the NsmError code; a watch Find ends when either side cancels.
 */

import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointRegistry, NetworkServiceRegistry } from "../../api/gen/registry_pb.js";
import type { NseRegistry, NsRegistry } from "../registry/api.js";
import { type AddServiceOptions, addService, grpcClient } from "./service.js";

/** The two registries a process serves or calls. */
export interface Registries {
  readonly ns: NsRegistry;
  readonly nse: NseRegistry;
}

/** Serves both registry services on `server`, backed by `registries`. */
export function serveRegistry(server: grpc.Server, registries: Registries, options: AddServiceOptions = {}): void {
  const { ns, nse } = registries;
  addService(
    server,
    NetworkServiceRegistry,
    {
      register: (rec, ctx) => ns.register(rec, ctx),
      find: (query, ctx) => ns.find(query, ctx),
      unregister: async (rec, ctx) => {
        await ns.unregister(rec, ctx);
        return create(EmptySchema);
      },
    },
    options,
  );
  addService(
    server,
    NetworkServiceEndpointRegistry,
    {
      register: (rec, ctx) => nse.register(rec, ctx),
      find: (query, ctx) => nse.find(query, ctx),
      unregister: async (rec, ctx) => {
        await nse.unregister(rec, ctx);
        return create(EmptySchema);
      },
    },
    options,
  );
}

/** Registry clients over an existing grpc-js channel (the caller owns and closes it). */
export function registryClients(channel: grpc.Client): Registries {
  return {
    ns: grpcClient(NetworkServiceRegistry, channel),
    nse: grpcClient(NetworkServiceEndpointRegistry, channel),
  };
}
