// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext, sleep } from "../../../core/context.js";
import { count } from "../../../testing/elements.js";
import { beginServer } from "../begin/index.js";
import { metadataServer } from "../metadata/index.js";
import { updatePathServer } from "../updatepath/index.js";
import { timeoutServer } from "./index.js";

const req = (expiresInMs: number) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "nsc-0",
      networkService: "s",
      path: {
        index: 0,
        pathSegments: [{ name: "nsc", id: "nsc-0", expires: timestampFromMs(Date.now() + expiresInMs) }],
      },
    }),
  });

describe("timeoutServer", () => {
  it("closes a connection when the previous hop's token expires without a refresh", async () => {
    const c = count();
    const h = bind(chain(updatePathServer("nse"), beginServer(), metadataServer(), timeoutServer(), c));
    const conn = await h.request(req(200), CallContext.create());
    await sleep(100);
    conn.path!.pathSegments[0]!.expires = timestampFromMs(Date.now() + 300);
    const refreshed = await h.request(create(NetworkServiceRequestSchema, { connection: conn }), CallContext.create());
    assert.equal(refreshed.path?.pathSegments.length, 2, "the same connection was refreshed");
    await sleep(150);
    assert.equal(c.closes, 0, "a refresh re-arms the timer");
    await sleep(300);
    assert.equal(c.closes, 1, "closed after expiry");
  });

  it("Close cancels the timer", async () => {
    const c = count();
    const lifetime = new AbortController();
    const h = bind(
      chain(updatePathServer("nse"), beginServer(), metadataServer(), timeoutServer({ signal: lifetime.signal }), c),
    );
    const conn = await h.request(req(100), CallContext.create());
    await h.close(conn, CallContext.create());
    await sleep(200);
    assert.equal(c.closes, 1);
    lifetime.abort();
  });
});
