// SPDX-License-Identifier: Apache-2.0
// The test control plane itself: etcd + kube-apiserver come up, kubectl talks to them as admin,
// RBAC is enforced for others, and stop() leaves no process behind.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type KubeCluster, missingK8sPeers, startCluster } from "./harness.js";

const skip = missingK8sPeers();

describe("k8s harness", { skip }, () => {
  let cluster: KubeCluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  it("creates a namespace and lists it", async () => {
    const created = await cluster.kubectl(["create", "namespace", "harness-check"]);
    assert.equal(created.code, 0, created.stderr);
    const listed = await cluster.kubectl(["get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.split(" ").includes("harness-check"), listed.stdout);
    assert.ok(listed.stdout.split(" ").includes("kube-system"), listed.stdout);
  });

  it("enforces RBAC for a user that is not admin", async () => {
    const denied = await cluster.kubectl(["get", "namespaces"], { as: "system:serviceaccount:default:nobody" });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/i);
  });

  it("stops both processes by PID and removes its directory", async () => {
    const { existsSync } = await import("node:fs");
    const { etcdUrl, dir } = cluster;
    await cluster.stop();
    assert.equal(existsSync(dir), false);
    await assert.rejects(fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) }));
    cluster = undefined as unknown as KubeCluster;
  });
});
