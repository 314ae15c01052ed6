// SPDX-License-Identifier: Apache-2.0
/** The VXLAN server: this node's end of the tunnel and the VNI (upstream `vni.NewServer` + `mtu`). */
import { type Connection, type Mechanism, MechanismType, Param } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { invalidArgument } from "../../../core/errors.js";
import { tryParseIp } from "../../../tools/cidr.js";
import { serveTunnel, setTunnelEnd, setTunnelMtu } from "../remotemechanism/index.js";
import { parseVni, type VniRegistry, vniMustBeOdd } from "./common.js";
import { resolveOptions, type VxlanServerOptions } from "./options.js";

/**
 * The VNI for `owner`'s connection: the one it holds if it still fits the request, else the
 * requested one when it fits and is free (e.g. after our restart), else a new one.
 */
function chooseVni(vnis: VniRegistry, owner: string, m: Mechanism, random?: () => number): number {
  const held = vnis.heldBy(owner);
  const requested = parseVni(m.parameters[Param.VNI]);
  const odd = vniMustBeOdd(m);
  const fits = (v: number | undefined): v is number => v !== undefined && v !== 0 && v % 2 === (odd ? 1 : 0);
  if (fits(held) && (requested === 0 || requested === held)) return held;
  if (fits(requested) && vnis.claim(owner, requested)) return requested;
  return vnis.allocate(owner, odd, random);
}

/**
 * On a selected VXLAN mechanism: sets `dst_ip`/`dst_port` to this node's tunnel end, picks the
 * VNI (parity rule, unique on this forwarder, the same one on every refresh), sets the `MTU`
 * parameter and lowers `context.MTU` to what the tunnel leaves. Releases the VNI on Close.
 */
export function vxlanServer(options: Readonly<VxlanServerOptions>): NetworkServiceElement {
  const o = resolveOptions("vxlanServer", options);
  const end = { ip: o.tunnelIp, port: o.port };
  return {
    name: "vxlanServer",
    async request(req, ctx, next) {
      const owner = `vxlanServer:${req.connection?.id}`;
      const held = o.vnis.heldBy(owner);
      const complete = (connection: Connection) => {
        const m = connection.mechanism!;
        const src = m.parameters[Param.SRC_IP] ?? "";
        if (!tryParseIp(src))
          throw invalidArgument(`VXLAN mechanism: src_ip ${JSON.stringify(src)} is not an IP address`);
        setTunnelEnd(m, "dst", end);
        // The parity rule reads both ends: this one is set first.
        m.parameters[Param.VNI] = String(chooseVni(o.vnis, owner, m, options.random));
        setTunnelMtu(m, o.mtu);
      };
      return serveTunnel(req, ctx, next, MechanismType.VXLAN, complete, () => {
        if (held === undefined) o.vnis.release(owner);
      });
    },
    async close(conn, ctx, next) {
      o.vnis.release(`vxlanServer:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
