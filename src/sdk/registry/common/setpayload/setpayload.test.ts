// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceSchema } from "../../../../api/gen/registry_pb.js";
import { testContext } from "../../../testing/async.js";
import { bindRegistry } from "../../core/index.js";
import { DEFAULT_NS_PAYLOAD, registrySetPayload } from "./index.js";

describe("registrySetPayload", () => {
  it("gives an empty payload the default IP and keeps a given one", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registrySetPayload());
    const input = create(NetworkServiceSchema, { name: "svc" });
    const out = await h.register(input, ctx);
    assert.equal(DEFAULT_NS_PAYLOAD, "IP");
    assert.equal(out.payload, "IP");
    assert.equal(input.payload, "", "the caller's record is not changed");
    const eth = await h.register(create(NetworkServiceSchema, { name: "svc", payload: "ETHERNET" }), ctx);
    assert.equal(eth.payload, "ETHERNET");
    cancel();
  });
});
