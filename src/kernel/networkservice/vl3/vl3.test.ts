// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createFakeKernel } from "../../fake.js";
import { prepareVl3Netns, VL3_SYSCTLS } from "./index.js";

describe("kernel vl3: the endpoint's netns routes", () => {
  it("turns on IPv4/IPv6 forwarding and turns off reverse-path filtering", async () => {
    const kernel = createFakeKernel();
    await prepareVl3Netns(kernel);
    for (const [key, value] of VL3_SYSCTLS) assert.equal(kernel.readSysctl(undefined, key), value, key);
    assert.equal(kernel.readSysctl(undefined, "net.ipv4.ip_forward"), "1");
  });
});
