// SPDX-License-Identifier: Apache-2.0
/**
 * Adapters between bound registry chains and registry clients.
 *
 * {@link registryServerToClient} lets a component call a registry chain in process (nsmgr
 * calling its own registry) with the same isolation a gRPC hop gives: the caller's record and
 * query are copied on the way in and the result on the way out, so neither side can change
 * the other's objects. {@link collectRecords} reads a non-watch Find to the end.
 */
import type { CallContext } from "../../core/context.js";
import type { NseRegistry, NsRegistry } from "../api.js";
import type { RegistryClient, RegistryHandler } from "./chain.js";
import { type NseTypes, type NsTypes, nseKind, nsKind, type RegistryKind, type RegistryTypes } from "./kind.js";

/** Wraps a bound chain (or any handler) as a registry client that copies what crosses it. */
export function registryServerToClient<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  handler: RegistryHandler<T> | RegistryClient<T>,
): RegistryClient<T> {
  return {
    register: async (rec, ctx) => kind.cloneRecord(await handler.register(kind.cloneRecord(rec), ctx)),
    find: (query, ctx) => handler.find(kind.cloneQuery(query), ctx),
    unregister: async (rec, ctx) => {
      await handler.unregister(kind.cloneRecord(rec), ctx);
    },
  };
}

/** {@link registryServerToClient} for the NS registry, typed as `NsRegistry`. */
export const nsRegistryFromChain = (handler: RegistryHandler<NsTypes>): NsRegistry =>
  registryServerToClient(nsKind, handler);

/** {@link registryServerToClient} for the NSE registry, typed as `NseRegistry`. */
export const nseRegistryFromChain = (handler: RegistryHandler<NseTypes>): NseRegistry =>
  registryServerToClient(nseKind, handler);

/**
 * Runs a Find and returns the records it yields (skipping `deleted` events), upstream's
 * `ReadNetworkServiceEndpointList`. Use with `watch=false` queries: a watch never ends on its own.
 */
export async function collectRecords<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  client: Pick<RegistryClient<T>, "find">,
  query: T["query"],
  ctx: CallContext,
): Promise<T["record"][]> {
  const out: T["record"][] = [];
  for await (const resp of client.find(query, ctx)) {
    const rec = kind.responseRecord(resp);
    if (rec && !kind.isDeleted(resp)) out.push(rec);
  }
  return out;
}
