// SPDX-License-Identifier: Apache-2.0
/**
 * connect (registry): the tail that hands every call to a registry client.
 *
 * Purpose: nsmgr forwards NSE and NS registrations to the cluster registry, and NSEs reach
 * their nsmgr, through a client: usually the gRPC client from `registryClients(channel)`,
 * or an in-process chain wrapped by `registryServerToClient`.
 * Chain placement: last. It does not call `next`.
 * Per-name state: none.
 * Options: the client (`NsRegistry`, `NseRegistry`, or any `RegistryClient`).
 * Failure behaviour: errors of the client (NsmErrors translated from gRPC statuses) are
 * returned as they are. A watch Find ends when `ctx.signal` aborts.
 */
import type { CallContext } from "../../../core/context.js";
import type { RegistryClient, RegistryElement } from "../../core/chain.js";
import type { RegistryTypes } from "../../core/kind.js";

/** Creates the connect tail over `client`. */
export function registryConnect<T extends RegistryTypes>(client: RegistryClient<T>): RegistryElement<T> {
  return {
    name: "connect",
    register: (record: T["record"], ctx: CallContext) => client.register(record, ctx),
    find: (query: T["query"], ctx: CallContext) => client.find(query, ctx),
    async unregister(record: T["record"], ctx: CallContext) {
      await client.unregister(record, ctx);
    },
  };
}
