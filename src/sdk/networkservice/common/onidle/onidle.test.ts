// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext, sleep } from "../../../core/context.js";
import { Code, type NsmError, unavailable } from "../../../core/errors.js";
import { injectError } from "../../../testing/elements.js";
import { onIdleServer } from "./index.js";

const request = (id: string) => create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id }) });
const ctx = () => CallContext.create();

describe("onIdleServer", () => {
  it("calls onIdle once after the timeout with no connection, then refuses requests", async () => {
    let idle = 0;
    const h = bind(onIdleServer({ timeoutMs: 40, onIdle: () => idle++ }));
    await sleep(120);
    assert.equal(idle, 1);
    await assert.rejects(h.request(request("a"), ctx()), (e: NsmError) => e.code === Code.Unavailable);
    await sleep(80);
    assert.equal(idle, 1, "notified once");
  });

  it("does not fire while a connection is open; fires after the last one closes", async () => {
    let idle = 0;
    const h = bind(onIdleServer({ timeoutMs: 200, onIdle: () => idle++ }));
    const a = await h.request(request("a"), ctx());
    const b = await h.request(request("b"), ctx());
    await sleep(300);
    assert.equal(idle, 0, "two connections open");
    await h.request(request("a"), ctx()); // a refresh
    await h.close(a, ctx());
    await sleep(300);
    assert.equal(idle, 0, "b is still open");
    await h.close(b, ctx());
    await sleep(20);
    assert.equal(idle, 0, "not yet: the timer restarted at the last close");
    await sleep(400);
    assert.equal(idle, 1);
  });

  it("a failed new connection does not keep the endpoint busy", async () => {
    let idle = 0;
    const h = bind(
      chain(
        onIdleServer({ timeoutMs: 50, onIdle: () => idle++ }),
        injectError(() => unavailable("no")),
      ),
    );
    await assert.rejects(h.request(request("a"), ctx()));
    await sleep(120);
    assert.equal(idle, 1);
  });

  it("stops watching when its signal aborts, and timeout 0 turns it off", async () => {
    let idle = 0;
    const stop = new AbortController();
    bind(onIdleServer({ timeoutMs: 30, onIdle: () => idle++, signal: stop.signal }));
    stop.abort();
    const off = bind(onIdleServer({ timeoutMs: 0, onIdle: () => idle++ }));
    await sleep(80);
    assert.equal(idle, 0);
    const conn = await off.request(request("x"), ctx());
    assert.equal(conn.id, "x");
  });
});
