// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Affinity, PodAffinityTerm, PodSpec } from "./manifest.js";
import { type PlacedPod, placePod } from "./schedule.js";

const NODES = ["node-1", "node-2", "node-3"];

function spec(over: Partial<PodSpec> = {}, affinity: Partial<Affinity> = {}): PodSpec {
  return {
    volumes: [],
    containers: [],
    initContainers: [],
    nodeSelector: {},
    ...over,
    affinity: { podAffinity: [], podAntiAffinity: [], nodeAffinity: [], ...affinity },
  };
}

function term(matchLabels: Record<string, string>, namespaces: string[] = []): PodAffinityTerm {
  return { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels, matchExpressions: [] }, namespaces };
}

const pod = (name: string, labels: Record<string, string>, s: PodSpec, namespace = "ns") => ({
  namespace,
  name,
  labels,
  spec: s,
});

describe("placement", () => {
  const placed: PlacedPod[] = [
    { namespace: "ns", name: "nse", labels: { app: "nse-kernel" }, node: "node-2" },
    { namespace: "other", name: "x", labels: { app: "x" }, node: "node-1" },
  ];

  it("least loaded node without constraints", () => {
    assert.equal(placePod(pod("p", {}, spec()), NODES, placed), "node-3");
  });

  it("nodeName and nodeSelector on kubernetes.io/hostname", () => {
    assert.equal(placePod(pod("p", {}, spec({ nodeName: "node-1" })), NODES, placed), "node-1");
    assert.equal(
      placePod(pod("p", {}, spec({ nodeSelector: { "kubernetes.io/hostname": "node-2" } })), NODES, placed),
      "node-2",
    );
    assert.throws(() => placePod(pod("p", {}, spec({ nodeName: "node-9" })), NODES, placed), /nodeName "node-9"/);
    assert.throws(
      () => placePod(pod("p", {}, spec({ nodeSelector: { disk: "ssd" } })), NODES, placed),
      /no node has the label disk=ssd/,
    );
  });

  it("podAffinity co-locates with matching pods of the pod's namespace (matchExpressions too)", () => {
    const s = spec(
      {},
      {
        podAffinity: [
          {
            topologyKey: "kubernetes.io/hostname",
            labelSelector: {
              matchLabels: {},
              matchExpressions: [{ key: "app", operator: "In", values: ["nse-kernel"] }],
            },
            namespaces: [],
          },
        ],
      },
    );
    assert.equal(placePod(pod("alpine", { app: "alpine" }, s), NODES, placed), "node-2");
    // Same labels in another namespace do not count.
    assert.throws(
      () => placePod(pod("alpine", { app: "alpine" }, s, "elsewhere"), NODES, placed),
      /podAffinity requires a node running a pod with app in \(nse-kernel\) in namespace elsewhere/,
    );
  });

  it("a pod matching its own affinity term may go first", () => {
    const s = spec({}, { podAffinity: [term({ app: "web" })] });
    assert.equal(placePod(pod("web-1", { app: "web" }, s), NODES, []), "node-1");
  });

  it("podAntiAffinity, both the new pod's and the placed pods'", () => {
    const anti = spec({}, { podAntiAffinity: [term({ app: "spread" })] });
    const spreadPods: PlacedPod[] = [];
    for (let i = 0; i < 3; i++) {
      const node = placePod(pod(`s${i}`, { app: "spread" }, anti), NODES, spreadPods);
      spreadPods.push({ namespace: "ns", name: `s${i}`, labels: { app: "spread" }, node, affinity: anti.affinity });
    }
    assert.deepEqual(spreadPods.map((p) => p.node).sort(), NODES);
    assert.throws(
      () => placePod(pod("s3", { app: "spread" }, anti), NODES, spreadPods),
      /pod ns\/s3 cannot be scheduled: podAntiAffinity excludes every node/,
    );
    // A pod without anti-affinity of its own is still kept off by theirs.
    assert.throws(
      () => placePod(pod("plain", { app: "spread" }, spec()), NODES, spreadPods),
      /the podAntiAffinity of pod ns\/s\d keeps it off/,
    );
  });

  it("other topology keys are refused", () => {
    const s = spec(
      {},
      { podAffinity: [{ ...term({ app: "nse-kernel" }), topologyKey: "topology.kubernetes.io/zone" }] },
    );
    assert.throws(
      () => placePod(pod("p", {}, s), NODES, placed),
      /topologyKey "topology.kubernetes.io\/zone" is not supported/,
    );
  });
});
