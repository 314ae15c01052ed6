// SPDX-License-Identifier: Apache-2.0
/** The VXLAN client: offers VXLAN with this node's tunnel end (upstream `vni.NewClient` + `mtu`). */
import { type Connection, MechanismType, Param } from "../../../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../../core/chain.js";
import { Code, NsmError } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import { fillTunnelEnd, lowerToMechanismMtu, offerMechanism } from "../remotemechanism/index.js";
import { parseVni, type VniRegistry } from "./common.js";
import { resolveOptions, type VxlanClientOptions } from "./options.js";

/** Records the VNI of a VXLAN answer as `owner`'s; the error to fail the Request with when that is not possible. */
function claimAnsweredVni(vnis: VniRegistry, owner: string, conn: Connection): NsmError | undefined {
  try {
    const vni = parseVni(conn.mechanism!.parameters[Param.VNI]);
    if (vni === 0) return new NsmError("the VXLAN answer has no vni", Code.InvalidArgument);
    if (!vnis.claim(owner, vni)) {
      // The peer chose a VNI that another tunnel of this node uses (the kernel would refuse it).
      return new NsmError(`VXLAN vni ${vni} chosen by the peer is already in use on this node`, Code.Unavailable, {
        reason: "vni-in-use",
      });
    }
    return undefined;
  } catch (err) {
    return NsmError.from(err, Code.InvalidArgument);
  }
}

/**
 * Offers a REMOTE/VXLAN preference (only for the configured payloads, ETHERNET by default) with
 * `src_ip`/`src_port` of this node and the `MTU` the tunnel leaves; on a refresh, refills them on
 * the connection's VXLAN mechanism. When the answer is VXLAN, records its VNI as in use on this
 * node and lowers `context.MTU` to the mechanism's MTU. Forgets the VNI on Close.
 */
export function vxlanClient(options: Readonly<VxlanClientOptions>): NetworkServiceElement {
  const o = resolveOptions("vxlanClient", options);
  const end = { ip: o.tunnelIp, port: o.port };
  return {
    name: "vxlanClient",
    async request(req, ctx, next) {
      const requested = requestConnection(req);
      const out = offerMechanism(req, MechanismType.VXLAN, o.payloads, (m) => fillTunnelEnd(m, "src", end, o.mtu));
      if (!out) return next.request(req, ctx);
      const owner = `vxlanClient:${requested.id}`;
      const first = o.vnis.heldBy(owner) === undefined;
      const conn = await next.request(out, ctx);
      if (conn.mechanism?.type !== MechanismType.VXLAN) {
        o.vnis.release(owner);
        return conn;
      }
      const failure = claimAnsweredVni(o.vnis, owner, conn);
      if (failure) {
        if (first) await closeQuietly(next, conn, ctx, "vxlanClient");
        throw failure;
      }
      return lowerToMechanismMtu(conn, MechanismType.VXLAN);
    },
    async close(conn, ctx, next) {
      o.vnis.release(`vxlanClient:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
