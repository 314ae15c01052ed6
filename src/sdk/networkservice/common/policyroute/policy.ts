// SPDX-License-Identifier: Apache-2.0
/**
 * The fields of a `PolicyRoute` (IPContext.policies) as numbers and prefixes, shared by the
 * endpoint that hands policies out (config checks) and the kernel element that programs them.
 *
 * Upstream's forwarder reads `proto` as an IP protocol number and `dst_port` / `src_port` as
 * `port` or `start-end`; protocol names (`tcp`, `udp`, …) are accepted here as well.
 */
import type { PolicyRoute } from "../../../../api/index.js";
import { invalidArgument } from "../../../core/errors.js";
import { type Cidr, tryParseCidr, tryParseIp } from "../../../tools/cidr.js";

/** An inclusive port range. */
export interface PolicyPortRange {
  start: number;
  end: number;
}

const PROTOCOLS: Readonly<Record<string, number>> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 };

const isPort = (n: number) => Number.isInteger(n) && n >= 1 && n <= 0xffff;

/** `"6666"` or `"6667-6670"`; `""` is undefined (any port). InvalidArgument otherwise. */
export function parsePortRange(text: string, field = "port"): PolicyPortRange | undefined {
  const s = text.trim();
  if (s === "") return undefined;
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  const start = Number(m?.[1]);
  const end = m?.[2] === undefined ? start : Number(m[2]);
  if (!m || !isPort(start) || !isPort(end) || end < start) {
    throw invalidArgument(`policy ${field} ${JSON.stringify(text)}: expected a port or start-end (1-65535)`);
  }
  return { start, end };
}

/** `"6"`, `"17"`, `"tcp"`…; `""` is undefined (any protocol). InvalidArgument otherwise. */
export function parseIpProto(text: string): number | undefined {
  const s = text.trim().toLowerCase();
  if (s === "") return undefined;
  const n = /^\d{1,3}$/.test(s) ? Number(s) : PROTOCOLS[s];
  if (n === undefined || n > 255) {
    throw invalidArgument(`policy proto ${JSON.stringify(text)}: expected an IP protocol number (0-255) or name`);
  }
  return n;
}

/** `from` as a prefix (an address alone is a host prefix); `""` is undefined. */
export function parsePolicyFrom(text: string): Cidr | undefined {
  const s = text.trim();
  if (s === "") return undefined;
  const c = s.includes("/") ? tryParseCidr(s) : tryParseCidr(`${s}/${s.includes(":") ? 128 : 32}`);
  if (!c) throw invalidArgument(`policy from ${JSON.stringify(text)}: expected an address/prefix`);
  return c;
}

/** Checks every field of a policy (InvalidArgument naming the field). */
export function checkPolicyRoute(p: PolicyRoute): void {
  const from = parsePolicyFrom(p.from);
  parseIpProto(p.proto);
  parsePortRange(p.dstPort, "dstport");
  parsePortRange(p.srcPort, "srcport");
  for (const r of p.routes) {
    const prefix = tryParseCidr(r.prefix);
    if (!prefix) throw invalidArgument(`policy route prefix ${JSON.stringify(r.prefix)}: expected a prefix`);
    const hop = r.nextHop === "" ? undefined : tryParseIp(r.nextHop);
    if (r.nextHop !== "" && hop?.family !== prefix.family) {
      throw invalidArgument(`policy route ${r.prefix}: next hop ${JSON.stringify(r.nextHop)} is not of its family`);
    }
    if (from && from.family !== prefix.family) {
      throw invalidArgument(`policy from ${p.from}: route ${r.prefix} is of another family`);
    }
  }
}
