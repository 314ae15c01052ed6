// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CallContext, createContextKey } from "./context.js";

describe("CallContext.retained", () => {
  it("keeps the values and logger, drops the call's lifetime", () => {
    const key = createContextKey<string>("none", "test");
    const ac = new AbortController();
    const ctx = CallContext.create({ signal: ac.signal, deadline: Date.now() + 60_000 }).with(key, "kept");
    const kept = ctx.retained();
    ac.abort();
    assert.equal(ctx.signal.aborted, true);
    assert.equal(kept.signal.aborted, false, "the call's cancellation does not reach the kept context");
    assert.equal(kept.deadline, undefined);
    assert.equal(kept.get(key), "kept");
    assert.equal(kept.log, ctx.log);
    const event = kept.detached(1000);
    assert.equal(event.get(key), "kept");
    assert.ok(event.deadline !== undefined && event.deadline <= Date.now() + 1000);
  });
});
