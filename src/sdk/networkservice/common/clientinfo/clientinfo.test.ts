// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { count } from "../../../testing/elements.js";
import { clientInfoClient } from "./index.js";

const request = (labels: Record<string, string> = {}) =>
  create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "c1", labels }) });

describe("clientInfoClient", () => {
  it("adds nodeName, podName and clusterName", async () => {
    const after = count();
    const h = bind(chain(clientInfoClient({ nodeName: "node-1", podName: "pod-a", clusterName: "c" }), after));
    await h.request(request({ app: "x" }), CallContext.create());
    assert.deepEqual(after.lastRequest!.connection!.labels, {
      app: "x",
      nodeName: "node-1",
      podName: "pod-a",
      clusterName: "c",
    });
  });
  it("never overwrites a label, skips unset values and keeps empty ones", async () => {
    const after = count();
    const h = bind(chain(clientInfoClient({ nodeName: "node-1", clusterName: "" }), after));
    const req = request({ nodeName: "mine" });
    await h.request(req, CallContext.create());
    assert.deepEqual(after.lastRequest!.connection!.labels, { nodeName: "mine", clusterName: "" });
    assert.deepEqual(req.connection!.labels, { nodeName: "mine" }, "the caller's request is not mutated");
  });
});
