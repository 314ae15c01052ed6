// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard's model (src/local/dashboard/model.ts): a mesh becomes graph elements; each new
 * reading gives only what changed, and the events of a connection failing, healing through
 * another endpoint, an endpoint dying, a component going down.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Mesh, MeshTracker } from "../../src/local/dashboard/model.js";
import { syntheticMesh } from "./synthetic.js";

const kinds = (m: MeshTracker) => m.snapshot(0).elements.map((e) => e.kind);

describe("dashboard model", () => {
  it("draws nodes with their nsmgr and forwarder, pods, services and one edge per hop", () => {
    const s = syntheticMesh(4, 2, 1);
    const t = new MeshTracker();
    const d = t.update(s.mesh, 1);
    assert.equal(d.seq, 1);
    const count = (k: string) => kinds(t).filter((x) => x === k).length;
    assert.deepEqual(
      ["node", "nsmgr", "forwarder", "client", "endpoint", "service", "offers"].map(count),
      [2, 2, 2, 4, 2, 1, 2],
    );
    // Two connections stay on their node (3 hops), two cross to the other one (5 hops).
    assert.equal(count("hop"), 3 * 2 + 5 * 2);
    const hop = t.snapshot(0).elements.find((e) => e.id === "hop:client-1-0:2")!;
    assert.deepEqual(
      [hop.source, hop.target, hop.status, hop.conn],
      ["c:forwarder-node-2", "c:nsmgr-node-1", "ok", "client-1-0"],
    );
    for (const e of t.snapshot(0).elements.filter((x) => x.parent))
      assert.ok(
        t.snapshot(0).elements.some((p) => p.id === e.parent),
        `${e.id}: parent ${e.parent} missing`,
      );
  });

  it("a second identical reading changes nothing; a state change sends only that connection's hops", () => {
    const s = syntheticMesh(50);
    const t = new MeshTracker();
    t.update(s.mesh, 1);
    const same = t.update(s.mesh, 2);
    assert.equal(same.seq, 1);
    assert.equal(same.upsert.length + same.remove.length + same.connections.length + same.events.length, 0);
    s.set("client-7-0", { state: "DOWN" });
    const d = t.update(s.mesh, 3);
    assert.equal(d.seq, 2);
    assert.ok(
      d.upsert.every((e) => e.conn === "client-7-0" && e.status === "failed"),
      JSON.stringify(d.upsert),
    );
    assert.deepEqual(
      d.connections.map((c) => [c.id, c.status, c.shownState]),
      [["client-7-0", "failed", "DOWN"]],
    );
    assert.deepEqual(
      d.events.map((e) => [e.kind, e.text]),
      [["failed", "client-7-0 is DOWN: healing"]],
    );
  });

  it("a lost connection whose client lives is kept red (HEALING); it heals through another endpoint", () => {
    const s = syntheticMesh(2, 1, 2);
    const t = new MeshTracker();
    t.update(s.mesh, 1);
    const [kept, lost] = s.mesh.connections;
    const dead = lost!.endpoint;
    // The endpoint's pod is gone; its registry record stays until it expires: dead all the same.
    const without: Mesh = {
      ...s.mesh,
      connections: [kept!],
      pods: s.mesh.pods.filter((p) => p.name !== dead),
    };
    const d1 = t.update(without, 2);
    assert.deepEqual(
      d1.connections.map((c) => [c.id, c.status, c.shownState]),
      [[lost!.id, "failed", "HEALING"]],
    );
    assert.deepEqual(d1.events.map((e) => e.kind).sort(), ["endpoint-died", "failed"]);
    // The hops to the dead endpoint are still drawn (it is outside any node now).
    assert.ok(t.snapshot(0).elements.some((e) => e.id === `c:${dead}` && e.kind === "endpoint" && !e.parent));
    const healed = { ...lost!, endpoint: kept!.endpoint, path: [...lost!.path.slice(0, 3), kept!.endpoint] };
    const d2 = t.update({ ...without, connections: [kept!, healed] }, 3);
    assert.deepEqual(
      d2.events.map((e) => e.kind),
      ["reselected", "healed"],
    );
    assert.deepEqual(d2.remove, [`c:${dead}`]);
    // Its record expires later: no second event.
    const expired = { ...without, endpoints: s.mesh.endpoints.filter((e) => e.name !== dead) };
    assert.deepEqual(t.update({ ...expired, connections: [kept!, healed] }, 4).events, []);
    assert.ok(d2.upsert.some((e) => e.id === `hop:${lost!.id}:2` && e.target === `c:${kept!.endpoint}`));
    // The client pod goes: the connection is closed, its hops removed.
    const d3 = t.update(
      { ...expired, connections: [kept!], pods: without.pods.filter((p) => p.name !== lost!.path[0]) },
      5,
    );
    assert.deepEqual(
      d3.events.map((e) => e.kind),
      ["closed"],
    );
    assert.deepEqual(d3.removeConnections, [lost!.id]);
    assert.ok(d3.remove.includes(`hop:${lost!.id}:0`));
  });

  it("a component that dies turns red with an event; RESELECT_REQUESTED after a heal is not a failure", () => {
    const s = syntheticMesh(1, 1, 1);
    const t = new MeshTracker();
    t.update(s.mesh, 1);
    const d = t.update({ ...s.mesh, nodes: [{ name: "node-1", nsmgrUp: false, forwarderUp: true }] }, 2);
    assert.deepEqual(
      d.events.map((e) => e.text),
      ["nsmgr-node-1 down"],
    );
    assert.deepEqual(
      d.upsert.map((e) => [e.id, e.status]),
      [["c:nsmgr-node-1", "failed"]],
    );
    s.set("client-0-0", { state: "RESELECT_REQUESTED" });
    assert.equal(t.update(s.mesh, 3).connections[0]!.status, "ok");
  });
});
