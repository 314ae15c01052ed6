// SPDX-License-Identifier: Apache-2.0
/** The client half of the kernel cross-connect: remembers the endpoint's KERNEL mechanism. */
import { clone, MechanismSchema, MechanismType } from "../../../api/index.js";
import type { NetworkServiceElement } from "../../../sdk/core/chain.js";
import { deleteEndpointMechanism, storeEndpointMechanism } from "./metadata.js";

/**
 * Records the KERNEL mechanism the endpoint answered with (its `inodeURL` and `name`) in
 * client-side metadata, for `kernelXconnectServer`; forgets it on Close. Another mechanism type
 * clears the record. Goes in the forwarder's client chain (`additionalClient`).
 */
export function kernelXconnectClient(): NetworkServiceElement {
  return {
    name: "kernelXconnectClient",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const m = conn.mechanism;
      storeEndpointMechanism(ctx, m?.type === MechanismType.KERNEL ? clone(MechanismSchema, m) : undefined);
      return conn;
    },
    async close(conn, ctx, next) {
      deleteEndpointMechanism(ctx);
      await next.close(conn, ctx);
    },
  };
}
