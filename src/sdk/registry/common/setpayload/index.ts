// SPDX-License-Identifier: Apache-2.0
/**
 * setpayload (registry, NS): gives a NetworkService without a payload the default payload.
 *
 * Purpose: upstream treats an empty `payload` as `IP` (reference §7.1); storing it explicitly
 * lets Find by payload and the forwarder's discover see the real value.
 * Chain placement: before the storage (memory) on the NS registry.
 * Per-name state: none.
 * Options: the default payload (`"IP"`).
 * Failure behaviour: none of its own; the caller's record is never changed (a copy is sent on).
 */
import type { CallContext } from "../../../core/context.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import { type NsTypes, nsKind } from "../../core/kind.js";

/** Upstream's default NetworkService payload. */
export const DEFAULT_NS_PAYLOAD = "IP";

/** Creates the setpayload element for the NS registry. */
export function registrySetPayload(defaultPayload: string = DEFAULT_NS_PAYLOAD): RegistryElement<NsTypes> {
  return {
    name: "setpayload",
    register(record: NsTypes["record"], ctx: CallContext, next: RegistryHandler<NsTypes>) {
      if (record.payload !== "") return next.register(record, ctx);
      const out = nsKind.cloneRecord(record);
      out.payload = defaultPayload;
      return next.register(out, ctx);
    },
    find: (query, ctx, next) => next.find(query, ctx),
    unregister: (record, ctx, next) => next.unregister(record, ctx),
  };
}
