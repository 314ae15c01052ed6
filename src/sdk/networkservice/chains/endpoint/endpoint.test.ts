// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConnectionSchema,
  create,
  NetworkServiceRequestSchema,
  PathSchema,
  PathSegmentSchema,
  State,
} from "../../../../api/index.js";
import { CallContext } from "../../../core/context.js";
import { Code } from "../../../core/errors.js";
import { probe } from "../../../testing/probe.js";
import { serveOnUnixSocket } from "../../../testing/serve.js";
import { createClient } from "../client/index.js";
import { createEndpoint } from "./index.js";

/** A request as an NSC sends it: its own path segment at index 0. */
const request = (networkService = "svc") =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "nsc-1",
      networkService,
      state: State.DOWN,
      path: create(PathSchema, { index: 0, pathSegments: [create(PathSegmentSchema, { name: "nsc", id: "nsc-1" })] }),
    }),
  });
const ctx = () => CallContext.create();

describe("endpoint chain", () => {
  it("adds its path segment, returns UP, runs its slots in upstream order and tracks the connection", async () => {
    const calls: string[] = [];
    const nse = createEndpoint({
      name: "nse",
      updateToken: probe("updatetoken", calls),
      authorize: probe("authorize", calls),
      timeout: probe("timeout", calls),
      additional: [probe("additional", calls)],
    });
    try {
      const conn = await nse.request(request(), ctx());
      assert.deepEqual(calls, ["updatetoken", "authorize", "timeout", "additional"]);
      assert.deepEqual(
        conn.path?.pathSegments.map((s) => s.name),
        ["nsc", "nse"],
      );
      assert.equal(conn.state, State.UP);
      // The monitor knows the connection by this hop's own segment id.
      assert.deepEqual(
        nse.monitor.connections().map((c) => c.id),
        [conn.path!.pathSegments[1]!.id],
      );
      await nse.close(conn, ctx());
      assert.deepEqual(nse.monitor.connections(), []);
      assert.ok(calls.includes("close:additional"));
    } finally {
      nse.dispose();
    }
  });

  it("validates before anything runs", async () => {
    const calls: string[] = [];
    const nse = createEndpoint({ name: "nse", additional: [probe("additional", calls)] });
    await assert.rejects(nse.request(request(""), ctx()), { code: Code.InvalidArgument });
    assert.deepEqual(calls, []);
    assert.deepEqual(nse.monitor.connections(), []);
    nse.dispose();
  });

  it("serves NetworkService over gRPC: a client chain reaches it", async () => {
    const nse = createEndpoint({ name: "nse" });
    const served = await serveOnUnixSocket("endpoint", (s) => nse.register(s));
    try {
      const client = createClient({ name: "nsc", connectTo: served.url });
      const conn = await client.request(
        create(NetworkServiceRequestSchema, {
          connection: create(ConnectionSchema, { id: "c", networkService: "svc" }),
        }),
        ctx(),
      );
      assert.deepEqual(
        conn.path?.pathSegments.map((s) => s.name),
        ["nsc", "nse"],
      );
      assert.equal(nse.monitor.connections().length, 1);
      await client.close(conn, ctx());
      assert.equal(nse.monitor.connections().length, 0);
    } finally {
      await served.stop();
      nse.dispose();
    }
  });
});
