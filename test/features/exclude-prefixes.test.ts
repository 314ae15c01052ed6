// SPDX-License-Identifier: Apache-2.0
/**
 * examples/exclude-prefixes and examples/exclude-prefixes-client end to end on the local runtime.
 * - nsmgr's source: applying the `excluded-prefixes-config` ConfigMap writes every node's
 *   excluded-prefixes file (as upstream's exclude-prefixes sidecar does), which takes
 *   172.16.1.201 and .202 out of the endpoint's 172.16.1.200/30: the endpoint gets .200, the
 *   client .203. A bad ConfigMap is refused and changes nothing; deleting it empties the files.
 * - the client's element: one client, two services, two endpoints allocating from the same
 *   172.16.1.96/29: the second connection gets .98/.99, not the first one's .96/.97.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { nodeExcludedPrefixesFile } from "../../src/local/pod-files.js";
import { parseExcludedPrefixes } from "../../src/sdk/networkservice/common/excludedprefixes/index.js";
import { ipv4Of, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const PING = ["ping", "-c", "3", "-i", "0.2", "-W", "2"];

describe("features: examples/exclude-prefixes and exclude-prefixes-client", { skip: skipReason() }, () => {
  let rt: TestRuntime;

  const ping = async (target: string, ns: string, address: string) => {
    const r = await rt.nsm("exec", target, "-n", ns, "--", ...PING, address);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
  };

  before(async () => {
    rt = testRuntime("exclude");
    await rt.ok("up");
    await rt.ok("apply", "-k", join(REPO, "examples", "exclude-prefixes", "configmap"));
    await rt.ok("apply", "-k", join(REPO, "examples", "exclude-prefixes"));
    await rt.ok("apply", "-k", join(REPO, "examples", "exclude-prefixes-client"));
    // The README's waits, as written.
    for (const app of ["alpine", "nse-kernel"])
      await rt.ok(
        "wait",
        "--for=condition=ready",
        "--timeout=1m",
        "pod",
        "-l",
        `app=${app}`,
        "-n",
        "ns-exclude-prefixes",
      );
    await rt.ok(
      "wait",
      "--for=condition=ready",
      "--timeout=1m",
      "pod",
      "-l",
      "app=alpine",
      "-n",
      "ns-exclude-prefixes-client",
    );
  });
  after(() => rt?.cleanup());

  /** Every node's excluded prefixes, as its nsmgr reads them. */
  const nodePrefixes = () => {
    const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8")) as { nodes: { dir: string }[] };
    return state.nodes.map((n) => parseExcludedPrefixes(readFileSync(nodeExcludedPrefixesFile(n), "utf8")));
  };

  it("applying the ConfigMap wrote its prefixes to every node's file", () => {
    const all = nodePrefixes();
    assert.ok(all.length >= 1);
    for (const p of all) assert.deepEqual(p, ["172.16.1.201/32", "172.16.1.202/32"]);
  });

  it("nsmgr's excluded prefixes: the client gets 172.16.1.203, the endpoint 172.16.1.200", async () => {
    const ns = "ns-exclude-prefixes";
    assert.deepEqual(ipv4Of(podNetns(rt, ns, "alpine"), "nsm-1"), ["172.16.1.203/32"]);
    await ping("pods/alpine", ns, "172.16.1.200");
    await ping("deployments/nse-kernel", ns, "172.16.1.203");
  });

  it("one client, two endpoints of the same pool: no overlapping addresses, both pingable", async () => {
    const ns = "ns-exclude-prefixes-client";
    const client = podNetns(rt, ns, "alpine");
    assert.deepEqual(ipv4Of(client, "nsm-1"), ["172.16.1.97/32"]);
    assert.deepEqual(ipv4Of(client, "nsm-2"), ["172.16.1.99/32"]);
    await ping("pods/alpine", ns, "172.16.1.96");
    await ping("pods/alpine", ns, "172.16.1.98");
    await ping("deployments/nse-kernel-1", ns, "172.16.1.97");
    await ping("deployments/nse-kernel-2", ns, "172.16.1.99");
    const conns = rows(await rt.ok("get", "connections")).filter((r) => r[1]?.startsWith("alpine-"));
    assert.equal(conns.length, 3, JSON.stringify(conns)); // one in the first example, two here
  });

  it("a ConfigMap with a bad prefix is refused in one line and changes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "exclude-bad-"));
    try {
      const file = join(dir, "cm.yaml");
      writeFileSync(
        file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: excluded-prefixes-config\ndata:\n  excluded_prefixes_input.yaml: |\n    prefixes:\n    - 10.0.0.0/99\n",
      );
      const r = await rt.nsm("apply", "-f", file);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /excluded-prefixes-config: data\.excluded_prefixes_input\.yaml: /);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const p of nodePrefixes()) assert.deepEqual(p, ["172.16.1.201/32", "172.16.1.202/32"]);
  });

  it("deleting the ConfigMap empties every node's excluded prefixes", async () => {
    await rt.ok("delete", "configmap", "excluded-prefixes-config");
    for (const p of nodePrefixes()) assert.deepEqual(p, []);
  });
});
