// SPDX-License-Identifier: Apache-2.0
/** The WireGuard server: this node's end of the tunnel on a selected WIREGUARD mechanism. */
import { type Connection, MechanismType } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { fillTunnelEnd, serveTunnel } from "../remotemechanism/index.js";
import { checkPeerHalf } from "./common.js";
import { resolveOptions, type WireguardServerOptions } from "./options.js";

/**
 * On a selected WIREGUARD mechanism: checks the client's half (`src_ip`, `src_port`,
 * `src_public_key`), sets `dst_ip`, a per-connection `dst_port` (the same on every refresh) and
 * `dst_public_key`, sets the `MTU` parameter and lowers `context.MTU`. Frees the port on Close.
 */
export function wireguardServer(options: Readonly<WireguardServerOptions>): NetworkServiceElement {
  const o = resolveOptions("wireguardServer", options);
  return {
    name: "wireguardServer",
    async request(req, ctx, next) {
      if (req.connection?.mechanism?.type === MechanismType.WIREGUARD) {
        const bad = checkPeerHalf(req.connection.mechanism, "src");
        if (bad) throw bad;
      }
      const owner = `wireguardServer:${req.connection?.id}`;
      const first = o.ports.heldBy(owner) === undefined;
      const complete = (connection: Connection) => {
        const end = { ip: o.tunnelIp, port: o.ports.acquire(owner), publicKey: o.publicKey };
        fillTunnelEnd(connection.mechanism!, "dst", end, o.mtu);
      };
      return serveTunnel(req, ctx, next, MechanismType.WIREGUARD, complete, () => {
        if (first) o.ports.release(owner);
      });
    },
    async close(conn, ctx, next) {
      o.ports.release(`wireguardServer:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
