// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import {
  type Connection,
  ConnectionSchema,
  clone,
  create,
  MechanismType,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  Param,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { clientUrlClient } from "../clienturl/index.js";
import { inodeUrlOfPath, sendFdClient } from "./index.js";

const NETNS = `/proc/${process.pid}/ns/net`;
const openFds = () => readdirSync("/proc/self/fd").length;

function request(url: string): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id: "a" }),
    mechanismPreferences: [{ cls: "LOCAL", type: MechanismType.KERNEL, parameters: { [Param.INODE_URL]: url } }],
  });
}

/** Answers with the preference it got as the selected mechanism. */
function tail(seen: string[]): NetworkServiceElement {
  return {
    name: "tail",
    async request(req) {
      const m = req.mechanismPreferences[0]!;
      seen.push(m.parameters[Param.INODE_URL] ?? "");
      const conn = clone(ConnectionSchema, req.connection as Connection);
      conn.mechanism = m;
      return conn;
    },
    close: async () => ({}) as never,
  };
}

describe("sendfd client", () => {
  it("sends inode://dev/ino of a file:// netns to a unix next hop and gives the file:// URL back", async () => {
    const seen: string[] = [];
    const h = bind(chain(clientUrlClient("unix:///nowhere/nsm.sock"), sendFdClient(), tail(seen)));
    const before = openFds();
    const req = request(`file://${NETNS}`);
    const conn = await h.request(req, CallContext.create());
    assert.deepEqual(seen, [inodeUrlOfPath(NETNS)]);
    assert.equal(conn.mechanism?.parameters[Param.INODE_URL], `file://${NETNS}`);
    assert.equal(req.mechanismPreferences[0]!.parameters[Param.INODE_URL], `file://${NETNS}`, "request restored");
    assert.equal(openFds(), before, "the descriptor no connection carried was closed");
  });

  it("leaves tcp:// next hops alone, and any netns path that is not this process's own", async () => {
    const seen: string[] = [];
    await bind(chain(clientUrlClient("tcp://127.0.0.1:1"), sendFdClient(), tail(seen))).request(
      request(`file://${NETNS}`),
      CallContext.create(),
    );
    assert.deepEqual(seen, [`file://${NETNS}`]);
    const h = bind(chain(clientUrlClient("unix:///nowhere/nsm.sock"), sendFdClient(), tail(seen)));
    const before = openFds();
    for (const path of ["/nonexistent/ns/net", "/proc/1/ns/net"]) {
      await h.request(request(`file://${path}`), CallContext.create());
      assert.equal(seen.at(-1), `file://${path}`, `${path} passes as a plain path (the forwarder checks it by pid)`);
    }
    assert.equal(openFds(), before, "nothing was opened");
  });

  it('with sends: "received", sends nothing the hop did not receive as a descriptor (no laundering)', async () => {
    const seen: string[] = [];
    const h = bind(chain(clientUrlClient("unix:///nowhere/nsm.sock"), sendFdClient({ sends: "received" }), tail(seen)));
    await h.request(request(`file://${NETNS}`), CallContext.create());
    assert.deepEqual(seen, [`file://${NETNS}`], "even this process's own netns, named by path, stays a path");
  });
});
