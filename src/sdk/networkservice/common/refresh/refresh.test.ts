// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext, sleep } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { count } from "../../../testing/elements.js";
import { beginClient } from "../begin/index.js";
import { metadataClient } from "../metadata/index.js";
import { updatePathClient } from "../updatepath/index.js";
import { refreshClient, refreshDelayMs } from "./index.js";

/** Stamps every segment with an expiry `ms` from now, as updatetoken would. */
function expiring(ms: number, fail: () => boolean = () => false): NetworkServiceElement {
  return {
    name: "expiring",
    async request(req, ctx, next) {
      if (fail()) throw new NsmError("down", Code.Unavailable);
      const conn = await next.request(req, ctx);
      for (const s of conn.path?.pathSegments ?? []) s.expires = timestampFromMs(Date.now() + ms);
      return conn;
    },
    close: (c, ctx, next) => next.close(c, ctx),
  };
}

const req = () =>
  create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "c", networkService: "s" }) });

describe("refreshClient", () => {
  it("computes the upstream delays", () => {
    const now = 1_000_000;
    const conn = (index: number, n: number) =>
      create(ConnectionSchema, {
        path: {
          index,
          pathSegments: Array.from({ length: n }, (_, i) => ({
            name: `h${i}`,
            expires: timestampFromMs(now + 10_000 + i * 1000),
          })),
        },
      });
    assert.equal(refreshDelayMs(conn(0, 1), now), 3333);
    assert.equal(refreshDelayMs(conn(0, 4), now), 2000);
    assert.equal(refreshDelayMs(conn(2, 4), now), 3000);
    assert.equal(refreshDelayMs(create(ConnectionSchema, {}), now), undefined);
  });

  it("re-requests before expiry, retries every 200 ms on failure, and stops on Close", async () => {
    const c = count();
    let failing = false;
    const h = bind(
      chain(
        updatePathClient("nsc"),
        beginClient(),
        metadataClient(),
        refreshClient({ retryIntervalMs: 50 }),
        c,
        expiring(300, () => failing),
      ),
    );
    const conn = await h.request(req(), CallContext.create());
    await sleep(250);
    assert.ok(c.requests >= 2, `refreshed (${c.requests} requests)`);
    failing = true;
    const before = c.requests;
    await sleep(300);
    failing = false;
    await sleep(200);
    assert.ok(c.requests > before, "a failed refresh is retried until it succeeds");
    await h.close(conn, CallContext.create());
    const after = c.requests;
    await sleep(300);
    assert.equal(c.requests, after, "no refresh after Close");
  });
});
