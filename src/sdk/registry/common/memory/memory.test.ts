// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../../../api/gen/registry_pb.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { activeTimers, nextWithin, testContext } from "../../../testing/async.js";
import { bindRegistry, collectRecords, type NseTypes, nseKind, nsKind, registryChain } from "../../core/index.js";
import { registryMemory } from "./index.js";

const nse = (name: string, services: string[], url = "") =>
  create(NetworkServiceEndpointSchema, { name, networkServiceNames: services, url });

describe("registryMemory", () => {
  it("Find without watch yields the current matches and ends", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryMemory(nseKind));
    await h.register(nse("a", ["s1"]), ctx);
    await h.register(nse("b", ["s1", "s2"]), ctx);
    await h.register(nse("c", ["s3"]), ctx);
    const all = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.deepEqual(all.map((r) => r.name).sort(), ["a", "b", "c"]);
    const s1 = await collectRecords(nseKind, h, nseKind.query(nse("", ["s1"]), false), ctx);
    assert.deepEqual(s1.map((r) => r.name).sort(), ["a", "b"]);
    const byName = await collectRecords(nseKind, h, nseKind.query(nse("b", []), false), ctx);
    assert.deepEqual(
      byName.map((r) => r.name),
      ["b"],
    );
    cancel();
  });

  it("replaces a record on re-register and forgets it on unregister", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryMemory(nseKind));
    await h.register(nse("a", ["s1"], "tcp://1.1.1.1:1"), ctx);
    await h.register(nse("a", ["s1"], "tcp://2.2.2.2:2"), ctx);
    let all = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      all.map((r) => r.url),
      ["tcp://2.2.2.2:2"],
    );
    await h.unregister(nse("a", []), ctx);
    all = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.equal(all.length, 0);
    cancel();
  });

  it("stores copies: changing a returned or found record does not change the store", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryMemory(nseKind));
    const input = nse("a", ["s1"], "tcp://1.1.1.1:1");
    const out = await h.register(input, ctx);
    out.url = "changed";
    input.url = "changed";
    const [found] = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    found!.url = "changed";
    const [again] = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.equal(again!.url, "tcp://1.1.1.1:1");
    cancel();
  });

  it("Find with watch yields current matches, then updates and deletions that match, until aborted", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryMemory(nseKind));
    await h.register(nse("a", ["s1"]), ctx);
    await h.register(nse("other", ["s2"]), ctx);

    const watch = testContext();
    const it = h.find(nseKind.query(nse("", ["s1"]), true), watch.ctx)[Symbol.asyncIterator]();
    const first = await nextWithin(it);
    assert.equal(first.value?.networkServiceEndpoint?.name, "a");
    assert.equal(first.value?.deleted, false);

    await h.register(nse("other2", ["s2"]), ctx); // does not match: not delivered
    await h.register(nse("b", ["s1"], "tcp://3.3.3.3:3"), ctx);
    const update = await nextWithin(it);
    assert.equal(update.value?.networkServiceEndpoint?.name, "b");
    assert.equal(update.value?.networkServiceEndpoint?.url, "tcp://3.3.3.3:3");
    assert.equal(update.value?.deleted, false);

    await h.unregister(nse("a", []), ctx);
    const deleted = await nextWithin(it);
    assert.equal(deleted.value?.networkServiceEndpoint?.name, "a");
    assert.deepEqual(deleted.value?.networkServiceEndpoint?.networkServiceNames, ["s1"]);
    assert.equal(deleted.value?.deleted, true);

    const pending = it.next();
    watch.cancel();
    assert.equal((await pending).done, true);
    assert.equal((await it.next()).done, true);
    // A register after the watch ended reaches nobody and nothing is left running.
    await h.register(nse("c", ["s1"]), ctx);
    cancel();
    assert.equal(activeTimers(), timersBefore);
  });

  it("delivers each event to every watcher", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryMemory(nseKind));
    const w1 = testContext();
    const w2 = testContext();
    const it1 = h.find(nseKind.query(undefined, true), w1.ctx)[Symbol.asyncIterator]();
    const it2 = h.find(nseKind.query(undefined, true), w2.ctx)[Symbol.asyncIterator]();
    const p1 = nextWithin(it1);
    const p2 = nextWithin(it2);
    await h.register(nse("a", ["s"]), ctx);
    assert.equal((await p1).value?.networkServiceEndpoint?.name, "a");
    assert.equal((await p2).value?.networkServiceEndpoint?.name, "a");
    w1.cancel();
    w2.cancel();
    cancel();
  });

  it("ends a watcher that falls too far behind with ResourceExhausted", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryMemory(nseKind, { maxPendingEvents: 2 }));
    const it = h.find(nseKind.query(undefined, true), ctx)[Symbol.asyncIterator]();
    const first = it.next(); // starts the watch
    await h.register(nse("a", ["s"]), ctx);
    assert.equal((await first).value?.networkServiceEndpoint?.name, "a");
    for (const n of ["b", "c", "d", "e"]) await h.register(nse(n, ["s"]), ctx);
    assert.equal((await it.next()).value?.networkServiceEndpoint?.name, "b");
    assert.equal((await it.next()).value?.networkServiceEndpoint?.name, "c");
    await assert.rejects(it.next(), (e: NsmError) => e.code === Code.ResourceExhausted);
    cancel();
  });

  it("passes Find on to the rest of the chain", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(
      registryChain<NseTypes>(registryMemory(nseKind), {
        name: "more",
        register: (r, c, n) => n.register(r, c),
        async *find() {
          yield nseKind.response(nse("from-next", []), false);
        },
        unregister: (r, c, n) => n.unregister(r, c),
      }),
    );
    await h.register(nse("a", []), ctx);
    const all = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      all.map((r) => r.name),
      ["a", "from-next"],
    );
    cancel();
  });

  it("serves NetworkServices with the NS matching rules", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryMemory(nsKind));
    await h.register(create(NetworkServiceSchema, { name: "svc", payload: "ETHERNET" }), ctx);
    await h.register(create(NetworkServiceSchema, { name: "svc2", payload: "IP" }), ctx);
    const eth = await collectRecords(
      nsKind,
      h,
      nsKind.query(create(NetworkServiceSchema, { payload: "ETHERNET" }), false),
      ctx,
    );
    assert.deepEqual(
      eth.map((r) => r.name),
      ["svc"],
    );
    const byName = await collectRecords(
      nsKind,
      h,
      nsKind.query(create(NetworkServiceSchema, { name: "svc2" }), false),
      ctx,
    );
    assert.deepEqual(
      byName.map((r) => r.payload),
      ["IP"],
    );
    cancel();
  });
});
