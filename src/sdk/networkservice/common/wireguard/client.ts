// SPDX-License-Identifier: Apache-2.0
/** The WireGuard client: offers WIREGUARD with this node's tunnel end and public key. */
import { type Connection, MechanismType } from "../../../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { fillTunnelEnd, lowerToMechanismMtu, offerMechanism } from "../remotemechanism/index.js";
import { checkPeerHalf } from "./common.js";
import { resolveOptions, type WireguardClientOptions } from "./options.js";

/**
 * Offers a REMOTE/WIREGUARD preference (only for the configured payloads, IP by default) with
 * this node's `src_ip`, a per-connection `src_port` and `src_public_key`, and the `MTU` the tunnel
 * leaves; refills them on a refresh. When the answer is WIREGUARD, checks the peer's half
 * (`dst_ip`, `dst_port`, `dst_public_key`) and lowers `context.MTU`. Frees the port on Close,
 * and when the answer is another mechanism.
 */
export function wireguardClient(options: Readonly<WireguardClientOptions>): NetworkServiceElement {
  const o = resolveOptions("wireguardClient", options);
  return {
    name: "wireguardClient",
    async request(req, ctx, next) {
      const owner = `wireguardClient:${requestConnection(req).id}`;
      const first = o.ports.heldBy(owner) === undefined;
      const out = offerMechanism(req, MechanismType.WIREGUARD, o.payloads, (m) =>
        fillTunnelEnd(m, "src", { ip: o.tunnelIp, port: o.ports.acquire(owner), publicKey: o.publicKey }, o.mtu),
      );
      if (!out) return next.request(req, ctx);
      let conn: Connection;
      try {
        conn = await next.request(out, ctx);
      } catch (err) {
        if (first) o.ports.release(owner);
        throw err;
      }
      if (conn.mechanism?.type !== MechanismType.WIREGUARD) {
        o.ports.release(owner);
        return conn;
      }
      const failure = checkPeerHalf(conn.mechanism, "dst");
      if (failure) {
        if (first) {
          await closeQuietly(next, conn, ctx, "wireguardClient");
          o.ports.release(owner);
        }
        throw failure;
      }
      return lowerToMechanismMtu(conn, MechanismType.WIREGUARD);
    },
    async close(conn, ctx, next) {
      o.ports.release(`wireguardClient:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
