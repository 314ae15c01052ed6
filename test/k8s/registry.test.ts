// SPDX-License-Identifier: Apache-2.0
// `nsm registry` with NSM_REGISTRY_BACKEND=k8s against a real kube-apiserver (test/k8s/harness.ts):
// an NSE registered through it is a NetworkServiceEndpoint resource kubectl lists, and it goes
// away on expiry; a NetworkService created with kubectl reaches a registry watcher; a resource
// with an invalid record is skipped with a log line naming it and the registry keeps serving.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { KubeConfig } from "@kubernetes/client-node";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../src/api/gen/registry_pb.js";
import { k8sStores } from "../../src/k8s/registry/store.js";
import { StoreGone } from "../../src/registry-store/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { collectRecords, nseKind, nsKind } from "../../src/sdk/registry/core/index.js";
import { eventually, nextWithin } from "../../src/sdk/testing/registry.js";
import { type KubeCluster, missingK8sPeers, startCluster } from "./harness.js";
import { type RegistryProcess, startRegistryProcess } from "./registry-cmd.js";
import { freePort } from "./registry-etcd.js";
import { applyCrds } from "./registry-k8s.js";

const NAMESPACE = "nsm-system";

interface Listed {
  items: { metadata: { name: string; namespace: string }; spec: Record<string, unknown> }[];
}

