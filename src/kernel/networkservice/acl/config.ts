// SPDX-License-Identifier: Apache-2.0
/**
 * ACL rules in upstream's `NSM_ACL_CONFIG_PATH` format (cmd-nse-firewall-vpp): a YAML mapping
 * from a rule name to a VPP `acl_types.ACLRule` with yaml.v2's lower-cased field names:
 *
 * ```yaml
 * allow tcp8080:
 *   ispermit: 1            # 0 deny, 1 permit, 2 permit+reflect (here: permit)
 *   proto: 6               # IP protocol, 0 = any
 *   srcprefix: 10.0.0.0/8  # optional, either family
 *   dstprefix: 10.0.0.0/8
 *   srcportoricmptypefirst: 0
 *   srcportoricmptypelast: 65535
 *   dstportoricmpcodefirst: 8080
 *   dstportoricmpcodelast: 8080
 *   tcpflagsmask: 0
 *   tcpflagsvalue: 0
 * ```
 *
 * Omitted numbers are 0 as in Go (so a port range left out matches port 0 only, as VPP does).
 * Rules keep the file's order (upstream iterates a Go map, so its order is unspecified).
 * Pure logic: a malformed file is an {@link AclConfigError} naming the file and the field.
 */
import { parseDocument } from "yaml";
import { tryParseCidr } from "../../../sdk/tools/cidr.js";

/** One ACL rule, as the file gives it (numbers already range-checked). */
export interface AclRule {
  readonly name: string;
  readonly permit: boolean;
  readonly proto: number;
  readonly srcPrefix?: string;
  readonly dstPrefix?: string;
  readonly srcPortOrIcmpType: readonly [number, number];
  readonly dstPortOrIcmpCode: readonly [number, number];
  readonly tcpFlagsMask: number;
  readonly tcpFlagsValue: number;
}

/** A malformed ACL file: `<file>: <field>: <reason>`. */
export class AclConfigError extends Error {
  override readonly name = "AclConfigError";
  constructor(
    readonly file: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${file}: ${field}: ${reason}`);
  }
}

const NUMBER_FIELDS: Readonly<Record<string, number>> = {
  ispermit: 2,
  proto: 255,
  srcportoricmptypefirst: 65535,
  srcportoricmptypelast: 65535,
  dstportoricmpcodefirst: 65535,
  dstportoricmpcodelast: 65535,
  tcpflagsmask: 255,
  tcpflagsvalue: 255,
};
const PREFIX_FIELDS = new Set(["srcprefix", "dstprefix"]);

function numberField(file: string, field: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max)
    throw new AclConfigError(file, field, `${JSON.stringify(value)} is not an integer in 0-${max}`);
  return value;
}

function prefixField(file: string, field: string, value: unknown): string {
  const cidr = typeof value === "string" ? tryParseCidr(value.includes("/") ? value : `${value}/32`) : undefined;
  if (!cidr || typeof value !== "string")
    throw new AclConfigError(file, field, `${JSON.stringify(value)} is not a prefix such as 10.0.0.0/8`);
  return value.includes("/") ? value : `${value}/${cidr.prefixLength}`;
}

function range(file: string, field: string, first: number, last: number): readonly [number, number] {
  if (first > last) throw new AclConfigError(file, field, `first ${first} is greater than last ${last}`);
  return [first, last];
}

function parseRule(file: string, name: string, body: unknown): AclRule {
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new AclConfigError(file, JSON.stringify(name), "expected a mapping of rule fields");
  const n: Record<string, number> = {};
  const p: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    const field = `${JSON.stringify(name)}.${key}`;
    const k = key.toLowerCase();
    if (k in NUMBER_FIELDS) n[k] = numberField(file, field, value, NUMBER_FIELDS[k]!);
    else if (PREFIX_FIELDS.has(k)) p[k] = prefixField(file, field, value);
    else throw new AclConfigError(file, field, "unknown field");
  }
  const f = (k: string) => n[k] ?? 0;
  const src = (p.srcprefix ?? p.dstprefix)?.includes(":");
  const dst = (p.dstprefix ?? p.srcprefix)?.includes(":");
  if (src !== dst) throw new AclConfigError(file, `${JSON.stringify(name)}.dstprefix`, "mixes IPv4 and IPv6");
  return {
    name,
    permit: f("ispermit") !== 0,
    proto: f("proto"),
    srcPrefix: p.srcprefix,
    dstPrefix: p.dstprefix,
    srcPortOrIcmpType: range(
      file,
      `${JSON.stringify(name)}.srcportoricmptypefirst`,
      f("srcportoricmptypefirst"),
      f("srcportoricmptypelast"),
    ),
    dstPortOrIcmpCode: range(
      file,
      `${JSON.stringify(name)}.dstportoricmpcodefirst`,
      f("dstportoricmpcodefirst"),
      f("dstportoricmpcodelast"),
    ),
    tcpFlagsMask: f("tcpflagsmask"),
    tcpFlagsValue: f("tcpflagsvalue"),
  };
}

/** Parses the text of an ACL file (`file` names it in errors). An empty file is no rules. */
export function parseAclConfig(text: string, file: string): AclRule[] {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new AclConfigError(file, "(yaml)", doc.errors[0]!.message.split("\n")[0]!);
  const root: unknown = doc.toJS();
  if (root === null || root === undefined) return [];
  if (typeof root !== "object" || Array.isArray(root))
    throw new AclConfigError(file, "(top level)", "expected a mapping from rule names to rules");
  return Object.entries(root).map(([name, body]) => parseRule(file, name, body));
}
