// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseExcludedPrefixes } from "../sdk/networkservice/common/excludedprefixes/index.js";
import { ensurePodResolvConf, nodeExcludedPrefixesFile, podResolvConf, writeExcludedPrefixes } from "./pod-files.js";
import { runtimePaths } from "./state.js";

describe("local runtime: node and pod files", () => {
  const dir = mkdtempSync(join(tmpdir(), "pod-files-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a pod's resolv.conf lives under the state dir's tmp/, one directory per pod", () => {
    const paths = runtimePaths(join(dir, "state"));
    assert.equal(
      podResolvConf(paths, "ns-dns", "dnsutils"),
      join(dir, "state", "tmp", "pods", "ns-dns_dnsutils", "resolv.conf"),
    );
  });

  it("makes a pod's resolv.conf from the host's once, and keeps an existing one", () => {
    const host = join(dir, "host-resolv.conf");
    writeFileSync(host, "nameserver 192.0.2.53\n");
    const file = podResolvConf(runtimePaths(join(dir, "state")), "ns", "p");
    ensurePodResolvConf(file, host);
    assert.equal(readFileSync(file, "utf8"), "nameserver 192.0.2.53\n");
    writeFileSync(file, "nameserver 127.0.0.1\n");
    ensurePodResolvConf(file, host);
    assert.equal(readFileSync(file, "utf8"), "nameserver 127.0.0.1\n");
  });

  it("writes every node's excluded prefixes in the format nsmgr reads", () => {
    const nodes = [{ dir: join(dir, "node-1") }, { dir: join(dir, "node-2") }];
    writeExcludedPrefixes(nodes, ["172.16.1.201/32", "10.96.0.0/12"]);
    for (const n of nodes) {
      const file = nodeExcludedPrefixesFile(n);
      assert.equal(file, join(n.dir, "config", "excluded_prefixes.yaml"));
      assert.deepEqual(parseExcludedPrefixes(readFileSync(file, "utf8")), ["172.16.1.201/32", "10.96.0.0/12"]);
    }
    writeExcludedPrefixes(nodes, []);
    assert.deepEqual(parseExcludedPrefixes(readFileSync(nodeExcludedPrefixesFile(nodes[0]!), "utf8")), []);
  });
});
