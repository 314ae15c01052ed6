// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, equals, NetworkServiceRequestSchema, PathSegmentSchema } from "../../api/index.js";
import { compactClone } from "./compact.js";

describe("compactClone", () => {
  const conn = create(ConnectionSchema, {
    id: "c",
    labels: { app: "x" },
    path: { index: 1, pathSegments: [{ name: "nsc", id: "1", token: "t", metrics: { m: "1" } }, { name: "nsmgr" }] },
    context: {
      ipContext: { srcIpAddrs: ["10.0.0.1/32"], dstRoutes: [{ prefix: "10.0.0.1/32" }] },
      extraContext: { k: "v" },
    },
    mechanism: { type: "KERNEL", parameters: { name: "nsm-1" } },
  });

  it("copies every field, nested lists and maps included", () => {
    const copy = compactClone(ConnectionSchema, conn);
    assert.ok(equals(ConnectionSchema, copy, conn));
    const req = create(NetworkServiceRequestSchema, { connection: conn, mechanismPreferences: [{ type: "KERNEL" }] });
    assert.ok(equals(NetworkServiceRequestSchema, compactClone(NetworkServiceRequestSchema, req), req));
  });

  it("shares no list, map or message with the original", () => {
    const copy = compactClone(ConnectionSchema, conn);
    copy.path!.pathSegments.push(create(PathSegmentSchema, { name: "forwarder" }));
    copy.path!.pathSegments[0]!.metrics.m = "2";
    copy.context!.ipContext!.srcIpAddrs.push("10.0.0.2/32");
    copy.context!.ipContext!.dstRoutes[0]!.prefix = "0.0.0.0/0";
    copy.labels.app = "y";
    assert.equal(conn.path!.pathSegments.length, 2);
    assert.equal(conn.path!.pathSegments[0]!.metrics.m, "1");
    assert.deepEqual(conn.context!.ipContext!.srcIpAddrs, ["10.0.0.1/32"]);
    assert.equal(conn.context!.ipContext!.dstRoutes[0]!.prefix, "10.0.0.1/32");
    assert.equal(conn.labels.app, "x");
  });
});
