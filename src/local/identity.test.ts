// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { processIdentitiesOf } from "./identity.js";
import { emptyState, runtimePaths, type State } from "./state.js";

describe("local runtime identities", () => {
  it("lists every running process of the state: components by name, containers by pod", () => {
    const paths = runtimePaths("/run/nsm-test-identity");
    const proc = (pid: number) => ({ pid, start: pid * 10, log: "", argv: [] });
    const state: State = {
      ...emptyState(paths),
      trustDomain: "nsm.local",
      identityProvider: proc(1),
      registry: proc(2),
      nodes: [
        {
          name: "node-1",
          netns: "n",
          dir: "d",
          nsmgrSocket: "s",
          forwarderSocket: "f",
          createdAt: "",
          nsmgr: proc(3),
          forwarder: proc(4),
        },
      ],
    };
    state.pods.push({
      namespace: "ns-a",
      name: "web-0",
      uid: "u",
      node: "node-1",
      netns: "p",
      labels: {},
      annotations: {},
      specHash: "",
      containers: [
        { name: "init", type: "init", injected: true, image: "", argv: [], env: {}, log: "" },
        { name: "app", type: "app", injected: false, image: "", argv: [], env: {}, log: "", proc: proc(5) },
        { name: "nsc", type: "app", injected: true, image: "", argv: [], env: {}, log: "", proc: proc(6) },
      ],
      phase: "Running",
      createdAt: "",
    });
    const ids = processIdentitiesOf(state);
    assert.equal(ids.trustDomain, "nsm.local");
    assert.deepEqual(
      ids.processes.map((p) => [p.pid, p.start, p.spiffeId]),
      [
        [2, 20, "spiffe://nsm.local/ns/nsm-system/component/registry"],
        [3, 30, "spiffe://nsm.local/ns/nsm-system/component/nsmgr-node-1"],
        [4, 40, "spiffe://nsm.local/ns/nsm-system/component/forwarder-node-1"],
        [5, 50, "spiffe://nsm.local/ns/ns-a/pod/web-0"],
        [6, 60, "spiffe://nsm.local/ns/ns-a/pod/web-0"],
      ],
    );
  });
});
