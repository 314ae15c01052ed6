// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clone as reflectClone } from "@bufbuild/protobuf";
import { clone } from "./clone.js";
import { ConnectionSchema, create, equals, fromBinary, NetworkServiceRequestSchema, toBinary } from "./index.js";

const request = () =>
  create(NetworkServiceRequestSchema, {
    connection: {
      id: "c1",
      networkService: "svc",
      mechanism: { cls: "LOCAL", type: "KERNEL", parameters: { name: "nsm-1" } },
      context: { ipContext: { srcIpAddrs: ["10.0.0.1/32"], srcRoutes: [{ prefix: "10.0.0.2/32" }] } },
      labels: { app: "a" },
      path: {
        index: 1,
        pathSegments: [
          { name: "nsc", id: "x", token: "t", expires: { seconds: 10n, nanos: 1 } },
          { name: "nsmgr", id: "y" },
        ],
      },
    },
    mechanismPreferences: [{ cls: "LOCAL", type: "KERNEL" }],
  });

describe("clone", () => {
  it("copies a message as @bufbuild/protobuf's clone does, sharing nothing with it", () => {
    const original = request();
    const copy = clone(NetworkServiceRequestSchema, original);
    assert.deepEqual(copy, reflectClone(NetworkServiceRequestSchema, original));
    assert.ok(equals(NetworkServiceRequestSchema, copy, original));
    copy.connection!.path!.pathSegments[0]!.expires!.seconds = 99n;
    copy.connection!.labels.app = "b";
    copy.connection!.context!.ipContext!.srcIpAddrs.push("10.0.0.3/32");
    copy.mechanismPreferences[0]!.type = "MEMIF";
    assert.deepEqual(original, request(), "the original is untouched");
  });

  it("copies unknown fields (bytes) of a decoded message", () => {
    const bytes = toBinary(ConnectionSchema, create(ConnectionSchema, { id: "c1" }));
    const withUnknown = new Uint8Array([...bytes, 0xfa, 0x3e, 0x02, 0x01, 0x02]); // field 999, 2 bytes
    const decoded = fromBinary(ConnectionSchema, withUnknown);
    const copy = clone(ConnectionSchema, decoded);
    assert.deepEqual(toBinary(ConnectionSchema, copy), toBinary(ConnectionSchema, decoded));
    const unknown = (m: object) => (m as { $unknown?: { data: Uint8Array }[] }).$unknown![0]!.data;
    assert.notEqual(unknown(copy), unknown(decoded), "its bytes are a copy");
  });

  it("leaves a message that is not a plain object to the library's clone", () => {
    const odd = Object.assign(Object.create({ inherited: 1 }), create(ConnectionSchema, { id: "c2" }));
    const copy = clone(ConnectionSchema, odd);
    assert.equal(copy.id, "c2");
    assert.ok(equals(ConnectionSchema, copy, odd));
  });
});
