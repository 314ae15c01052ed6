// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import { eventually, testContext } from "../../../testing/async.js";
import { registryCount } from "../../../testing/registry.js";
import { bindRegistry, collectRecords, type NseTypes, nseKind, registryChain } from "../../core/index.js";
import { registryMemory } from "../memory/index.js";
import { registryQueryCache } from "./index.js";

const nse = (name: string, services: string[]) =>
  create(NetworkServiceEndpointSchema, { name, networkServiceNames: services });

describe("registryQueryCache", () => {
  it("answers a repeated Find from the cache and follows changes through its watch", async () => {
    const { ctx, cancel } = testContext();
    const lifetime = new AbortController();
    const counter = registryCount<NseTypes>();
    const h = bindRegistry(
      registryChain<NseTypes>(
        registryQueryCache(nseKind, { signal: lifetime.signal }),
        counter,
        registryMemory(nseKind),
      ),
    );
    await h.register(nse("a", ["svc"]), ctx);
    const q = nseKind.query(nse("", ["svc"]), false);
    const names = async () =>
      (await collectRecords(nseKind, h, q, ctx))
        .map((r) => r.name)
        .sort()
        .join();
    assert.equal(await names(), "a");
    assert.equal(counter.finds, 2, "the first Find goes downstream and opens a watch");
    assert.equal(await names(), "a");
    assert.equal(counter.finds, 2, "the second Find is answered from the cache");
    await h.register(nse("b", ["svc"]), ctx);
    await eventually(async () => (await names()) === "a,b");
    await h.unregister(nse("a", []), ctx);
    await eventually(async () => (await names()) === "b");
    assert.equal(counter.finds, 2);
    lifetime.abort();
    assert.equal(await names(), "b");
    assert.equal(counter.finds, 3, "after the owner stops, Finds go downstream again");
    cancel();
  });
});
