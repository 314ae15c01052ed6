// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema, State } from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext, sleep } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { count, injectError } from "../../../testing/elements.js";
import { updatePathServer } from "../updatepath/index.js";
import { beginClient, beginServer, type EventFactory, eventFactoryOf } from "./index.js";

const request = (id = "c1", state = State.UP) =>
  create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id, networkService: "svc", state }) });

/** Records the order in which requests enter and leave, with a delay inside. */
function slow(log: string[], ms: number): NetworkServiceElement {
  return {
    name: "slow",
    async request(req, ctx, next) {
      log.push(`in:${req.connection?.labels.n}`);
      await sleep(ms);
      log.push(`out:${req.connection?.labels.n}`);
      return next.request(req, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

describe("begin", () => {
  it("serializes events of one connection in arrival order", async () => {
    const log: string[] = [];
    const h = bind(chain(updatePathServer("s"), beginServer(), slow(log, 20)));
    const r1 = request();
    r1.connection!.labels = { n: "1" };
    const r2 = request();
    r2.connection!.labels = { n: "2" };
    await Promise.all([h.request(r1, CallContext.create()), h.request(r2, CallContext.create())]);
    assert.deepEqual(log, ["in:1", "out:1", "in:2", "out:2"]);
  });

  it("runs different connections concurrently", async () => {
    const log: string[] = [];
    const h = bind(chain(updatePathServer("s"), beginServer(), slow(log, 20)));
    const r1 = request("a");
    r1.connection!.labels = { n: "a" };
    const r2 = request("b");
    r2.connection!.labels = { n: "b" };
    await Promise.all([h.request(r1, CallContext.create()), h.request(r2, CallContext.create())]);
    assert.deepEqual(log.slice(0, 2), ["in:a", "in:b"]);
  });

  it("sets state UP on the server and closes with the last returned connection", async () => {
    const c = count();
    const h = bind(chain(updatePathServer("s"), beginServer(), c));
    const conn = await h.request(request("x", State.DOWN), CallContext.create());
    assert.equal(conn.state, State.UP);
    await h.close(create(ConnectionSchema, { id: "x" }), CallContext.create());
    assert.equal(c.closes, 1);
    await h.close(create(ConnectionSchema, { id: "x" }), CallContext.create());
    assert.equal(c.closes, 1, "a second Close of a closed connection does nothing");
  });

  it("keeps no state after a failed first request", async () => {
    const c = count();
    let fail = true;
    const h = bind(
      chain(
        updatePathServer("s"),
        beginServer(),
        c,
        injectError(() => new NsmError("boom", Code.Internal), {
          request: () => fail,
        }),
      ),
    );
    await assert.rejects(h.request(request("y"), CallContext.create()), /boom/);
    await h.close(create(ConnectionSchema, { id: "y" }), CallContext.create());
    assert.equal(c.closes, 0, "Close of a connection that never came up does not reach downstream");
    fail = false;
    await h.request(request("y"), CallContext.create());
  });

  it("closes the old downstream connection on RESELECT_REQUESTED", async () => {
    const c = count();
    const h = bind(chain(updatePathServer("s"), beginServer(), c));
    await h.request(request("z"), CallContext.create());
    await h.request(request("z", State.RESELECT_REQUESTED), CallContext.create());
    assert.equal(c.closes, 1);
    assert.equal(c.requests, 2);
  });

  it("lets a later element re-request and close through the event factory", async () => {
    let factory: EventFactory | undefined;
    const grab: NetworkServiceElement = {
      name: "grab",
      request: (req, ctx, next) => {
        factory = eventFactoryOf(ctx);
        return next.request(req, ctx);
      },
      close: (conn, ctx, next) => next.close(conn, ctx),
    };
    const c = count();
    const h = bind(chain(updatePathServer("nsc"), beginClient(), grab, c));
    await h.request(request("e"), CallContext.create());
    assert.equal(factory?.state, "established");
    await factory!.request();
    assert.equal(c.requests, 2);
    await factory!.request({ reselect: true });
    assert.equal(c.closes, 1);
    assert.equal(c.lastRequest?.connection?.state, State.RESELECT_REQUESTED);
    await factory!.close();
    assert.equal(c.closes, 2);
    assert.equal(factory!.state, "closed");
  });

  it("keeps next per connection: events and Close use the chain each connection came through", async () => {
    // One begin instance used in front of two different continuations (a chain reused by two
    // servers): each connection's events go where its own Request went, and a Close goes to
    // the next it is given.
    const begin = beginServer();
    const a = count();
    const b = count();
    let factory: EventFactory | undefined;
    const grab: NetworkServiceElement = {
      name: "grab",
      request: (req, ctx, next) => {
        if (req.connection?.id === "ca") factory = eventFactoryOf(ctx);
        return next.request(req, ctx);
      },
      close: (conn, ctx, next) => next.close(conn, ctx),
    };
    const ha = bind(chain(begin, grab, a));
    const hb = bind(chain(begin, grab, b));
    await ha.request(request("ca"), CallContext.create());
    await hb.request(request("cb"), CallContext.create());
    await factory!.request();
    assert.deepEqual([a.requests, b.requests], [2, 1], "the event for ca went down ca's chain");
    await hb.close(create(ConnectionSchema, { id: "cb" }), CallContext.create());
    assert.deepEqual([a.closes, b.closes], [0, 1]);
    await factory!.close();
    assert.deepEqual([a.closes, b.closes], [1, 1]);
  });
});
