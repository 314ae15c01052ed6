// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
  type Connection,
  ConnectionEventType,
  ConnectionSchema,
  create,
  MonitorConnection,
  type MonitorScopeSelector,
} from "../../../../api/index.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { closeChannel, dialChannel } from "../../../grpc/dial.js";
import { addService } from "../../../grpc/service.js";
import { eventually } from "../../../testing/async.js";
import { type Served, serveOnUnixSocket } from "../../../testing/serve.js";
import { DownstreamFollower } from "./downstream.js";
import { ConnectionMonitor, monitorConnectionService } from "./index.js";

/** A connection of the next hop (the forwarder) made for nsmgr's connection `id`. */
const fwdConn = (id: string) =>
  create(ConnectionSchema, {
    id: `fwd-${id}`,
    networkService: "svc",
    path: {
      index: 2,
      pathSegments: [
        { name: "nsc", id: `nsc-${id}` },
        { name: "nsmgr", id },
        { name: "fwd", id: `fwd-${id}` },
      ],
    },
  });

interface Next {
  served: Served;
  monitor: ConnectionMonitor;
  /** MonitorConnections streams open now. */
  open(): number;
}

/** A next hop serving MonitorConnections; `refuseWithoutId`: as a monitor policy wanting connection ids. */
async function nextHop(refuseWithoutId = false): Promise<Next> {
  const monitor = new ConnectionMonitor();
  const service = monitorConnectionService(monitor);
  let open = 0;
  const served = await serveOnUnixSocket("downstream", (s) =>
    addService(s, MonitorConnection, {
      async *monitorConnections(selector: MonitorScopeSelector, ctx: CallContext) {
        if (refuseWithoutId && !selector.pathSegments[0]?.id) {
          throw new NsmError("no sufficient privileges", Code.PermissionDenied);
        }
        open++;
        try {
          yield* service.monitorConnections(selector, ctx);
        } finally {
          open--;
        }
      },
    }),
  );
  return { served, monitor, open: () => open };
}

describe("DownstreamFollower", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const setup = async (refuseWithoutId = false, lingerMs = 0) => {
    const next = await nextHop(refuseWithoutId);
    const channel = dialChannel(next.served.url);
    const events: string[] = [];
    const broken: string[] = [];
    const follower = new DownstreamFollower(
      {
        event: (id: string, down: Connection, type: ConnectionEventType) => events.push(`${type}:${id}:${down.id}`),
        broken: (id: string) => broken.push(id),
      },
      new ConnectionMonitor().log,
      lingerMs,
    );
    cleanups.push(
      () => next.served.stop(),
      () => closeChannel(channel),
      () => follower.close(),
    );
    return { next, channel, follower, events, broken };
  };

  it("follows every connection through one channel on one stream, dispatched by its segment id", async () => {
    const { next, channel, follower, events } = await setup();
    for (const id of ["a", "b", "c"]) follower.follow(id, "nsmgr", channel, CallContext.create());
    await eventually(() => next.open() === 1);
    next.monitor.update(fwdConn("a"));
    next.monitor.update(fwdConn("b"));
    next.monitor.update(fwdConn("zzz"));
    next.monitor.delete(fwdConn("b"));
    await eventually(() => events.length === 3);
    assert.deepEqual(events, [
      `${ConnectionEventType.UPDATE}:a:fwd-a`,
      `${ConnectionEventType.UPDATE}:b:fwd-b`,
      `${ConnectionEventType.DELETE}:b:fwd-b`,
    ]);
    assert.equal(next.open(), 1, "still one stream");
    follower.unfollow("a");
    next.monitor.update(fwdConn("a"));
    follower.unfollow("b");
    follower.unfollow("c");
    await eventually(() => next.open() === 0);
    assert.equal(events.length, 3, "nothing for an unfollowed connection");
  });

  it("keeps a stream without followers open a while for the next connection through the hop", async () => {
    const { next, channel, follower, events } = await setup(false, 300);
    follower.follow("a", "nsmgr", channel, CallContext.create());
    await eventually(() => next.open() === 1);
    follower.unfollow("a");
    follower.follow("b", "nsmgr", channel, CallContext.create());
    next.monitor.update(fwdConn("b"));
    await eventually(() => events.length === 1);
    assert.deepEqual(events, [`${ConnectionEventType.UPDATE}:b:fwd-b`]);
    assert.equal(next.open(), 1, "the same stream");
    follower.unfollow("b");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(next.open(), 1, "still open within the linger time");
    await eventually(() => next.open() === 0);
  });

  it("marks every follower broken when the stream breaks", async () => {
    const { next, channel, follower, broken } = await setup();
    follower.follow("a", "nsmgr", channel, CallContext.create());
    follower.follow("b", "nsmgr", channel, CallContext.create());
    await eventually(() => next.open() === 1);
    await next.served.server.stop();
    await eventually(() => broken.length === 2);
    assert.deepEqual(broken.sort(), ["a", "b"]);
  });

  it("follows per connection a next hop that refuses the shared selector", async () => {
    const { next, channel, follower, events, broken } = await setup(true);
    follower.follow("a", "nsmgr", channel, CallContext.create());
    follower.follow("b", "nsmgr", channel, CallContext.create());
    await eventually(() => next.open() === 2);
    follower.follow("c", "nsmgr", channel, CallContext.create());
    await eventually(() => next.open() === 3);
    next.monitor.update(fwdConn("c"));
    next.monitor.update(fwdConn("a"));
    await eventually(() => events.length === 2);
    assert.deepEqual(events.sort(), [`${ConnectionEventType.UPDATE}:a:fwd-a`, `${ConnectionEventType.UPDATE}:c:fwd-c`]);
    assert.deepEqual(broken, [], "a refusal is not a break");
  });
});
