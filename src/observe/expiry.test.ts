// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../sdk/core/chain.js";
import { CallContext } from "../sdk/core/context.js";
import { observeSvidExpiry, segmentTokenExpiry, tokenExpiry } from "./expiry.js";
import { createRoleMetrics } from "./prometheus.js";

/** A connection whose own ("nsmgr-1") segment token expires at `expiresMs`. */
function connection(id: string, expiresMs: number) {
  return create(ConnectionSchema, {
    id,
    path: {
      index: 1,
      pathSegments: [
        { name: "nsc", expires: timestampFromMs(expiresMs + 60_000) },
        { name: "nsmgr-1", expires: timestampFromMs(expiresMs) },
      ],
    },
  });
}

/** Stands for the rest of the chain: answers with the connection its token element would set. */
function answering(expiresMs: Map<string, number>): NetworkServiceElement {
  return {
    name: "token",
    request: async (req) => connection(req.connection!.id, expiresMs.get(req.connection!.id)!),
    close: async () => {},
  };
}

async function gauge(registry: ReturnType<typeof createRoleMetrics>["registry"], name: string) {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values[0]?.value;
}

describe("token and SVID expiry metrics", () => {
  it("reads the expiry of the role's own path segment", () => {
    assert.equal(segmentTokenExpiry(connection("a", 1_700_000_000_123), "nsmgr-1"), 1_700_000_000_123);
    assert.equal(segmentTokenExpiry(connection("a", 1_700_000_000_123), "other"), undefined);
  });

  it("nsm_token_expiry_seconds is the earliest token expiry of the live connections, per role", async () => {
    const m = createRoleMetrics("nsmgr", "nsmgr-1");
    const now = Date.now();
    const expiries = new Map([
      ["a", now + 600_000],
      ["b", now + 300_000],
    ]);
    const h = bind(chain(tokenExpiry(m.registry, "nsmgr-1"), answering(expiries)));
    const req = (id: string) => create(NetworkServiceRequestSchema, { connection: { id } });
    assert.equal(await gauge(m.registry, "nsm_token_expiry_seconds"), undefined, "no connection: no value");
    await h.request(req("a"), CallContext.create());
    const b = await h.request(req("b"), CallContext.create());
    const seconds = (await gauge(m.registry, "nsm_token_expiry_seconds"))!;
    assert.ok(seconds > 295 && seconds <= 300, `${seconds}`);
    await h.close(b, CallContext.create());
    const afterClose = (await gauge(m.registry, "nsm_token_expiry_seconds"))!;
    assert.ok(afterClose > 595 && afterClose <= 600, `${afterClose}`);
    expiries.set("a", now + 900_000); // a refresh brings a new token
    await h.request(req("a"), CallContext.create());
    assert.ok((await gauge(m.registry, "nsm_token_expiry_seconds"))! > 895);
    assert.match(
      await m.registry.metrics(),
      /nsm_token_expiry_seconds\{segment="nsmgr-1",role="nsmgr",name="nsmgr-1"\} (89\d(\.\d+)?|900)\n/,
    );
  });

  it("nsm_svid_expiry_seconds follows the role's current SVID, absent without one", async () => {
    const m = createRoleMetrics("forwarder", "fwd-1");
    let notAfter: Date | undefined = new Date(Date.now() + 3_600_000);
    const spiffeId = "spiffe://t/fwd-1";
    observeSvidExpiry(m.registry, () => (notAfter ? { spiffeId, notAfter } : undefined));
    const first = (await gauge(m.registry, "nsm_svid_expiry_seconds"))!;
    assert.ok(first > 3590 && first <= 3600, `${first}`);
    notAfter = new Date(Date.now() - 5000); // expired: negative
    assert.ok((await gauge(m.registry, "nsm_svid_expiry_seconds"))! < -4);
    notAfter = undefined;
    assert.equal(await gauge(m.registry, "nsm_svid_expiry_seconds"), undefined);
    notAfter = new Date(Date.now() + 60_000);
    assert.match(
      await m.registry.metrics(),
      /nsm_svid_expiry_seconds\{spiffe_id="spiffe:\/\/t\/fwd-1",role="forwarder",name="fwd-1"\} (59\.\d+|60)\n/,
    );
  });
});
