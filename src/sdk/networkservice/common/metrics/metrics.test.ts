// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { type CallObserver, metricsServer, resultCode } from "./index.js";

const req = (id: string) => create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id }) });

function recorder() {
  const calls: string[] = [];
  const live: number[] = [];
  let reselects = 0;
  const observer: CallObserver = {
    observeCall: (op, code, seconds) => {
      assert.ok(seconds >= 0 && seconds < 5);
      calls.push(`${op}:${code}`);
    },
    liveConnections: (n) => live.push(n),
    reselected: () => reselects++,
  };
  return { observer, calls, live, reselects: () => reselects };
}

let moveNow = false;
/** Fails Requests for ids starting with "bad"; once `moveNow`, answers "moved" as "moved-2". */
const behaviour: NetworkServiceElement = {
  name: "behaviour",
  request: async (r, ctx, next) => {
    const id = r.connection?.id ?? "";
    if (id.startsWith("bad")) throw new NsmError("no such service", Code.NotFound);
    if (id === "moved" && moveNow) return create(ConnectionSchema, { id: "moved-2" });
    return next.request(r, ctx);
  },
  close: async (c, ctx, next) => {
    if (c.id === "bad-close") throw new NsmError("gone", Code.Unavailable);
    return next.close(c, ctx);
  },
};

describe("metricsServer", () => {
  it("counts Requests and Closes by result code and tracks live connections", async () => {
    const r = recorder();
    const h = bind(chain(metricsServer(r.observer), behaviour));
    const ctx = CallContext.create();
    const a = await h.request(req("a"), ctx);
    await h.request(req("a"), ctx); // refresh: still one live connection
    await h.request(req("b"), ctx);
    await assert.rejects(h.request(req("bad-1"), ctx), { code: Code.NotFound });
    await h.close(a, ctx);
    await assert.rejects(h.close(create(ConnectionSchema, { id: "bad-close" }), ctx), { code: Code.Unavailable });
    assert.deepEqual(r.calls, [
      "request:OK",
      "request:OK",
      "request:OK",
      "request:NotFound",
      "close:OK",
      "close:Unavailable",
    ]);
    assert.deepEqual(r.live, [1, 2, 1]);
  });

  it("counts a Request answered under another id as a reselect", async () => {
    const r = recorder();
    const h = bind(chain(metricsServer(r.observer), behaviour));
    const ctx = CallContext.create();
    await h.request(req("moved"), ctx);
    assert.equal(r.reselects(), 0);
    moveNow = true;
    const moved = await h.request(req("moved"), ctx);
    assert.equal(moved.id, "moved-2");
    assert.equal(r.reselects(), 1);
    assert.deepEqual(r.live, [1, 1]);
    moveNow = false;
  });

  it("never lets a throwing observer fail a call", async () => {
    const h = bind(
      chain(
        metricsServer({
          observeCall: () => {
            throw new Error("backend down");
          },
          liveConnections: () => {
            throw new Error("backend down");
          },
        }),
      ),
    );
    const conn = await h.request(req("c"), CallContext.create());
    assert.equal(conn.id, "c");
    await h.close(conn, CallContext.create());
  });

  it("names codes of NsmErrors, gRPC-like errors and plain errors", () => {
    assert.equal(resultCode(new NsmError("x", Code.PermissionDenied)), "PermissionDenied");
    assert.equal(resultCode({ code: 4 }), "DeadlineExceeded");
    assert.equal(resultCode(new Error("x")), "Unknown");
  });
});
