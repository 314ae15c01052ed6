// SPDX-License-Identifier: Apache-2.0
/** The WireGuard client: offers WIREGUARD with this node's tunnel end and public key. */
import {
  Cls,
  type Connection,
  ConnectionSchema,
  clone,
  type Mechanism,
  MechanismSchema,
  MechanismType,
  type NetworkServiceRequest,
  newMechanism,
  Param,
  Payload,
} from "../../../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { lowerContextMtu, lowerMtu, mechanismMtu } from "../../../tools/tunnel.js";
import { checkPeerHalf } from "./common.js";
import { type Resolved, resolveOptions, type WireguardClientOptions } from "./options.js";

const isWireguard = (m: Mechanism | undefined): m is Mechanism => m?.type === MechanismType.WIREGUARD;

function fill(o: Resolved, m: Mechanism, port: number): Mechanism {
  const c = clone(MechanismSchema, m);
  c.parameters[Param.SRC_IP] = o.tunnelIp;
  c.parameters[Param.SRC_PORT] = String(port);
  c.parameters[Param.SRC_PUBLIC_KEY] = o.publicKey;
  c.parameters[Param.MTU] = String(lowerMtu(mechanismMtu(c), o.mtu));
  return c;
}

/** The request to send, or undefined when WireGuard is not for this request. */
function outgoing(o: Resolved, req: NetworkServiceRequest, port: () => number): NetworkServiceRequest | undefined {
  const conn = req.connection!;
  if (isWireguard(conn.mechanism)) {
    const connection = clone(ConnectionSchema, conn);
    connection.mechanism = fill(o, conn.mechanism, port());
    return { ...req, connection };
  }
  // Upstream treats an empty payload as IP.
  if (conn.mechanism || !o.payloads.has(conn.payload || Payload.IP)) return undefined;
  const prefs = req.mechanismPreferences;
  const mechanismPreferences = prefs.some(isWireguard)
    ? prefs.map((m) => (isWireguard(m) ? fill(o, m, port()) : m))
    : [...prefs, fill(o, newMechanism(Cls.REMOTE, MechanismType.WIREGUARD), port())];
  return { ...req, mechanismPreferences };
}

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
      const out = outgoing(o, req, () => o.ports.acquire(owner));
      if (!out) return next.request(req, ctx);
      let conn: Connection;
      try {
        conn = await next.request(out, ctx);
      } catch (err) {
        if (first) o.ports.release(owner);
        throw err;
      }
      if (!isWireguard(conn.mechanism)) {
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
      const back = clone(ConnectionSchema, conn);
      lowerContextMtu(back, mechanismMtu(back.mechanism));
      return back;
    },
    async close(conn, ctx, next) {
      o.ports.release(`wireguardClient:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
