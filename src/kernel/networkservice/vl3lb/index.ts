// SPDX-License-Identifier: Apache-2.0
/**
 * vl3lb (kernel): the vL3 load balancer's data plane (upstream cmd-lb-vl3-vpp does it with VPP's
 * cnat). In the balancer's own netns, nftables NAT sends what arrives for its vL3 address and
 * service port to one of the selected clients ("real servers") at the target port, round robin
 * (`numgen inc`), and masquerades it, so the answers come back through the balancer. The netns
 * forwards (IPv4 forwarding on); the whole ruleset is replaced when the backends change, and an
 * empty backend list answers nothing.
 * `nft` (Debian's nftables) runs as a child process, as the firewall's ACL does.
 */
import { runNft } from "../acl/nftables.js";

/** The nftables table of the balancer. */
export const LB_TABLE = "nsm_vl3_lb";

/** What the balancer forwards. */
export interface LbConfig {
  /** The balancer's vL3 address (the virtual IP). */
  readonly vip: string;
  readonly protocol: "tcp" | "udp";
  readonly port: number;
  readonly targetPort: number;
  /** The real servers' addresses (IPv4). */
  readonly backends: readonly string[];
}

/** The `nft -f` script: (re)creates {@link LB_TABLE} for `c`. */
export function lbRuleset(c: LbConfig): string {
  const lines = [`table ip ${LB_TABLE}`, `delete table ip ${LB_TABLE}`, `table ip ${LB_TABLE} {`];
  lines.push("  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;");
  if (c.backends.length > 0) {
    const map = c.backends.map((b, i) => `${i} : ${b}`).join(", ");
    lines.push(
      `    ip daddr ${c.vip} ${c.protocol} dport ${c.port} dnat to numgen inc mod ${c.backends.length} map { ${map} } : ${c.targetPort}`,
    );
  }
  lines.push("  }", "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;");
  if (c.backends.length > 0) {
    lines.push(
      `    ip daddr { ${c.backends.join(", ")} } ${c.protocol} dport ${c.targetPort} ct status dnat masquerade`,
    );
  }
  lines.push("  }", "}", "");
  return lines.join("\n");
}

/** Installs (or replaces) the balancer's rules in this process's netns. */
export function installLb(c: LbConfig): Promise<void> {
  return runNft(["-f", "-"], lbRuleset(c));
}

/** Removes the balancer's table (nothing if absent). */
export function removeLb(): Promise<void> {
  return runNft(["-f", "-"], `table ip ${LB_TABLE}\ndelete table ip ${LB_TABLE}\n`);
}
