// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { count, injectError } from "../../../testing/elements.js";
import { nscRequest } from "../../../testing/requests.js";
import { type ServedChain, serveChain } from "../../../testing/serve.js";
import { beginClient, beginServer } from "../begin/index.js";
import { clientUrlClient } from "../clienturl/index.js";
import { dialClient } from "../dial/index.js";
import { metadataClient, metadataServer } from "../metadata/index.js";
import { updatePathClient, updatePathServer } from "../updatepath/index.js";
import { connectClient, connectServer } from "./index.js";

const request = (id = "c1", networkService = "svc") => nscRequest(networkService, id);
const ctx = () => CallContext.create();

describe("connect", () => {
  let hop: ServedChain;
  const seen = count();
  before(async () => {
    hop = await serveChain(
      "connect-hop",
      updatePathServer("hop"),
      beginServer(),
      seen,
      injectError(() => new NsmError("no such service", Code.NotFound), {
        request: (req) => req.connection?.networkService === "missing",
      }),
    );
  });
  after(() => hop.stop());

  const clientChain = () => chain(clientUrlClient(hop.url), dialClient(), connectClient());

  it("sends the Request and the Close to the next hop over gRPC", async () => {
    const h = bind(chain(updatePathClient("nsc"), beginClient(), metadataClient(), clientChain()));
    const before = seen.requests;
    const conn = await h.request(request("a"), ctx());
    assert.equal(seen.requests, before + 1);
    assert.deepEqual(
      conn.path?.pathSegments.map((s) => s.name),
      ["nsc", "hop"],
      "the connection comes back with the hop's path segment",
    );
    const closes = seen.closes;
    await h.close(conn, ctx());
    assert.equal(seen.closes, closes + 1);
  });

  it("returns the next hop's error with its code", async () => {
    const h = bind(chain(updatePathClient("nsc"), beginClient(), metadataClient(), clientChain()));
    await assert.rejects(h.request(request("b", "missing"), ctx()), (err: unknown) => {
      assert.equal((err as { code?: number }).code, Code.NotFound);
      assert.match(String(err), /no such service/);
      return true;
    });
  });

  it("needs a channel from dial (FailedPrecondition)", async () => {
    await assert.rejects(bind(connectClient()).request(request(), ctx()), { code: Code.FailedPrecondition });
  });

  it("as a server element: passes the next hop's connection on, and closes it when the rest fails", async () => {
    let failRest = false;
    const rest = injectError(() => new NsmError("later failure", Code.ResourceExhausted), {
      request: () => failRest,
    });
    const h = bind(
      chain(
        updatePathServer("nsmgr"),
        beginServer(),
        metadataServer(),
        connectServer(chain(metadataClient(), clientChain())),
        rest,
      ),
    );
    const conn = await h.request(request("c"), ctx());
    assert.deepEqual(
      conn.path?.pathSegments.map((s) => s.name),
      ["nsmgr", "hop"],
    );
    await h.close(conn, ctx());
    failRest = true;
    const closes = seen.closes;
    await assert.rejects(h.request(request("d"), ctx()), { code: Code.ResourceExhausted });
    assert.equal(seen.closes, closes + 1, "the next hop's connection was closed");
  });
});
