// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CallContext } from "../../../core/context.js";
import { Code } from "../../../core/errors.js";
import { type Counter, count } from "../../../testing/elements.js";
import { probe } from "../../../testing/probe.js";
import { nscRequest } from "../../../testing/requests.js";
import { type ServedChain, serveChain } from "../../../testing/serve.js";
import { beginServer } from "../../common/begin/index.js";
import { updatePathServer } from "../../common/updatepath/index.js";
import { createClient } from "./index.js";

const request = () => nscRequest("svc", "nsc-1");
const ctx = () => CallContext.create();

describe("client chain", () => {
  let hop: ServedChain;
  let seen: Counter;
  before(async () => {
    seen = count();
    hop = await serveChain("client-hop", updatePathServer("nsmgr"), beginServer(), seen);
  });
  after(() => hop.stop());

  it("reaches the next hop with its own path segment and runs its slots in upstream order", async () => {
    const calls: string[] = [];
    const client = createClient({
      name: "nsc",
      connectTo: hop.url,
      refresh: probe("refresh", calls),
      heal: probe("heal", calls),
      additional: [probe("additional", calls)],
      authorize: probe("authorize", calls),
    });
    const conn = await client.request(request(), ctx());
    assert.deepEqual(calls, ["refresh", "heal", "additional", "authorize"]);
    assert.deepEqual(
      conn.path?.pathSegments.map((s) => s.name),
      ["nsc", "nsmgr"],
    );
    assert.equal(conn.path?.index, 0, "the path comes back at the client's index");
    assert.equal(seen.requests, 1);
    await client.close(conn, ctx());
    assert.deepEqual(calls.slice(4), ["close:refresh", "close:heal", "close:additional", "close:authorize"]);
    assert.equal(seen.closes, 1);
  });

  it("without connectTo and without an earlier element choosing the URL, fails with InvalidArgument", async () => {
    const client = createClient({ name: "nsc" });
    await assert.rejects(client.request(request(), ctx()), { code: Code.InvalidArgument });
  });

  it("a next hop that does not answer is Unavailable", async () => {
    const client = createClient({ name: "nsc", connectTo: "unix:///nonexistent/nsm.sock", dialTimeoutMs: 200 });
    await assert.rejects(client.request(request(), ctx()), { code: Code.Unavailable });
  });
});
