// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { activeTimers, delay, nextWithin, testContext } from "../../../testing/async.js";
import { bindRegistry, collectRecords, type NseTypes, nseKind, registryChain } from "../../core/index.js";
import { registryBegin } from "../begin/index.js";
import { registryMemory } from "../memory/index.js";
import { registryExpire } from "./index.js";

const nse = (name: string) => create(NetworkServiceEndpointSchema, { name, networkServiceNames: ["s"] });

function build(expirationMs: number, signal?: AbortSignal) {
  return bindRegistry(
    registryChain<NseTypes>(registryBegin(nseKind), registryExpire({ expirationMs, signal }), registryMemory(nseKind)),
  );
}

const names = async (h: ReturnType<typeof build>, ctx: ReturnType<typeof testContext>["ctx"]) =>
  (await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx)).map((r) => r.name);

describe("registryExpire", () => {
  it("must come after begin", () => {
    assert.throws(
      () => bindRegistry(registryChain(registryExpire(), registryMemory(nseKind))),
      (e: NsmError) => e.code === Code.FailedPrecondition,
    );
  });

  it("rejects a non-positive lifetime", () => {
    assert.throws(
      () => registryExpire({ expirationMs: 0 }),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });

  it("sets expiration_time to now + lifetime, or keeps an earlier one the caller asked for", async () => {
    const { ctx, cancel } = testContext();
    const life = new AbortController();
    const h = build(60_000, life.signal);
    const before = Date.now();
    const out = await h.register(nse("a"), ctx);
    const exp = timestampMs(out.expirationTime!);
    assert.ok(exp >= before + 60_000 && exp <= Date.now() + 60_000);

    const early = nse("b");
    early.expirationTime = timestampFromMs(Date.now() + 10_000);
    const outB = await h.register(early, ctx);
    assert.equal(timestampMs(outB.expirationTime!), timestampMs(early.expirationTime));

    const late = nse("c");
    late.expirationTime = timestampFromMs(Date.now() + 3_600_000);
    const outC = await h.register(late, ctx);
    assert.ok(timestampMs(outC.expirationTime!) <= Date.now() + 60_000);
    life.abort();
    cancel();
  });

  it("unregisters an expired NSE and watchers see it deleted", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const h = build(150);
    const watch = testContext();
    const it = h.find(nseKind.query(undefined, true), watch.ctx)[Symbol.asyncIterator]();
    const first = nextWithin(it);
    await h.register(nse("a"), ctx);
    assert.equal((await first).value?.deleted, false);
    const gone = await nextWithin(it, 1000);
    assert.equal(gone.value?.networkServiceEndpoint?.name, "a");
    assert.equal(gone.value?.deleted, true);
    assert.deepEqual(await names(h, ctx), []);
    watch.cancel();
    cancel();
    assert.equal(activeTimers(), timersBefore);
  });

  it("a Register before expiry pushes the expiry back", async () => {
    const { ctx, cancel } = testContext();
    const h = build(200);
    await h.register(nse("a"), ctx);
    await delay(120);
    await h.register(nse("a"), ctx);
    await delay(120); // 240 ms after the first Register: still there
    assert.deepEqual(await names(h, ctx), ["a"]);
    await delay(150);
    assert.deepEqual(await names(h, ctx), []);
    cancel();
  });

  it("Unregister cancels the scheduled expiry", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const h = build(60_000);
    await h.register(nse("a"), ctx);
    assert.equal(activeTimers(), timersBefore + 2); // test context + expiry
    await h.unregister(nse("a"), ctx);
    assert.equal(activeTimers(), timersBefore + 1);
    cancel();
    assert.equal(activeTimers(), timersBefore);
  });

  it("aborting its signal cancels every scheduled expiry", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const life = new AbortController();
    const h = build(100, life.signal);
    await h.register(nse("a"), ctx);
    await h.register(nse("b"), ctx);
    life.abort();
    cancel();
    assert.equal(activeTimers(), timersBefore);
    await delay(150);
    const check = testContext();
    assert.deepEqual((await names(h, check.ctx)).sort(), ["a", "b"]);
    check.cancel();
  });
});
