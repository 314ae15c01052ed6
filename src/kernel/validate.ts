// SPDX-License-Identifier: Apache-2.0
/**
 * Input checks shared by the netlink and fake KernelApi, so both reject the same bad input with
 * the same `InvalidArgument` before anything changes.
 */
import { invalidArgument } from "../sdk/core/errors.js";
import type { LinkChanges, LinkRef, PortRange, RuleSpec } from "./api.js";

const IFNAMSIZ = 16;

export function checkName(name: string, what: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes >= IFNAMSIZ || name === "." || name === ".." || /[/:\s]/.test(name)) {
    throw invalidArgument(`${what}: invalid interface name ${JSON.stringify(name)}`);
  }
}

export function checkRef(ref: LinkRef, what: string): void {
  if (typeof ref === "number") {
    if (!Number.isInteger(ref) || ref <= 0 || ref > 0x7fffffff)
      throw invalidArgument(`${what}: invalid ifindex ${ref}`);
  } else {
    checkName(ref, what);
  }
}

export function checkU32(v: number | undefined, field: string, what: string, min = 0, max = 0xffffffff): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) {
    throw invalidArgument(`${what}: invalid ${field} ${v}`);
  }
}

/** How a link is named in messages: `"nsm-1"` or `ifindex 7`. */
export const refLabel = (ref: LinkRef) => (typeof ref === "number" ? `ifindex ${ref}` : `"${ref}"`);

/** Converts a sysctl key (`net.ipv4.ip_forward` or `net/ipv6/conf/x.y/disable_ipv6`) to its /proc/sys path. */
export function sysctlPath(key: string): string {
  const rel = key.includes("/") ? key : key.replaceAll(".", "/");
  const parts = rel.split("/");
  if (rel.startsWith("/") || rel.includes("\0") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw invalidArgument(`invalid sysctl key ${JSON.stringify(key)}`);
  }
  return `/proc/sys/${rel}`;
}

/** Checks a {@link LinkChanges}; returns the names of the fields that are set. */
export function checkLinkChanges(changes: LinkChanges, what: string): string[] {
  const keys = Object.keys(changes).filter((k) => changes[k as keyof LinkChanges] !== undefined);
  if (changes.name !== undefined) checkName(changes.name, what);
  checkU32(changes.mtu, "mtu", what, 1);
  if (changes.alias !== undefined && Buffer.byteLength(changes.alias) > 255) {
    throw invalidArgument(`${what}: alias longer than 255 bytes`);
  }
  if (changes.master !== undefined && changes.netns !== undefined) {
    throw invalidArgument(`${what}: set master and netns in separate calls`);
  }
  if (changes.master !== undefined && changes.master !== null) checkRef(changes.master, what);
  return keys;
}

function checkPortRange(r: PortRange | undefined, field: string, what: string): void {
  if (r === undefined) return;
  checkU32(r.start, field, what, 1, 0xffff);
  checkU32(r.end, field, what, 1, 0xffff);
  if (r.end < r.start) throw invalidArgument(`${what}: invalid ${field} ${r.start}-${r.end}`);
}

/** Checks a {@link RuleSpec}'s numbers (the source prefix is parsed by the caller). */
export function checkRule(rule: RuleSpec, what: string): void {
  if (rule.family !== 4 && rule.family !== 6) throw invalidArgument(`${what}: invalid family ${rule.family}`);
  checkU32(rule.table, "table", what, 1);
  checkU32(rule.priority, "priority", what);
  checkU32(rule.ipProto, "ipproto", what, 0, 255);
  checkPortRange(rule.sport, "sport", what);
  checkPortRange(rule.dport, "dport", what);
}

/** `ip rule`-like text of a rule, for messages. */
export function ruleLabel(rule: RuleSpec): string {
  const range = (r: PortRange) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`);
  const parts = [`from ${rule.src ?? "all"}`];
  if (rule.ipProto !== undefined) parts.push(`ipproto ${rule.ipProto}`);
  if (rule.sport) parts.push(`sport ${range(rule.sport)}`);
  if (rule.dport) parts.push(`dport ${range(rule.dport)}`);
  parts.push(`lookup ${rule.table}`);
  return `rule ${parts.join(" ")}`;
}
