// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionContextSchema, ConnectionSchema, create, IPContextSchema } from "../../api/index.js";
import { livenessTargets } from "./liveness.js";

const conn = (src: string[], dst: string[]) =>
  create(ConnectionSchema, {
    context: create(ConnectionContextSchema, {
      ipContext: create(IPContextSchema, { srcIpAddrs: src, dstIpAddrs: dst }),
    }),
  });

describe("liveness targets", () => {
  it("pings every destination from the source of its family", () => {
    assert.deepEqual(livenessTargets(conn(["172.16.1.101/32", "fd00::1/128"], ["172.16.1.100/32", "fd00::/128"])), [
      { src: "172.16.1.101", dst: "172.16.1.100" },
      { src: "fd00::1", dst: "fd00::" },
    ]);
    assert.deepEqual(livenessTargets(conn(["172.16.1.101/32"], ["fd00::/128"])), [], "no source of that family");
    assert.deepEqual(livenessTargets(create(ConnectionSchema)), []);
  });
});
