// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConnectionSchema,
  clone,
  create,
  NetworkServiceRequestSchema,
  PathSegmentSchema,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { injectError } from "../../../testing/elements.js";
import { metadataClient, metadataServer } from "../metadata/index.js";
import { updatePathClient, updatePathServer } from "../updatepath/index.js";
import { trimpathClient, trimpathServer } from "./index.js";

const ctx = () => CallContext.create();

describe("trimpath", () => {
  it("trims the returned path after this hop", async () => {
    const h = bind(chain(updatePathServer("nse"), metadataServer(), trimpathServer()));
    const conn = await h.request(
      create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, {}) }),
      ctx(),
    );
    assert.equal(conn.path?.pathSegments.length, 1);
    const req = create(NetworkServiceRequestSchema, { connection: clone(ConnectionSchema, conn) });
    req.connection!.path!.pathSegments.push(create(PathSegmentSchema, { name: "stale", id: "x" }));
    const again = await h.request(req, ctx());
    assert.equal(again.path?.index, 0);
    assert.deepEqual(
      again.path?.pathSegments.map((s) => s.name),
      ["nse"],
    );
    assert.equal(req.connection!.path!.pathSegments.length, 2, "the caller's request is not mutated");
  });

  it("keeps the full path when a trimpath client ran downstream (passthrough hop)", async () => {
    const h = bind(
      chain(
        updatePathServer("fwd"),
        metadataServer(),
        trimpathServer(),
        chain(updatePathClient("fwd"), metadataClient(), trimpathClient()),
      ),
    );
    const conn = await h.request(
      create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, {}) }),
      ctx(),
    );
    const req = create(NetworkServiceRequestSchema, { connection: clone(ConnectionSchema, conn) });
    req.connection!.path!.pathSegments.push(create(PathSegmentSchema, { name: "nse", id: "y" }));
    const again = await h.request(req, ctx());
    assert.deepEqual(
      again.path?.pathSegments.map((s) => s.name),
      ["fwd", "nse"],
    );
  });

  it("propagates downstream errors", async () => {
    const h = bind(
      chain(
        trimpathServer(),
        trimpathClient(),
        injectError(() => new NsmError("x", Code.Aborted)),
      ),
    );
    await assert.rejects(
      h.request(create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "a" }) }), ctx()),
      (e: NsmError) => e.code === Code.Aborted,
    );
  });
});
