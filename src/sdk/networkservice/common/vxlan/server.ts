// SPDX-License-Identifier: Apache-2.0
/** The VXLAN server: this node's end of the tunnel and the VNI (upstream `vni.NewServer` + `mtu`). */
import { ConnectionSchema, clone, MechanismType, Param } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { invalidArgument } from "../../../core/errors.js";
import { tryParseIp } from "../../../tools/cidr.js";
import { lowerContextMtu, lowerMtu, mechanismMtu } from "../../../tools/tunnel.js";
import { parseVni, vniMustBeOdd } from "./common.js";
import { resolveOptions, type VxlanServerOptions } from "./options.js";

/**
 * On a selected VXLAN mechanism: sets `dst_ip`/`dst_port` to this node's tunnel end, picks the
 * VNI (parity rule, unique on this forwarder, the same one on every refresh), sets the `MTU`
 * parameter and lowers `context.MTU` to what the tunnel leaves. Releases the VNI on Close.
 */
export function vxlanServer(options: Readonly<VxlanServerOptions>): NetworkServiceElement {
  const o = resolveOptions("vxlanServer", options);
  const random = options.random;
  return {
    name: "vxlanServer",
    async request(req, ctx, next) {
      if (!req.connection || req.connection.mechanism?.type !== MechanismType.VXLAN) return next.request(req, ctx);
      const connection = clone(ConnectionSchema, req.connection);
      const m = connection.mechanism!;
      const p = m.parameters;
      const src = p[Param.SRC_IP] ?? "";
      if (!tryParseIp(src))
        throw invalidArgument(`VXLAN mechanism: src_ip ${JSON.stringify(src)} is not an IP address`);
      p[Param.DST_IP] = o.tunnelIp;
      p[Param.DST_PORT] = String(o.port);

      const owner = `vxlanServer:${connection.id}`;
      const held = o.vnis.heldBy(owner);
      const requested = parseVni(p[Param.VNI]);
      const odd = vniMustBeOdd(m);
      const fits = (v: number | undefined): v is number => v !== undefined && v !== 0 && v % 2 === (odd ? 1 : 0);
      let vni: number;
      if (fits(held) && (requested === 0 || requested === held)) vni = held;
      else if (fits(requested) && o.vnis.claim(owner, requested))
        vni = requested; // e.g. after our restart
      else vni = o.vnis.allocate(owner, odd, random);
      p[Param.VNI] = String(vni);
      p[Param.MTU] = String(lowerMtu(mechanismMtu(m), o.mtu));
      lowerContextMtu(connection, mechanismMtu(m));

      let conn: Awaited<ReturnType<typeof next.request>>;
      try {
        conn = await next.request({ ...req, connection }, ctx);
      } catch (err) {
        if (held === undefined) o.vnis.release(owner);
        throw err;
      }
      if (conn.mechanism?.type !== MechanismType.VXLAN) return conn;
      const out = clone(ConnectionSchema, conn);
      lowerContextMtu(out, mechanismMtu(out.mechanism));
      return out;
    },
    async close(conn, ctx, next) {
      o.vnis.release(`vxlanServer:${conn.id}`);
      await next.close(conn, ctx);
    },
  };
}