describe("nsm registry on the Kubernetes apiserver", { skip: missingK8sPeers() }, () => {
  let cluster: KubeCluster;
  let registry: RegistryProcess;
  before(async () => {
    cluster = await startCluster();
    await applyCrds(cluster);
    await cluster.kubectl(["create", "namespace", NAMESPACE]);
    registry = await startRegistryProcess(await freePort(), {
      NSM_REGISTRY_BACKEND: "k8s",
      KUBECONFIG: cluster.kubeconfigPath,
      NSM_NAMESPACE: NAMESPACE,
      NSM_EXPIRE: "4s",
      NSM_EXPIRE_PERIOD: "1s",
    });
  });
  after(async () => {
    await registry?.stop();
    await cluster?.stop();
  });

  const listNses = async (): Promise<Listed> => {
    const r = await cluster.kubectl(["get", "networkserviceendpoints", "-A", "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Listed;
  };

  it("an NSE registered through the registry is listed by kubectl and goes away on expiry", async () => {
    const ctx = CallContext.create({ deadline: Date.now() + 30_000 });
    const rec = create(NetworkServiceEndpointSchema, {
      name: "icmp-responder-1",
      networkServiceNames: ["icmp-responder"],
      networkServiceLabels: { "icmp-responder": { labels: { app: "icmp" } } },
      url: "tcp://10.2.0.1:5001",
    });
    const out = await registry.clients.nse.register(rec, ctx);
    const listed = await listNses();
    const item = listed.items.find((i) => i.metadata.name === "icmp-responder-1");
    assert.ok(item, JSON.stringify(listed));
    assert.equal(item.metadata.namespace, NAMESPACE);
    assert.equal(item.spec.url, "tcp://10.2.0.1:5001");
    assert.deepEqual(item.spec.network_service_names, ["icmp-responder"]);
    assert.equal((item.spec.expiration_time as { seconds: number }).seconds, Number(out.expirationTime!.seconds));
    await eventually(async () => (await listNses()).items.length === 0, 10_000, 250);
  });

  it("an NSE registered through nsmgr (NSM_REGISTRY_URL = this registry) appears with nsmgr's URL and expires", async () => {
    const nsmgr = await startRegistryProcess(
      await freePort(),
      { NSM_REGISTRY_URL: `tcp://${registry.url}`, NSM_NAME: "nsmgr-node-1", NSM_EXPIRE: "4s" },
      "nsmgr",
    );
    try {
      const ctx = CallContext.create({ deadline: Date.now() + 30_000 });
      const rec = create(NetworkServiceEndpointSchema, {
        name: "nse-via-nsmgr",
        networkServiceNames: ["icmp-responder"],
        url: "tcp://10.2.0.9:5001",
      });
      await nsmgr.clients.nse.register(rec, ctx);
      const item = (await listNses()).items.find((i) => i.metadata.name === "nse-via-nsmgr");
      assert.ok(item, "kubectl does not list nse-via-nsmgr");
      assert.equal(item.spec.url, `tcp://${nsmgr.url}`);
      await eventually(
        async () => !(await listNses()).items.some((i) => i.metadata.name === "nse-via-nsmgr"),
        15_000,
        250,
      );
    } finally {
      await nsmgr.stop();
    }
  });

  it("a NetworkService created with kubectl reaches a registry watcher", async () => {
    const watch = new AbortController();
    const it = registry.clients.ns
      .find(
        nsKind.query(create(NetworkServiceSchema, { name: "made-by-kubectl" }), true),
        CallContext.create({ signal: watch.signal }),
      )
      [Symbol.asyncIterator]();
    const first = nextWithin(it, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const ns = {
      apiVersion: "networkservicemesh.io/v1",
      kind: "NetworkService",
      metadata: { name: "made-by-kubectl", namespace: NAMESPACE },
      spec: { payload: "ETHERNET" },
    };
    const created = await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(ns) });
    assert.equal(created.code, 0, created.stderr);
    const got = (await first).value;
    assert.equal(got?.networkService?.name, "made-by-kubectl");
    assert.equal(got?.networkService?.payload, "ETHERNET");
    watch.abort();
  });

  it("skips a resource with an invalid NSE, naming it in the log, and keeps serving", async () => {
    const bad = {
      apiVersion: "networkservicemesh.io/v1",
      kind: "NetworkServiceEndpoint",
      metadata: { name: "bad-url-nse", namespace: NAMESPACE },
      spec: { name: "bad-url-nse", url: "ftp://nowhere", network_service_names: ["x"] },
    };
    const created = await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(bad) });
    assert.equal(created.code, 0, created.stderr);
    const ctx = CallContext.create({ deadline: Date.now() + 20_000 });
    await registry.clients.nse.register(
      create(NetworkServiceEndpointSchema, {
        name: "good-nse",
        networkServiceNames: ["x"],
        url: "tcp://10.2.0.2:5001",
      }),
      ctx,
    );
    const found = await collectRecords(nseKind, registry.clients.nse, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      found.map((r) => r.name),
      ["good-nse"],
    );
    await eventually(
      () =>
        /skipping invalid stored record.*bad-url-nse|bad-url-nse.*skipping invalid stored record/.test(
          registry.output(),
        ),
      5000,
    );
    assert.equal(registry.child.exitCode, null);
  });

  it("deletes an expired NSE resource that no live registry registered (a dead replica's)", async () => {
    const orphan = {
      apiVersion: "networkservicemesh.io/v1",
      kind: "NetworkServiceEndpoint",
      metadata: { name: "orphan-nse", namespace: NAMESPACE },
      spec: {
        name: "orphan-nse",
        url: "tcp://10.2.0.3:5001",
        network_service_names: ["x"],
        expiration_time: { seconds: Math.floor(Date.now() / 1000) - 5 },
      },
    };
    const created = await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(orphan) });
    assert.equal(created.code, 0, created.stderr);
    await eventually(async () => !(await listNses()).items.some((i) => i.metadata.name === "orphan-nse"), 10_000, 250);
    assert.match(registry.output(), /deleted expired NetworkServiceEndpoints/);
  });

  it("a watch from a revision the apiserver no longer has ends with StoreGone (410), so the follower lists again", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const store = k8sStores(kc, NAMESPACE).nse;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 10_000);
    try {
      await assert.rejects(
        (async () => {
          for await (const _ of store.watch("1", ac.signal)) {
            // events before the error are fine; the watch must not go on forever
          }
          throw new Error(ac.signal.aborted ? "no 410 within 10 s" : "watch ended without 410");
        })(),
        (err: unknown) => err instanceof StoreGone,
      );
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  });
});
