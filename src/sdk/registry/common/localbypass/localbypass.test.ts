// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import { Code, NsmError } from "../../../core/errors.js";
import { nextWithin, testContext } from "../../../testing/async.js";
import { registryCount, registryInjectError } from "../../../testing/registry.js";
import { bindRegistry, collectRecords, type NseTypes, nseKind, registryChain } from "../../core/index.js";
import { registryMemory } from "../memory/index.js";
import { registryLocalBypass } from "./index.js";

const NSMGR = "tcp://10.0.0.5:5001";
const nse = (name: string, url: string) =>
  create(NetworkServiceEndpointSchema, { name, url, networkServiceNames: ["s"] });

function setup() {
  const memory = bindRegistry(registryMemory(nseKind));
  // localbypass → memory, with the memory also reachable directly ("the remote registry").
  const h = bindRegistry(registryChain<NseTypes>(registryLocalBypass(NSMGR)), memory);
  const urls = async (handler: typeof memory, ctx: ReturnType<typeof testContext>["ctx"]) =>
    (await collectRecords(nseKind, handler, nseKind.query(undefined, false), ctx)).map((r) => `${r.name} ${r.url}`);
  return { memory, h, urls };
}

describe("registryLocalBypass", () => {
  it("publishes the nsmgr URL and returns the real one", async () => {
    const { ctx, cancel } = testContext();
    const { memory, h, urls } = setup();
    const out = await h.register(nse("nse-1", "unix:///run/nse.sock"), ctx);
    assert.equal(out.url, "unix:///run/nse.sock");
    assert.deepEqual(await urls(memory, ctx), [`nse-1 ${NSMGR}`]);
    assert.deepEqual(await urls(h, ctx), ["nse-1 unix:///run/nse.sock"]);
    cancel();
  });

  it("finds local NSEs by the nsmgr URL and hands back their real URL", async () => {
    const { ctx, cancel } = testContext();
    const { h } = setup();
    await h.register(nse("fwd", "unix:///run/fwd.sock"), ctx);
    const found = await collectRecords(
      nseKind,
      h,
      nseKind.query(create(NetworkServiceEndpointSchema, { url: NSMGR }), false),
      ctx,
    );
    assert.deepEqual(
      found.map((r) => r.url),
      ["unix:///run/fwd.sock"],
    );
    cancel();
  });

  it("drops records that carry its URL but that it does not know, and leaves other URLs alone", async () => {
    const { ctx, cancel } = testContext();
    const { memory, h, urls } = setup();
    await memory.register(nse("stale", NSMGR), ctx); // published by a previous run of this nsmgr
    await memory.register(nse("remote", "tcp://10.0.0.6:5001"), ctx);
    await h.register(nse("local", "unix:///run/nse.sock"), ctx);
    assert.deepEqual((await urls(h, ctx)).sort(), ["local unix:///run/nse.sock", "remote tcp://10.0.0.6:5001"]);
    cancel();
  });

  it("swaps URLs in watch updates and passes deleted events on", async () => {
    const { ctx, cancel } = testContext();
    const { memory, h } = setup();
    const watch = testContext();
    const it = h.find(nseKind.query(undefined, true), watch.ctx)[Symbol.asyncIterator]();
    const first = nextWithin(it);
    await memory.register(nse("stale", NSMGR), ctx); // dropped
    await h.register(nse("local", "unix:///run/nse.sock"), ctx);
    const update = (await first).value!;
    assert.equal(update.networkServiceEndpoint?.name, "local");
    assert.equal(update.networkServiceEndpoint?.url, "unix:///run/nse.sock");
    await memory.unregister(nse("stale", ""), ctx);
    const del = (await nextWithin(it)).value!;
    assert.equal(del.networkServiceEndpoint?.name, "stale");
    assert.equal(del.deleted, true);
    watch.cancel();
    cancel();
  });

  it("unregisters with the nsmgr URL and forgets the NSE; ignores NSEs it does not know", async () => {
    const { ctx, cancel } = testContext();
    const count = registryCount<NseTypes>();
    const memory = bindRegistry(registryMemory(nseKind));
    const h = bindRegistry(registryChain<NseTypes>(registryLocalBypass(NSMGR), count), memory);
    await h.register(nse("a", "unix:///run/a.sock"), ctx);
    await h.unregister(nse("a", "unix:///run/a.sock"), ctx);
    assert.equal(count.unregisters, 1);
    assert.equal(count.lastRegistered?.url, NSMGR);
    await h.unregister(nse("a", ""), ctx);
    await h.unregister(nse("never", ""), ctx);
    assert.equal(count.unregisters, 1);
    // Forgotten: a record with its URL published by someone else's chain is now dropped.
    await memory.register(nse("a", NSMGR), ctx);
    assert.deepEqual(await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx), []);
    cancel();
  });

  it("rejects an NSE without a url and forgets a name whose first Register failed", async () => {
    const { ctx, cancel } = testContext();
    const memory = bindRegistry(registryMemory(nseKind));
    let fail = true;
    const h = bindRegistry(
      registryChain<NseTypes>(
        registryLocalBypass(NSMGR),
        registryInjectError<NseTypes>(() => new NsmError("down", Code.Unavailable), { register: () => fail }),
      ),
      memory,
    );
    await assert.rejects(h.register(nse("a", ""), ctx), (e: NsmError) => e.code === Code.InvalidArgument);
    await assert.rejects(h.register(nse("a", "unix:///run/a.sock"), ctx), (e: NsmError) => e.code === Code.Unavailable);
    fail = false;
    await memory.register(nse("a", NSMGR), ctx);
    assert.deepEqual(await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx), []);
    cancel();
  });
});
