// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { checkRequest } from "../../../testing/elements.js";
import { clientUrlClient, clientUrlOf, withClientUrl } from "./index.js";

describe("clienturl", () => {
  it("puts a fixed URL in the context", async () => {
    let seen: string | undefined;
    const h = bind(
      chain(
        clientUrlClient("unix:///nsm.sock"),
        checkRequest((_r, ctx) => {
          seen = clientUrlOf(ctx);
        }),
      ),
    );
    await h.request(
      create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "a" }) }),
      CallContext.create(),
    );
    assert.equal(seen, "unix:///nsm.sock");
  });
  it("has accessors for other elements", () => {
    const ctx = CallContext.create();
    assert.equal(clientUrlOf(ctx), undefined);
    assert.equal(clientUrlOf(withClientUrl(ctx, "tcp://a:1")), "tcp://a:1");
  });
  it("rejects an empty URL", () => {
    assert.throws(
      () => clientUrlClient(""),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });
});
