// SPDX-License-Identifier: Apache-2.0
/** The client half of the remote cross-connect: remembers the next hop's mechanism. */
import { clone, MechanismSchema } from "../../../api/index.js";
import type { NetworkServiceElement } from "../../../sdk/core/chain.js";
import { storeOutgoingMechanism } from "./metadata.js";

/**
 * Records the mechanism the next hop answered with (a tunnel on the NSC-side forwarder, the
 * endpoint's KERNEL on the NSE-side one) for `kernelRemoteXconnectServer`; forgets it on Close.
 * Goes in the forwarder's client chain (`additionalClient`).
 */
export function kernelRemoteXconnectClient(): NetworkServiceElement {
  return {
    name: "kernelRemoteXconnectClient",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      storeOutgoingMechanism(ctx, conn.mechanism ? clone(MechanismSchema, conn.mechanism) : undefined);
      return conn;
    },
    async close(conn, ctx, next) {
      storeOutgoingMechanism(ctx, undefined);
      await next.close(conn, ctx);
    },
  };
}
