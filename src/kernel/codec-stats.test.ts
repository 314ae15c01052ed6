// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { endianness } from "node:os";
import { describe, it } from "node:test";
import {
  attr,
  attrStrz,
  decodeLinkStats,
  getLinkStatsRequest,
  IFLA,
  IFLA_STATS64,
  ifinfomsg,
  parseAttrs,
} from "./codec.js";
import { createNetlinkKernel } from "./index.js";

function stats64(values: number[]): Buffer {
  const b = Buffer.alloc(23 * 8);
  values.forEach((v, i) => {
    if (endianness() === "LE") b.writeBigUInt64LE(BigInt(v), i * 8);
    else b.writeBigUInt64BE(BigInt(v), i * 8);
  });
  return b;
}

describe("link statistics codec", () => {
  it("asks for statistics (no RTEXT_FILTER_SKIP_STATS) of a link by name", () => {
    const req = getLinkStatsRequest(0, "nsm-1");
    const attrs = parseAttrs(req.body, 16);
    assert.equal(attrs.get(IFLA.IFNAME)?.toString(), "nsm-1\0");
    assert.equal(attrs.has(29), false);
  });

  it("decodes the first eight IFLA_STATS64 counters, above 2^32 too", () => {
    const payload = Buffer.concat([
      ifinfomsg({ index: 3 }),
      attrStrz(IFLA.IFNAME, "nsm-1"),
      attr(IFLA_STATS64, stats64([20, 21, 2 ** 33 + 5, 1680, 1, 2, 3, 4])),
    ]);
    assert.deepEqual(decodeLinkStats(payload), {
      rxPackets: 20,
      txPackets: 21,
      rxBytes: 2 ** 33 + 5,
      txBytes: 1680,
      rxErrors: 1,
      txErrors: 2,
      rxDropped: 3,
      txDropped: 4,
    });
  });

  it("gives undefined when the reply has no (or a truncated) IFLA_STATS64", () => {
    assert.equal(decodeLinkStats(Buffer.concat([ifinfomsg({ index: 3 }), attrStrz(IFLA.IFNAME, "x")])), undefined);
    assert.equal(
      decodeLinkStats(Buffer.concat([ifinfomsg({ index: 3 }), attr(IFLA_STATS64, Buffer.alloc(16))])),
      undefined,
    );
  });

  it("reads real counters of the loopback link, and undefined for a missing link", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root (netlink)");
    const kernel = createNetlinkKernel();
    try {
      const lo = await kernel.linkStats(undefined, "lo");
      assert.ok(lo);
      assert.equal(typeof lo.rxBytes, "number");
      assert.ok(lo.rxPackets >= 0);
      assert.equal(await kernel.linkStats(undefined, "no-such-link0"), undefined);
    } finally {
      await kernel.close();
    }
  });
});
