// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../../../api/gen/registry_pb.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { activeTimers, nextWithin, testContext } from "../../../testing/async.js";
import { collectRecords, nseKind, nsKind } from "../../core/index.js";
import { memoryRegistry } from "./index.js";

describe("memoryRegistry", () => {
  it("expires NSEs, keeps the registration time, sets the NS payload and validates", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const life = new AbortController();
    const reg = memoryRegistry({ expirationMs: 200, signal: life.signal });
    const rec = create(NetworkServiceEndpointSchema, {
      name: "nse",
      url: "unix:///nse.sock",
      networkServiceNames: ["s"],
    });

    const watch = testContext();
    const it = reg.nse.find(nseKind.query(undefined, true), watch.ctx)[Symbol.asyncIterator]();
    const first = nextWithin(it);
    const out = await reg.nse.register(rec, ctx);
    assert.ok(out.expirationTime && out.initialRegistrationTime);
    assert.equal((await first).value?.deleted, false);
    const again = await reg.nse.register(rec, ctx);
    assert.deepEqual(again.initialRegistrationTime, out.initialRegistrationTime);
    assert.equal((await nextWithin(it)).value?.deleted, false);
    const expired = (await nextWithin(it, 1000)).value!;
    assert.equal(expired.deleted, true);
    assert.equal(expired.networkServiceEndpoint?.name, "nse");
    watch.cancel();

    const ns = await reg.ns.register(create(NetworkServiceSchema, { name: "s" }), ctx);
    assert.equal(ns.payload, "IP");
    await assert.rejects(
      reg.ns.register(create(NetworkServiceSchema, {}), ctx),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
    assert.equal((await collectRecords(nsKind, reg.ns, nsKind.query(undefined, false), ctx)).length, 1);
    life.abort();
    cancel();
    assert.equal(activeTimers(), timersBefore);
  });
});
