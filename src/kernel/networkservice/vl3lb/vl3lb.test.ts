// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { lbRuleset } from "./index.js";

const nftOk = (() => {
  try {
    execFileSync("nft", ["--version"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

describe("kernel vl3lb: nftables NAT of the balancer", () => {
  const config = { vip: "172.16.0.5", protocol: "tcp" as const, port: 8080, targetPort: 8081 };

  it("DNATs the service port round robin to the backends and masquerades towards them", () => {
    const script = lbRuleset({ ...config, backends: ["172.16.0.2", "172.16.1.3"] });
    assert.match(
      script,
      /ip daddr 172\.16\.0\.5 tcp dport 8080 dnat to numgen inc mod 2 map \{ 0 : 172\.16\.0\.2, 1 : 172\.16\.1\.3 \} : 8081/,
    );
    assert.match(script, /ip daddr \{ 172\.16\.0\.2, 172\.16\.1\.3 \} tcp dport 8081 ct status dnat masquerade/);
  });

  it("no backends: the table exists without rules", () => {
    const script = lbRuleset({ ...config, backends: [] });
    assert.doesNotMatch(script, /dnat|masquerade/);
  });

  it("nft accepts the script (checked with nft -c)", { skip: nftOk ? undefined : "needs root and nft" }, () => {
    const script = lbRuleset({ ...config, backends: ["172.16.0.2", "172.16.1.3"] });
    // -c: parse and check only, nothing is changed.
    execFileSync("nft", ["-c", "-f", "-"], { input: script });
  });
});
