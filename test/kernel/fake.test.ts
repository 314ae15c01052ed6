// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { createFakeKernel, type FakeKernel } from "../../src/kernel/index.js";
import { Code } from "../../src/sdk/core/errors.js";
import { kernelContract, rejectsWith } from "./contract.js";

kernelContract("fake", async () => {
  const kernel = createFakeKernel();
  const made: string[] = [];
  return {
    kernel,
    async newNetns() {
      const path = `/var/run/netns/nsmt-${randomBytes(4).toString("hex")}`;
      kernel.addNetns(path);
      made.push(path);
      return path;
    },
    async cleanup() {
      for (const p of made) kernel.deleteNetns(p);
    },
  };
});

describe("fake kernel extras", () => {
  it("deleting a netns removes veth peers elsewhere", async () => {
    const k: FakeKernel = createFakeKernel();
    k.addNetns("/a");
    k.addNetns("/b");
    await k.createVeth("/a", { name: "x", peer: { name: "y", netns: "/b" } });
    k.deleteNetns("/a");
    assert.equal(await k.findLink("/b", "y"), undefined);
    await assert.rejects(k.listLinks("/a"), rejectsWith(Code.NotFound));
  });

  it("records sysctl writes per netns", async () => {
    const k = createFakeKernel();
    k.addNetns("/a");
    await k.writeSysctl("/a", "net.ipv4.ping_group_range", "0 2147483647");
    assert.equal(k.readSysctl("/a", "net/ipv4/ping_group_range"), "0 2147483647");
    assert.equal(k.readSysctl(undefined, "net/ipv4/ping_group_range"), undefined);
  });

  it("moving a link drops its addresses and routes", async () => {
    const k = createFakeKernel();
    k.addNetns("/a");
    k.addNetns("/b");
    await k.createVeth("/a", { name: "m0", peer: { name: "m1" } });
    await k.replaceAddress("/a", "m0", "10.0.0.1/24");
    assert.equal((await k.listRoutes("/a")).length, 1, "prefix route of the address");
    await k.setLink("/a", "m0", { netns: "/b" });
    assert.deepEqual(await k.listAddresses("/b", { link: "m0" }), []);
    assert.deepEqual(await k.listRoutes("/a"), []);
  });
});
