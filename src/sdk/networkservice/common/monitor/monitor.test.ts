// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ConnectionEvent,
  ConnectionEventType,
  ConnectionSchema,
  create,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
  State,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { injectError } from "../../../testing/elements.js";
import { beginServer } from "../begin/index.js";
import { metadataServer } from "../metadata/index.js";
import { updatePathServer } from "../updatepath/index.js";
import { ConnectionMonitor, matchesSelector, monitorServer } from "./index.js";

const conn = (segments: [string, string][], service = "svc") =>
  create(ConnectionSchema, {
    id: segments[0]![1],
    networkService: service,
    path: { index: 0, pathSegments: segments.map(([name, id]) => ({ name, id })) },
  });

describe("matchesSelector", () => {
  const c = conn([
    ["nsc", "a"],
    ["nsmgr", "b"],
    ["fwd", "c"],
  ]);
  const sel = (segs: { name?: string; id?: string }[], services: string[] = []) =>
    create(MonitorScopeSelectorSchema, { pathSegments: segs, networkServices: services });
  it("an empty selector matches everything", () => assert.ok(matchesSelector(c, sel([]))));
  it("matches a contiguous run anywhere in the path, empty fields being wildcards", () => {
    assert.ok(matchesSelector(c, sel([{ id: "b" }])));
    assert.ok(matchesSelector(c, sel([{ id: "b" }, { name: "fwd" }])));
    assert.ok(!matchesSelector(c, sel([{ id: "a" }, { id: "c" }])), "not contiguous");
    assert.ok(!matchesSelector(c, sel([{ id: "b", name: "other" }])));
  });
  it("filters on network services", () => {
    assert.ok(matchesSelector(c, sel([], ["svc"])));
    assert.ok(!matchesSelector(c, sel([], ["other"])));
  });
});

