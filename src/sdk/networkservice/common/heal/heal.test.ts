// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { type Connection, ConnectionSchema, clone, State } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { delay, eventually } from "../../../testing/async.js";
import { type Counter, checkRequest, count } from "../../../testing/elements.js";
import { nscRequest } from "../../../testing/requests.js";
import { type ServedChain, serveChain } from "../../../testing/serve.js";
import { beginClient, beginServer } from "../begin/index.js";
import { clientUrlClient } from "../clienturl/index.js";
import { connectClient } from "../connect/index.js";
import { dialClient } from "../dial/index.js";
import { metadataClient } from "../metadata/index.js";
import { updatePathClient, updatePathServer } from "../updatepath/index.js";
import { type HealClientOptions, healClient } from "./index.js";

const request = () => nscRequest("svc", "nsc-1");

describe("heal", () => {
  let hop: ServedChain;
  let seen: Counter;
  let life: AbortController;
  let healed: string[];
  /** The state of each Request the hop received (begin sets UP on what it returns). */
  let states: State[];
  beforeEach(async () => {
    seen = count();
    states = [];
    hop = await serveChain(
      "heal-hop",
      updatePathServer("hop"),
      beginServer(),
      seen,
      checkRequest((req) => states.push(req.connection!.state)),
    );
    life = new AbortController();
    healed = [];
  });
  afterEach(async () => {
    life.abort();
    await hop.stop();
  });

  const client = (options: HealClientOptions = {}) =>
    bind(
      chain(
        updatePathClient("nsc"),
        beginClient(),
        metadataClient(),
        healClient({
          signal: life.signal,
          retryIntervalMs: 20,
          livenessCheckIntervalMs: 20,
          onHealed: (_c, how) => healed.push(how),
          ...options,
        }),
        clientUrlClient(hop.url),
        dialClient(),
        connectClient(),
      ),
    );
  /** The hop's record of the connection, once the client's watch of it is live. */
  const watched = async (): Promise<Connection> => {
    await eventually(() => hop.monitor.connections().length === 1 && hop.openWatches() === 1);
    return hop.monitor.connections()[0]!;
  };

  it("reselects when the next hop reports the connection deleted (no liveness check)", async () => {
    const h = client();
    await h.request(request(), CallContext.create());
    hop.monitor.delete(await watched());
    await eventually(() => healed.length === 1);
    assert.deepEqual(healed, ["reselect"]);
    assert.equal(seen.requests, 2);
    assert.equal(seen.closes, 1, "the old path was closed first");
    assert.deepEqual(states, [State.UP, State.RESELECT_REQUESTED]);
    await eventually(() => hop.openWatches() === 1, 2000);
    await h.close(request().connection!, CallContext.create());
  });

  it("re-requests on the same path when the control plane broke but the data plane is alive", async () => {
    const h = client({ livenessCheck: async () => true });
    await h.request(request(), CallContext.create());
    const conn = await watched();
    const down = clone(ConnectionSchema, conn);
    down.state = State.DOWN;
    hop.monitor.update(down);
    await eventually(() => healed.length === 1);
    assert.deepEqual(healed, ["re-request"]);
    assert.equal(seen.closes, 0);
    assert.deepEqual(states, [State.UP, State.UP]);
    await h.close(request().connection!, CallContext.create());
  });

  it("re-requests once when the path asks for a refresh (REFRESH_REQUESTED)", async () => {
    const h = client();
    await h.request(request(), CallContext.create());
    const conn = clone(ConnectionSchema, await watched());
    conn.state = State.REFRESH_REQUESTED;
    hop.monitor.update(conn);
    await eventually(() => seen.requests === 2);
    await delay(100);
    assert.equal(seen.requests, 2);
    assert.equal(seen.closes, 0);
    assert.deepEqual(healed, [], "a requested refresh is not a heal");
    await h.close(request().connection!, CallContext.create());
  });

  it("reselects when the liveness check fails (data plane down)", async () => {
    let alive = true;
    const h = client({ livenessCheck: async () => alive });
    await h.request(request(), CallContext.create());
    await watched();
    alive = false;
    await eventually(() => healed.length >= 1);
    alive = true;
    assert.equal(healed[0], "reselect");
    assert.equal(seen.closes >= 1, true);
    await h.close(request().connection!, CallContext.create());
  });

  it("without reselect, re-requests a broken connection on the same path", async () => {
    const gaveUp: Connection[] = [];
    const h = client({ reselect: false, onGaveUp: (c) => gaveUp.push(c) });
    await h.request(request(), CallContext.create());
    hop.monitor.update(Object.assign(clone(ConnectionSchema, await watched()), { state: State.DOWN }));
    await eventually(() => healed.length === 1);
    assert.deepEqual(healed, ["re-request"]);
    assert.equal(seen.closes, 0);
    assert.deepEqual(states, [State.UP, State.UP], "never RESELECT_REQUESTED");
    assert.deepEqual(gaveUp, []);
    await h.close(request().connection!, CallContext.create());
  });

  it("without reselect, closes the connection and says so when the same path is gone", async () => {
    const gaveUp: Connection[] = [];
    const h = client({ reselect: false, onGaveUp: (c) => gaveUp.push(c) });
    const conn = await h.request(request(), CallContext.create());
    await watched();
    await hop.server.stop();
    await eventually(() => gaveUp.length === 1, 5000);
    assert.equal(gaveUp[0]!.id, conn.id);
    assert.deepEqual(healed, []);
    assert.equal(seen.requests, 1, "no reselect reached the hop");
  });

  it("stops watching after Close", async () => {
    const h = client();
    await h.request(request(), CallContext.create());
    const conn = await watched();
    await h.close(request().connection!, CallContext.create());
    await eventually(() => hop.openWatches() === 0);
    hop.monitor.update(Object.assign(clone(ConnectionSchema, conn), { state: State.DOWN }));
    await delay(150);
    assert.deepEqual(healed, []);
    assert.equal(seen.requests, 1);
  });
});
