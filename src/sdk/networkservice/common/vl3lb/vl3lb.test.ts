// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Connection,
  ConnectionContextSchema,
  ConnectionEventSchema,
  ConnectionEventType,
  ConnectionSchema,
  create,
  IPContextSchema,
} from "../../../../api/index.js";
import { applyEvent, backendsOf } from "./index.js";

function conn(id: string, labels: Record<string, string>, ip: string, service = "vl3-lb"): Connection {
  return create(ConnectionSchema, {
    id,
    networkService: service,
    labels,
    context: create(ConnectionContextSchema, { ipContext: create(IPContextSchema, { srcIpAddrs: [`${ip}/32`] }) }),
  });
}

describe("vl3lb backends", () => {
  it("selects the service's connections whose labels contain the selector, never its own", () => {
    const conns = [
      conn("s1", { app: "finance", podName: "s1" }, "172.16.0.3"),
      conn("s2", { app: "finance" }, "172.16.0.2"),
      conn("c", { app: "client" }, "172.16.0.4"),
      conn("other", { app: "finance" }, "10.0.0.1", "other-service"),
      conn("lb", { app: "finance" }, "172.16.0.5"),
    ];
    assert.deepEqual(backendsOf(conns, "vl3-lb", { app: "finance" }, new Set(["lb"])), ["172.16.0.2", "172.16.0.3"]);
    assert.deepEqual(backendsOf(conns, "vl3-lb", { app: "hr" }, new Set()), []);
  });

  it("follows the monitor's events: initial state, updates and deletions", () => {
    const known = new Map<string, Connection>();
    const event = (type: ConnectionEventType, cs: Connection[]) =>
      create(ConnectionEventSchema, { type, connections: Object.fromEntries(cs.map((c) => [c.id, c])) });
    applyEvent(known, event(ConnectionEventType.INITIAL_STATE_TRANSFER, [conn("a", {}, "172.16.0.2")]));
    applyEvent(known, event(ConnectionEventType.UPDATE, [conn("b", {}, "172.16.0.3")]));
    assert.deepEqual([...known.keys()], ["a", "b"]);
    applyEvent(known, event(ConnectionEventType.DELETE, [conn("a", {}, "172.16.0.2")]));
    assert.deepEqual([...known.keys()], ["b"]);
    applyEvent(known, event(ConnectionEventType.INITIAL_STATE_TRANSFER, []));
    assert.deepEqual([...known.keys()], []);
  });
});
