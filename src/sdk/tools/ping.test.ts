// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionContextSchema, ConnectionSchema, create, IPContextSchema } from "../../api/index.js";
import { livenessTargets, pingLivenessCheck, pingOnce } from "./ping.js";

const conn = (src: string[], dst: string[]) =>
  create(ConnectionSchema, {
    context: create(ConnectionContextSchema, {
      ipContext: create(IPContextSchema, { srcIpAddrs: src, dstIpAddrs: dst }),
    }),
  });

describe("ping liveness check", () => {
  it("pings every destination from the source of its family", () => {
    assert.deepEqual(livenessTargets(conn(["172.16.1.101/32", "fd00::1/128"], ["172.16.1.100/32", "fd00::/128"])), [
      { src: "172.16.1.101", dst: "172.16.1.100" },
      { src: "fd00::1", dst: "fd00::" },
    ]);
    assert.deepEqual(livenessTargets(conn(["172.16.1.101/32"], ["fd00::/128"])), [], "no source of that family");
    assert.deepEqual(livenessTargets(create(ConnectionSchema)), []);
  });

  it("is alive only when every ping answers; a connection without addresses counts as alive", async () => {
    const c = conn(["10.0.0.1/32"], ["10.0.0.0/32"]);
    const signal = AbortSignal.timeout(5000);
    assert.equal(await pingLivenessCheck({ binary: "true" })(c, signal), true);
    assert.equal(await pingLivenessCheck({ binary: "false" })(c, signal), false);
    assert.equal(await pingLivenessCheck({ binary: "/nonexistent/ping" })(c, signal), false);
    assert.equal(await pingLivenessCheck({ binary: "false" })(create(ConnectionSchema), signal), true);
  });

  it("counts an aborted ping as dead", async () => {
    const ac = new AbortController();
    ac.abort();
    assert.equal(await pingOnce("10.0.0.0", { binary: "true", signal: ac.signal }), false);
  });
});
