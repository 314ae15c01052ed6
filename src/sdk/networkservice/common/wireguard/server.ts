// SPDX-License-Identifier: Apache-2.0
/** The WireGuard server: this node's end of the tunnel on a selected WIREGUARD mechanism. */
import { type Connection, ConnectionSchema, clone, MechanismType, Param } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { lowerContextMtu, lowerMtu, mechanismMtu } from "../../../tools/tunnel.js";
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
      if (!req.connection || req.connection.mechanism?.type !== MechanismType.WIREGUARD) return next.request(req, ctx);
      const bad = checkPeerHalf(req.connection.mechanism, "src");
      if (bad) throw bad;
      const connection = clone(ConnectionSchema, req.connection);
      const owner = `wireguardServer:${connection.id}`;
      const first = o.ports.heldBy(owner) === undefined;
      const p = connection.mechanism!.parameters;
      p[Param.DST_IP] = o.tunnelIp;
      p[Param.DST_PORT] = String(o.ports.acquire(owner));
      p[Param.DST_PUBLIC_KEY] = o.publicKey;
      p[Param.MTU] = String(lowerMtu(mechanismMtu(connection.mechanism), o.mtu));
      lowerContextMtu(connection, mechanismMtu(connection.mechanism));
      let conn: Connection;
      try {
        conn = await next.request({ ...req, connection }, ctx);
      } catch (err) {
        if (first) o.ports.release(owner);
        throw err;
      }
      if (conn.mechanism?.type !== MechanismType.WIREGUARD) return conn;
      const out = clone(ConnectionSchema, conn);
      lowerContextMtu(out, mechanismMtu(out.mechanism));
      return out;
    },
    async close(conn, ctx, next) {
      o.ports.release(`wireguardServer:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
