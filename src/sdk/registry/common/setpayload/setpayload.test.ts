// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceSchema } from "../../../../api/gen/registry_pb.js";
import { testContext } from "../../../testing/async.js";
import { memoryRegistry } from "../../chains/memory/index.js";
import { bindRegistry, collectRecords, nsKind } from "../../core/index.js";
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

  it("a NetworkService registered without payload is found with IP, also by a query for IP", async () => {
    const { ctx, cancel } = testContext();
    const reg = memoryRegistry();
    await reg.ns.register(create(NetworkServiceSchema, { name: "svc" }), ctx);
    const find = (template: { name?: string; payload?: string }) =>
      collectRecords(nsKind, reg.ns, nsKind.query(create(NetworkServiceSchema, template), false), ctx);
    assert.deepEqual(
      (await find({ name: "svc" })).map((r) => r.payload),
      ["IP"],
    );
    assert.deepEqual(
      (await find({ payload: "IP" })).map((r) => r.name),
      ["svc"],
    );
    cancel();
  });
});
