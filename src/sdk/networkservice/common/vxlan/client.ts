// SPDX-License-Identifier: Apache-2.0
/** The VXLAN client: offers VXLAN with this node's tunnel end (upstream `vni.NewClient` + `mtu`). */
import {
  Cls,
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
import { Code, NsmError } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import { lowerContextMtu, lowerMtu, mechanismMtu } from "../../../tools/tunnel.js";
import { parseVni } from "./common.js";
import { type Resolved, resolveOptions, type VxlanClientOptions } from "./options.js";

const isVxlan = (m: Mechanism | undefined): m is Mechanism => m?.type === MechanismType.VXLAN;

function fill(o: Resolved, m: Mechanism): Mechanism {
  const c = clone(MechanismSchema, m);
  c.parameters[Param.SRC_IP] = o.tunnelIp;
  c.parameters[Param.SRC_PORT] = String(o.port);
  c.parameters[Param.MTU] = String(lowerMtu(mechanismMtu(c), o.mtu));
  return c;
}

/** The request to send: the refreshed VXLAN mechanism, or the preferences with ours. Undefined: not ours to touch. */
function outgoing(o: Resolved, req: NetworkServiceRequest): NetworkServiceRequest | undefined {
  const conn = req.connection!;
  if (isVxlan(conn.mechanism)) {
    const connection = clone(ConnectionSchema, conn);
    connection.mechanism = fill(o, conn.mechanism);
    return { ...req, connection };
  }
  // Upstream treats an empty payload as IP.
  if (conn.mechanism || !o.payloads.has(conn.payload || Payload.IP)) return undefined;
  const prefs = req.mechanismPreferences;
  const mechanismPreferences = prefs.some(isVxlan)
    ? prefs.map((m) => (isVxlan(m) ? fill(o, m) : m))
    : [...prefs, fill(o, newMechanism(Cls.REMOTE, MechanismType.VXLAN))];
  return { ...req, mechanismPreferences };
}

/**
 * Offers a REMOTE/VXLAN preference (only for the configured payloads, ETHERNET by default) with
 * `src_ip`/`src_port` of this node and the `MTU` the tunnel leaves; on a refresh, refills them on
 * the connection's VXLAN mechanism. When the answer is VXLAN, records its VNI as in use on this
 * node and lowers `context.MTU` to the mechanism's MTU. Forgets the VNI on Close.
 */
export function vxlanClient(options: Readonly<VxlanClientOptions>): NetworkServiceElement {
  const o = resolveOptions("vxlanClient", options);
  return {
    name: "vxlanClient",
    async request(req, ctx, next) {
      const requested = requestConnection(req);
      const out = outgoing(o, req);
      if (!out) return next.request(req, ctx);
      const owner = `vxlanClient:${requested.id}`;
      const first = o.vnis.heldBy(owner) === undefined;
      const conn = await next.request(out, ctx);
      if (!isVxlan(conn.mechanism)) {
        o.vnis.release(owner);
        return conn;
      }
      let failure: NsmError | undefined;
      try {
        const vni = parseVni(conn.mechanism.parameters[Param.VNI]);
        if (vni === 0) failure = new NsmError("the VXLAN answer has no vni", Code.InvalidArgument);
        else if (!o.vnis.claim(owner, vni)) {
          // The peer chose a VNI that another tunnel of this node uses (the kernel would refuse it).
          failure = new NsmError(
            `VXLAN vni ${vni} chosen by the peer is already in use on this node`,
            Code.Unavailable,
            {
              reason: "vni-in-use",
            },
          );
        }
      } catch (err) {
        failure = NsmError.from(err, Code.InvalidArgument);
      }
      if (failure) {
        if (first) await closeQuietly(next, conn, ctx, "vxlanClient");
        throw failure;
      }
      const back = clone(ConnectionSchema, conn);
      lowerContextMtu(back, mechanismMtu(back.mechanism));
      return back;
    },
    async close(conn, ctx, next) {
      o.vnis.release(`vxlanClient:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
