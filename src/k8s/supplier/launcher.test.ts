// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiException, type V1Pod } from "@kubernetes/client-node";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../api/index.js";
import { bind } from "../../sdk/core/chain.js";
import { CallContext } from "../../sdk/core/context.js";
import { Code, type NsmError } from "../../sdk/core/errors.js";
import { silentLogger } from "../../sdk/core/logger.js";
import { createPodServer, reapCompletedPods } from "../../sdk/networkservice/common/createpod/index.js";
import { k8sPodLauncher, type PodsApi } from "./launcher.js";

/** An API server with nodes and pods in memory, answering as the real one (404, 409). */
class FakeApi implements PodsApi {
  readonly pods = new Map<string, V1Pod>();
  constructor(readonly nodes: string[]) {}
  async readNode({ name }: { name: string }) {
    if (!this.nodes.includes(name)) throw new ApiException(404, "not found", {}, {});
    return { metadata: { name } };
  }
  async createNamespacedPod({ namespace, body }: { namespace: string; body: V1Pod }) {
    const key = `${namespace}/${body.metadata!.name}`;
    if (this.pods.has(key)) throw new ApiException(409, "already exists", {}, {});
    const pod = { ...body, status: { phase: "Pending" } };
    this.pods.set(key, pod);
    return pod;
  }
  async listNamespacedPod({ namespace, labelSelector }: { namespace: string; labelSelector?: string }) {
    const [k, v] = (labelSelector ?? "=").split("=");
    const items = [...this.pods.entries()]
      .filter(([key, p]) => key.startsWith(`${namespace}/`) && (!k || p.metadata?.labels?.[k!] === v))
      .map(([, p]) => p);
    return { items };
  }
  async deleteNamespacedPod({ name, namespace }: { name: string; namespace: string }) {
    if (!this.pods.delete(`${namespace}/${name}`)) throw new ApiException(404, "not found", {}, {});
    return {};
  }
}

const TEMPLATE = `apiVersion: v1
kind: Pod
metadata:
  name: nse-{{ index .Labels "nodeName" }}
  labels: {app: nse}
spec:
  containers: [{name: nse, image: ghcr.io/networkservicemesh/cmd-nse-icmp-responder:v1.14.0}]
`;

const request = (nodeName: string) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id: "c", networkService: "s", labels: { nodeName } }),
  });

describe("k8sPodLauncher", () => {
  it("creates the pod through the API on the client's node; a second request is no error of its own", async () => {
    const api = new FakeApi(["worker-1"]);
    const h = bind(
      createPodServer({ launcher: k8sPodLauncher(api), template: TEMPLATE, namespace: "ns", owner: "sup" }),
    );
    for (let i = 0; i < 2; i++) {
      await assert.rejects(h.request(request("worker-1"), CallContext.create()), (e: NsmError) => {
        assert.equal(e.code, Code.Unavailable);
        assert.match(e.message, /endpoint created as nse-worker-1/);
        return true;
      });
    }
    const pod = api.pods.get("ns/nse-worker-1")!;
    assert.equal(pod.apiVersion, "v1");
    assert.equal(pod.metadata?.namespace, "ns");
    assert.equal(pod.spec?.nodeName, "worker-1");
    assert.deepEqual(pod.metadata?.labels, { app: "nse", createdBy: "sup" });
  });

  it("a node the cluster does not have is left to the scheduler", async () => {
    const api = new FakeApi([]);
    const h = bind(
      createPodServer({ launcher: k8sPodLauncher(api), template: TEMPLATE, namespace: "ns", owner: "sup" }),
    );
    await assert.rejects(h.request(request("ghost"), CallContext.create()));
    assert.equal(api.pods.get("ns/nse-ghost")!.spec?.nodeName, undefined);
  });

  it("deletes its own pods once Succeeded or Failed, nobody else's", async () => {
    const api = new FakeApi([]);
    const launcher = k8sPodLauncher(api);
    const pod = (name: string, owner: string, phase: string): V1Pod => ({
      metadata: { name, labels: { createdBy: owner } },
      status: { phase },
    });
    api.pods.set("ns/a", pod("a", "sup", "Succeeded"));
    api.pods.set("ns/b", pod("b", "sup", "Running"));
    api.pods.set("ns/c", pod("c", "other", "Failed"));
    api.pods.set("ns/d", pod("d", "sup", "Failed"));
    const stop = new AbortController();
    const reaping = reapCompletedPods({
      launcher,
      namespace: "ns",
      owner: "sup",
      signal: stop.signal,
      log: silentLogger,
    });
    setTimeout(() => stop.abort(), 50);
    await reaping;
    assert.deepEqual([...api.pods.keys()].sort(), ["ns/b", "ns/c"]);
    await launcher.deletePod("ns", "gone"); // 404 is not an error
  });
});
