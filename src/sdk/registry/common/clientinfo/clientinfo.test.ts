// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema, NetworkServiceLabelsSchema } from "../../../../api/gen/registry_pb.js";
import { testContext } from "../../../testing/async.js";
import { bindRegistry } from "../../core/index.js";
import { registryClientInfo } from "./index.js";

describe("registryClientInfo", () => {
  it("adds node/pod/cluster labels to every labels entry without overwriting", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryClientInfo({ nodeName: "node-1", podName: "pod-1", clusterName: "" }));
    const input = create(NetworkServiceEndpointSchema, {
      name: "nse",
      networkServiceNames: ["a", "b", "c"],
      networkServiceLabels: {
        a: create(NetworkServiceLabelsSchema, { labels: { app: "x" } }),
        b: create(NetworkServiceLabelsSchema, { labels: { nodeName: "mine" } }),
      },
    });
    const out = await h.register(input, ctx);
    assert.deepEqual(out.networkServiceLabels.a?.labels, { app: "x", nodeName: "node-1", podName: "pod-1" });
    assert.deepEqual(out.networkServiceLabels.b?.labels, { nodeName: "mine", podName: "pod-1" });
    assert.equal(out.networkServiceLabels.c, undefined, "no entry is created for a service without labels");
    assert.deepEqual(input.networkServiceLabels.a?.labels, { app: "x" }, "the caller's record is not changed");
    cancel();
  });
});
