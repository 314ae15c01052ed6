// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { injectError } from "../../../testing/elements.js";
import { nscRequest } from "../../../testing/requests.js";
import { createMetadataKey, metadataClient, metadataOf, metadataServer } from "./index.js";

const request = (id: string) => nscRequest("svc", id);
const ctx = () => CallContext.create();
const counterKey = createMetadataKey<number>("counter");

/** Counts the Requests of each connection in its metadata, and reports what it saw. */
function counter(isClient: boolean, seen: (number | undefined)[]): NetworkServiceElement {
  return {
    name: "counter",
    async request(req, c, next) {
      const md = metadataOf(c, isClient);
      const n = (md.load(counterKey) ?? 0) + 1;
      md.store(counterKey, n);
      seen.push(n);
      return next.request(req, c);
    },
    async close(conn, c, next) {
      seen.push(-(metadataOf(c, isClient).load(counterKey) ?? 0));
      return next.close(conn, c);
    },
  };
}

describe("metadata", () => {
  it("keeps values per connection across Requests, until Close", async () => {
    const seen: (number | undefined)[] = [];
    const h = bind(chain(metadataServer(), counter(false, seen)));
    await h.request(request("a"), ctx());
    await h.request(request("a"), ctx());
    await h.request(request("b"), ctx());
    await h.close(request("a").connection!, ctx());
    await h.request(request("a"), ctx());
    assert.deepEqual(seen, [1, 2, 1, -2, 1]);
  });

  it("forgets a connection whose first Request failed, keeps one whose later Request failed", async () => {
    const seen: (number | undefined)[] = [];
    let fail = true;
    const h = bind(
      chain(
        metadataServer(),
        counter(false, seen),
        injectError(() => new NsmError("no", Code.Unavailable), { request: () => fail }),
      ),
    );
    await assert.rejects(h.request(request("a"), ctx()), { code: Code.Unavailable });
    fail = false;
    await h.request(request("a"), ctx());
    fail = true;
    await assert.rejects(h.request(request("a"), ctx()), { code: Code.Unavailable });
    fail = false;
    await h.request(request("a"), ctx());
    assert.deepEqual(seen, [1, 1, 2, 3]);
  });

  it("keeps client and server values apart; a client chain inside a server chain shares its entry", async () => {
    const seen: (number | undefined)[] = [];
    const h = bind(chain(metadataServer(), counter(false, seen), metadataClient(), counter(true, seen)));
    await h.request(request("a"), ctx());
    await h.request(request("a"), ctx());
    assert.deepEqual(seen, [1, 1, 2, 2]);
    await h.close(request("a").connection!, ctx());
    assert.deepEqual(seen.slice(4), [-2, -2], "the inner metadataClient did not drop the server's entry");
  });

  it("metadataOf without a metadata element earlier is a chain-order error", async () => {
    const h = bind(counter(false, []));
    await assert.rejects(h.request(request("a"), ctx()), { code: Code.FailedPrecondition, reason: "chain-order" });
  });
});
