// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { AclConfigError, aclRuleset, parseAclConfig, ruleStatements } from "./index.js";

const UPSTREAM = `
allow icmp:
  ispermit: 1
  proto: 1
  srcportoricmptypelast: 65535
  dstportoricmpcodelast: 65535
allow tcp8080:
  ispermit: 1
  proto: 6
  srcportoricmptypelast: 65535
  dstportoricmpcodefirst: 8080
  dstportoricmpcodelast: 8080
forbid tcp80:
  proto: 6
  srcportoricmptypelast: 65535
  dstportoricmpcodefirst: 80
  dstportoricmpcodelast: 80
`;

describe("acl config (upstream NSM_ACL_CONFIG_PATH format)", () => {
  it("parses the nse-composition example's rules in file order", () => {
    const rules = parseAclConfig(UPSTREAM, "/etc/firewall/config.yaml");
    assert.deepEqual(
      rules.map((r) => [r.name, r.permit, r.proto, r.dstPortOrIcmpCode]),
      [
        ["allow icmp", true, 1, [0, 65535]],
        ["allow tcp8080", true, 6, [8080, 8080]],
        ["forbid tcp80", false, 6, [80, 80]],
      ],
    );
  });

  it("renders first-match rules with a final drop", () => {
    const rules = parseAclConfig(UPSTREAM, "f");
    assert.deepEqual(ruleStatements(rules[0]!), ["ether type ip ip protocol 1 accept"]);
    assert.deepEqual(ruleStatements(rules[1]!), [
      "ether type ip ip protocol 6 th dport 8080 accept",
      "ether type ip6 ip6 nexthdr 6 th dport 8080 accept",
    ]);
    const script = aclRuleset(rules);
    assert.match(script, /iifname "fwo-\*" accept\n {4}ether type != \{ ip, ip6 \} accept\n {4}jump acl/);
    assert.match(script, /th dport 80 drop comment "forbid tcp80"\n {4}drop\n/);
  });

  it("prefixes pick the family, flags and ICMP types render", () => {
    const [r] = parseAclConfig(
      "x:\n  ispermit: 1\n  proto: 6\n  srcprefix: 10.0.0.0/8\n  dstprefix: 10.1.2.3\n  srcportoricmptypelast: 65535\n  dstportoricmpcodelast: 65535\n  tcpflagsmask: 2\n  tcpflagsvalue: 2\n",
      "f",
    );
    assert.deepEqual(ruleStatements(r!), [
      "ether type ip ip saddr 10.0.0.0/8 ip daddr 10.1.2.3/32 ip protocol 6 tcp flags & 2 == 2 accept",
    ]);
    const [e] = parseAclConfig(
      "echo:\n  ispermit: 1\n  proto: 1\n  srcportoricmptypefirst: 8\n  srcportoricmptypelast: 8\n  dstportoricmpcodelast: 255\n",
      "f",
    );
    assert.deepEqual(ruleStatements(e!), ["ether type ip ip protocol 1 icmp type 8 accept"]);
  });

  it("no rules: no filtering chain at all", () => {
    assert.deepEqual(parseAclConfig("", "f"), []);
    assert.doesNotMatch(aclRuleset([]), /drop|jump/);
  });

  for (const [text, field] of [
    ["r:\n  proto: 300\n", '"r".proto'],
    ["r:\n  dstportoricmpcodefirst: x\n", '"r".dstportoricmpcodefirst'],
    ["r:\n  ispermit: 1\n  portt: 1\n", '"r".portt'],
    ["r:\n  srcprefix: 10.0.0.300/8\n", '"r".srcprefix'],
    ["r:\n  dstportoricmpcodefirst: 9\n  dstportoricmpcodelast: 8\n", '"r".dstportoricmpcodefirst'],
    ["- a\n- b\n", "(top level)"],
    ["r: [1\n", "(yaml)"],
    ["r: 5\n", '"r"'],
  ] as const) {
    it(`refuses ${JSON.stringify(text)} naming the file and ${field}`, () => {
      assert.throws(
        () => parseAclConfig(text, "/etc/acl.yaml"),
        (e: unknown) =>
          e instanceof AclConfigError &&
          e.field === field &&
          e.message.startsWith(`/etc/acl.yaml: ${field}: `) &&
          !e.message.includes("\n"),
      );
    });
  }

  it("nft accepts the rendered ruleset (nft --check)", { skip: nftMissing() }, () => {
    const script = aclRuleset(parseAclConfig(UPSTREAM, "f"));
    // --check parses and validates against the kernel without committing anything.
    execFileSync("unshare", ["-n", "nft", "--check", "-f", "-"], { input: script });
  });
});

function nftMissing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  try {
    execFileSync("nft", ["--version"]);
    return undefined;
  } catch {
    return "nft (Debian nftables) is not installed";
  }
}
