// SPDX-License-Identifier: Apache-2.0
/**
 * ACL rules as an nftables ruleset for a bump-in-the-wire endpoint (L2 passthrough through a
 * Linux bridge in the endpoint's own netns).
 *
 * Upstream's firewall applies a VPP ACL to the traffic that enters from the client side of the
 * cross-connect: first matching rule wins, no match is a deny, and frames that are not IP (ARP)
 * are not filtered. Here the same in the `bridge` family's forward hook: frames entering from an
 * outgoing port (named with {@link OUTGOING_PORT_PREFIX}) are the return direction and pass; the
 * rest go through the rules in order, then `drop`. No rules: nothing is filtered (as upstream
 * without a config file). Stateless, as a VPP ACL without reflect.
 *
 * `nft` (Debian's nftables) is run as a child process, in the endpoint's own netns, at start and
 * stop only: this is the endpoint's configuration, not the data path. No maintained npm library
 * speaks nf_tables netlink.
 */
import { execFile } from "node:child_process";
import type { AclRule } from "./config.js";

/** The nftables table the endpoint owns. */
export const ACL_TABLE = "nsm_firewall";

/** Outgoing (next-hop side) ports are named `fwo-<random>`; the ACL ignores frames entering from them. */
export const OUTGOING_PORT_PREFIX = "fwo-";

const FULL_PORTS = (r: readonly [number, number]) => r[0] === 0 && r[1] === 65535;
const span = (r: readonly [number, number], max = 65535): string => {
  const a = Math.min(r[0], max);
  const b = Math.min(r[1], max);
  return a === b ? `${a}` : `${a}-${b}`;
};

/** The families a rule applies to: its prefixes decide, else ICMP is v4, ICMPv6 is v6, the rest both. */
function familiesOf(rule: AclRule): ("ip" | "ip6")[] {
  const prefix = rule.srcPrefix ?? rule.dstPrefix;
  if (prefix) return [prefix.includes(":") ? "ip6" : "ip"];
  if (rule.proto === 1) return ["ip"];
  if (rule.proto === 58) return ["ip6"];
  return ["ip", "ip6"];
}

/** Port matches of a TCP, UDP or SCTP rule (a full 0-65535 range matches nothing). */
function transportPortMatches(rule: AclRule): string[] {
  const out: string[] = [];
  if (!FULL_PORTS(rule.srcPortOrIcmpType)) out.push(`th sport ${span(rule.srcPortOrIcmpType)}`);
  if (!FULL_PORTS(rule.dstPortOrIcmpCode)) out.push(`th dport ${span(rule.dstPortOrIcmpCode)}`);
  return out;
}

/** Type and code matches of an ICMP or ICMPv6 rule (a full 0-255 range matches nothing). */
function icmpMatches(rule: AclRule): string[] {
  const icmp = rule.proto === 1 ? "icmp" : "icmpv6";
  const full = (r: readonly [number, number]) => r[0] === 0 && r[1] >= 255;
  const out: string[] = [];
  if (!full(rule.srcPortOrIcmpType)) out.push(`${icmp} type ${span(rule.srcPortOrIcmpType, 255)}`);
  if (!full(rule.dstPortOrIcmpCode)) out.push(`${icmp} code ${span(rule.dstPortOrIcmpCode, 255)}`);
  return out;
}

function portMatches(rule: AclRule): string[] {
  const out: string[] = [];
  if (rule.proto === 6 || rule.proto === 17 || rule.proto === 132) out.push(...transportPortMatches(rule));
  else if (rule.proto === 1 || rule.proto === 58) out.push(...icmpMatches(rule));
  if (rule.proto === 6 && rule.tcpFlagsMask !== 0)
    out.push(`tcp flags & ${rule.tcpFlagsMask} == ${rule.tcpFlagsValue & rule.tcpFlagsMask}`);
  return out;
}

/** The nft statements of one rule (one per family it applies to). */
export function ruleStatements(rule: AclRule): string[] {
  return familiesOf(rule).map((family) => {
    const parts = [`ether type ${family}`];
    if (rule.srcPrefix) parts.push(`${family} saddr ${rule.srcPrefix}`);
    if (rule.dstPrefix) parts.push(`${family} daddr ${rule.dstPrefix}`);
    if (rule.proto !== 0) parts.push(family === "ip" ? `ip protocol ${rule.proto}` : `ip6 nexthdr ${rule.proto}`);
    parts.push(...portMatches(rule), rule.permit ? "accept" : "drop");
    return parts.join(" ");
  });
}

/** The whole `nft -f` script: (re)creates {@link ACL_TABLE} with `rules`. */
export function aclRuleset(rules: readonly AclRule[]): string {
  const lines = [
    `table bridge ${ACL_TABLE}`,
    `delete table bridge ${ACL_TABLE}`,
    `table bridge ${ACL_TABLE} {`,
    "  chain forward {",
    // `filter` (-200) runs before br_netfilter (0), which re-injects the IP frames it handles
    // past hooks of its own priority: a chain at 0 would never see them where it is loaded.
    "    type filter hook forward priority filter; policy accept;",
  ];
  if (rules.length > 0) {
    lines.push(
      `    iifname "${OUTGOING_PORT_PREFIX}*" accept`,
      "    ether type != { ip, ip6 } accept",
      "    jump acl",
      "  }",
      "  chain acl {",
      ...rules.flatMap((r) => ruleStatements(r).map((s) => `    ${s} comment ${JSON.stringify(r.name.slice(0, 120))}`)),
      "    drop",
    );
  }
  lines.push("  }", "}", "");
  return lines.join("\n");
}

/** Runs `nft` with `args`, `input` on stdin; rejects with its stderr's first line. */
export function runNft(args: readonly string[], input = ""): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile("nft", [...args], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`nft ${args.join(" ")}: ${stderr.trim().split("\n")[0] || err.message}`));
      else resolve();
    });
    child.stdin?.end(input);
  });
}

/** Installs the ruleset for `rules` in this process's netns. */
export function installAcl(rules: readonly AclRule[]): Promise<void> {
  return runNft(["-f", "-"], aclRuleset(rules));
}

/** Removes the table (nothing if absent). */
export function removeAcl(): Promise<void> {
  return runNft(["-f", "-"], `table bridge ${ACL_TABLE}\ndelete table bridge ${ACL_TABLE}\n`);
}
