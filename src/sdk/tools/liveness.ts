// SPDX-License-Identifier: Apache-2.0
/**
 * What the NSC's data-plane liveness check (upstream cmd-nsc's kernel liveness check) probes: the
 * connection is alive when every destination address of its IP context answers one ICMP echo
 * sent from the matching source address. The echoes themselves are sent by the kernel layer
 * (`icmpLivenessCheck` in src/kernel/icmp.ts).
 */
import type { Connection } from "../../api/index.js";

/** The address part of "10.0.0.1/32" (or an address without prefix). */
const addressOf = (cidr: string) => cidr.split("/")[0]!;
const isV6 = (ip: string) => ip.includes(":");

/**
 * The pairs {src, dst} a liveness check pings for `conn`: every destination address, each from
 * the first source address of its family (none if the connection has no such source).
 */
export function livenessTargets(conn: Connection): { src: string; dst: string }[] {
  const ipc = conn.context?.ipContext;
  if (!ipc) return [];
  const srcs = ipc.srcIpAddrs.map(addressOf);
  const out: { src: string; dst: string }[] = [];
  for (const dst of ipc.dstIpAddrs.map(addressOf)) {
    const src = srcs.find((s) => isV6(s) === isV6(dst));
    if (src) out.push({ src, dst });
  }
  return out;
}
