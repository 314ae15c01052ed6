// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import { ConnectionSchema, NetworkServiceRequestSchema, PathSchema, PathSegmentSchema } from "../../../../api/index.js";
import { CallContext } from "../../../core/context.js";
import { Code } from "../../../core/errors.js";
import { nseRegistryFromChain, nsRegistryFromChain } from "../../../registry/core/adapters.js";
import { type Counter, checkRequest, count } from "../../../testing/elements.js";
import { type ServedChain, serveChain } from "../../../testing/serve.js";
import { beginServer } from "../../common/begin/index.js";
import { updatePathServer } from "../../common/updatepath/index.js";
import { createNsmgr, type Nsmgr } from "./index.js";

const NSMGR_URL = "unix:///nonexistent/nsmgr-test.sock";

const request = (networkService = "svc") =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "nsc-id",
      networkService,
      path: create(PathSchema, { index: 0, pathSegments: [create(PathSegmentSchema, { name: "nsc", id: "nsc-id" })] }),
    }),
  });
const ctx = () => CallContext.create();

describe("nsmgr chain", () => {
  let fwd: ServedChain;
  let seen: Counter;
  let labels: Record<string, string>[];
  let nsmgr: Nsmgr;
  const life = new AbortController();
  before(async () => {
    seen = count();
    labels = [];
    fwd = await serveChain(
      "nsmgr-fwd",
      updatePathServer("fwd"),
      beginServer(),
      checkRequest((req) => labels.push({ ...req.connection!.labels })),
      seen,
    );
    nsmgr = createNsmgr({
      name: "nsmgr",
      url: NSMGR_URL,
      clientInfo: { nodeName: "node-1" },
      dialTimeoutMs: 2000,
      signal: life.signal,
    });
    await nsRegistryFromChain(nsmgr.registry.ns).register(create(NetworkServiceSchema, { name: "svc" }), ctx());
    await nseRegistryFromChain(nsmgr.registry.nse).register(
      create(NetworkServiceEndpointSchema, {
        name: "fwd",
        networkServiceNames: ["forwarder"],
        networkServiceLabels: { forwarder: create(NetworkServiceLabelsSchema, { labels: { p2p: "true" } }) },
        url: fwd.url,
      }),
      ctx(),
    );
  });
  after(async () => {
    nsmgr.dispose();
    life.abort();
    await fwd.stop();
  });

  it("forwards to a local forwarder found in its registry, stamping the node's labels", async () => {
    const conn = await nsmgr.request(request(), ctx());
    assert.deepEqual(
      conn.path?.pathSegments.map((s) => s.name),
      ["nsc", "nsmgr", "fwd"],
    );
    assert.equal(seen.requests, 1);
    assert.equal(labels[0]?.nodeName, "node-1");
    await nsmgr.close(conn, ctx());
    assert.equal(seen.closes, 1);
  });

  it("a service nobody registered is NotFound, and nothing reaches the forwarder", async () => {
    const before = seen.requests;
    await assert.rejects(nsmgr.request(request("unknown"), ctx()), { code: Code.NotFound });
    assert.equal(seen.requests, before);
  });
});