async function take(it: AsyncIterator<ConnectionEvent>, n: number): Promise<ConnectionEvent[]> {
  const out: ConnectionEvent[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe("monitorServer", () => {
  it("sends INITIAL_STATE_TRANSFER first, then UPDATE on Request, DOWN on a failed refresh and DELETE on Close", async () => {
    const monitor = new ConnectionMonitor();
    let fail = false;
    const h = bind(
      chain(
        updatePathServer("nse"),
        beginServer(),
        metadataServer(),
        monitorServer(monitor),
        injectError(() => new NsmError("refresh failed", Code.Unavailable), { request: () => fail }),
      ),
    );
    const ctx = () => CallContext.create();
    const first = await h.request(create(NetworkServiceRequestSchema, { connection: conn([["nsc", "old"]]) }), ctx());
    const ac = new AbortController();
    const stream = monitor.events(create(MonitorScopeSelectorSchema, {}), ac.signal)[Symbol.asyncIterator]();
    const [initial] = await take(stream, 1);
    assert.equal(initial?.type, ConnectionEventType.INITIAL_STATE_TRANSFER);
    assert.equal(Object.keys(initial!.connections).length, 1, "the existing connection is in the initial state");

    const other = create(NetworkServiceRequestSchema, { connection: conn([["nsc2", "new"]]) });
    const pending = take(stream, 1);
    await h.request(other, ctx());
    const [update] = await pending;
    assert.equal(update?.type, ConnectionEventType.UPDATE);
    assert.equal(Object.values(update!.connections)[0]?.path?.pathSegments[0]?.id, "new");

    fail = true;
    const downP = take(stream, 1);
    await assert.rejects(h.request(create(NetworkServiceRequestSchema, { connection: first }), ctx()));
    const [down] = await downP;
    assert.equal(down?.type, ConnectionEventType.UPDATE);
    assert.equal(Object.values(down!.connections)[0]?.state, State.DOWN);
    fail = false;

    const delP = take(stream, 1);
    await h.close(first, ctx());
    const [del] = await delP;
    assert.equal(del?.type, ConnectionEventType.DELETE);
    assert.equal(monitor.connections().length, 1);
    ac.abort();
    assert.equal((await stream.next()).done, true, "the stream ends when its signal aborts");
  });

  it("reports a connection UP after a successful Request that carried RESELECT_REQUESTED (a heal's reselect)", async () => {
    const monitor = new ConnectionMonitor();
    const h = bind(chain(updatePathServer("nse"), beginServer(), metadataServer(), monitorServer(monitor)));
    const ctx = () => CallContext.create();
    const first = await h.request(create(NetworkServiceRequestSchema, { connection: conn([["nsc", "c1"]]) }), ctx());
    const reselect = create(NetworkServiceRequestSchema, { connection: { ...first, state: State.RESELECT_REQUESTED } });
    const returned = await h.request(reselect, ctx());
    assert.equal(State[returned.state], "UP", "as returned");
    assert.deepEqual(
      monitor.connections().map((c) => State[c.state]),
      ["UP"],
      "as reported on MonitorConnections",
    );
  });

  it("filters events per subscriber", async () => {
    const monitor = new ConnectionMonitor();
    const ac = new AbortController();
    const stream = monitor
      .events(create(MonitorScopeSelectorSchema, { pathSegments: [{ id: "mine" }] }), ac.signal)
      [Symbol.asyncIterator]();
    const [initial] = await take(stream, 1);
    assert.deepEqual(Object.keys(initial!.connections), []);
    const next = take(stream, 1);
    monitor.update(conn([["x", "not-mine"]]));
    monitor.update(conn([["y", "mine"]]));
    const [ev] = await next;
    assert.deepEqual(
      Object.values(ev!.connections).map((c) => c.path?.pathSegments[0]?.id),
      ["mine"],
    );
    ac.abort();
    await stream.next();
  });
});

describe("ConnectionMonitor with many subscribers", () => {
  const sel = (segs: { name?: string; id?: string }[]) => create(MonitorScopeSelectorSchema, { pathSegments: segs });
  it("delivers by segment id, by name and to everyone, also after a path change and a delete", async () => {
    const monitor = new ConnectionMonitor();
    const life = new AbortController();
    const streams = {
      byId: monitor.events(sel([{ id: "b" }]), life.signal),
      byName: monitor.events(sel([{ name: "fwd" }]), life.signal),
      all: monitor.events(sel([]), life.signal),
      other: monitor.events(sel([{ id: "zzz" }]), life.signal),
    };
    for (const s of Object.values(streams))
      assert.equal((await take(s, 1))[0]!.type, ConnectionEventType.INITIAL_STATE_TRANSFER);
    const c1 = conn([
      ["nsc", "a"],
      ["nsmgr", "b"],
      ["fwd", "c"],
    ]);
    const c2 = conn([
      ["nsc", "x"],
      ["nsmgr", "y"],
    ]);
    monitor.update(c1);
    monitor.update(c2);
    const ids = (e: ConnectionEvent[]) => e.map((x) => `${x.type}:${Object.keys(x.connections).join()}`);
    assert.deepEqual(ids(await take(streams.byId, 1)), [`${ConnectionEventType.UPDATE}:a`]);
    assert.deepEqual(ids(await take(streams.byName, 1)), [`${ConnectionEventType.UPDATE}:a`]);
    assert.deepEqual(ids(await take(streams.all, 2)), [
      `${ConnectionEventType.UPDATE}:a`,
      `${ConnectionEventType.UPDATE}:x`,
    ]);
    // The path of x changes to hold b: the by-id subscriber sees it from then on, and a new one
    // gets both in its initial state.
    monitor.update(
      conn([
        ["nsc", "x"],
        ["nsmgr", "b"],
      ]),
    );
    assert.deepEqual(ids(await take(streams.byId, 1)), [`${ConnectionEventType.UPDATE}:x`]);
    const late = monitor.events(sel([{ id: "b" }]), life.signal);
    assert.deepEqual(Object.keys((await take(late, 1))[0]!.connections).sort(), ["a", "x"]);
    monitor.delete(c1);
    assert.deepEqual(ids(await take(streams.byId, 1)), [`${ConnectionEventType.DELETE}:a`]);
    const after = monitor.events(sel([{ id: "b" }]), life.signal);
    assert.deepEqual(Object.keys((await take(after, 1))[0]!.connections), ["x"]);
    const pending = streams.other.next();
    life.abort();
    assert.equal((await pending).done, true, "the unrelated subscriber saw nothing before the end");
  });
});
