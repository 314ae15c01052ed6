// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import { Code, NsmError } from "../../../core/errors.js";
import { delay, testContext } from "../../../testing/async.js";
import { registryCount, registryInjectError } from "../../../testing/registry.js";
import { bindRegistry, type NseTypes, nseKind, type RegistryElement, registryChain } from "../../core/index.js";
import { type RegistryEventFactory, registryBegin, registryEventFactoryOf } from "./index.js";

const nse = (name: string, url = "") => create(NetworkServiceEndpointSchema, { name, url });

/** Remembers the event factory of the last Register and delays Register by `ms`. */
function capture(ms = 0) {
  const seen: { factory?: RegistryEventFactory<NseTypes>; order: string[] } = { order: [] };
  const el: RegistryElement<NseTypes> = {
    name: "capture",
    async register(rec, ctx, next) {
      seen.factory = registryEventFactoryOf<NseTypes>(ctx);
      seen.order.push(`start ${rec.url}`);
      await delay(ms);
      seen.order.push(`end ${rec.url}`);
      return next.register(rec, ctx);
    },
    find: (q, ctx, next) => next.find(q, ctx),
    async unregister(rec, ctx, next) {
      seen.order.push(`unregister ${rec.name}`);
      return next.unregister(rec, ctx);
    },
  };
  return { seen, el };
}

describe("registryBegin", () => {
  it("rejects an empty name", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryBegin(nseKind));
    await assert.rejects(h.register(nse(""), ctx), (e: NsmError) => e.code === Code.InvalidArgument);
    cancel();
  });

  it("runs the calls for one name one at a time, in arrival order", async () => {
    const { ctx, cancel } = testContext();
    const { seen, el } = capture(20);
    const h = bindRegistry(registryChain(registryBegin(nseKind), el));
    await Promise.all([h.register(nse("a", "1"), ctx), h.register(nse("a", "2"), ctx), h.unregister(nse("a"), ctx)]);
    assert.deepEqual(seen.order, ["start 1", "end 1", "start 2", "end 2", "unregister a"]);
    cancel();
  });

  it("does not serialize different names", async () => {
    const { ctx, cancel } = testContext();
    const { seen, el } = capture(20);
    const h = bindRegistry(registryChain(registryBegin(nseKind), el));
    await Promise.all([h.register(nse("a", "1"), ctx), h.register(nse("b", "2"), ctx)]);
    assert.deepEqual(seen.order.slice(0, 2), ["start 1", "start 2"]);
    cancel();
  });

  it("ignores an Unregister for a name it does not know", async () => {
    const { ctx, cancel } = testContext();
    const count = registryCount<NseTypes>();
    const h = bindRegistry(registryChain(registryBegin(nseKind), count));
    await h.unregister(nse("ghost"), ctx);
    assert.equal(count.unregisters, 0);
    cancel();
  });

  it("forgets a name whose first Register failed", async () => {
    const { ctx, cancel } = testContext();
    const count = registryCount<NseTypes>();
    const h = bindRegistry(
      registryChain(
        registryBegin(nseKind),
        count,
        registryInjectError<NseTypes>(() => new NsmError("boom", Code.Internal)),
      ),
    );
    await assert.rejects(h.register(nse("a"), ctx));
    await h.unregister(nse("a"), ctx);
    assert.equal(count.unregisters, 0);
    cancel();
  });

  it("event Register re-sends the registration; event Unregister sends the last result and forgets", async () => {
    const { ctx, cancel } = testContext();
    const { seen, el } = capture();
    const count = registryCount<NseTypes>();
    const h = bindRegistry(registryChain(registryBegin(nseKind), el, count));
    await h.register(nse("a", "u1"), ctx);
    const factory = seen.factory!;
    assert.equal(factory.state, "established");
    const again = await factory.register({
      update: (r) => {
        r.url = "u2";
      },
    });
    assert.equal(again?.url, "u2");
    assert.equal(count.registers, 2);
    assert.equal(await factory.unregister(), true);
    assert.equal(count.unregisters, 1);
    assert.equal(factory.state, "unregistered");
    // Gone: further events are skipped, and the caller's Unregister does nothing.
    assert.equal(await factory.register(), undefined);
    assert.equal(await factory.unregister(), false);
    await h.unregister(nse("a"), ctx);
    assert.equal(count.unregisters, 1);
    cancel();
  });

  it("skips an event whose signal aborted before it ran", async () => {
    const { ctx, cancel } = testContext();
    const { seen, el } = capture();
    const count = registryCount<NseTypes>();
    const h = bindRegistry(registryChain(registryBegin(nseKind), el, count));
    await h.register(nse("a", "u1"), ctx);
    const ac = new AbortController();
    ac.abort();
    assert.equal(await seen.factory!.unregister({ signal: ac.signal }), false);
    assert.equal(count.unregisters, 0);
    cancel();
  });
});
