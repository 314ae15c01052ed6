// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, type NsmError } from "../core/errors.js";
import { generateInterfaceName, randomString, validateInterfaceName } from "./ifname.js";

describe("generateInterfaceName", () => {
  it("is <service[:10]>-<random>, 15 characters", () => {
    const name = generateInterfaceName("icmp-responder");
    assert.equal(name.length, 15);
    assert.match(name, /^icmp-respo-[0-9A-Za-z]{4}$/);
  });
  it("fills a short service name up to 15 characters", () => {
    assert.match(generateInterfaceName("ns"), /^ns-[0-9A-Za-z]{12}$/);
  });
  it("replaces characters the kernel refuses", () => {
    const name = generateInterfaceName("a/b:c d");
    assert.match(name, /^a-b-c-d-[0-9A-Za-z]{7}$/);
    validateInterfaceName(name);
  });
  it("differs between calls", () => {
    assert.notEqual(generateInterfaceName("svc"), generateInterfaceName("svc"));
  });
  it("draws random strings from the alphabet", () => {
    assert.match(randomString(64), /^[0-9A-Za-z]{64}$/);
  });
});

describe("validateInterfaceName", () => {
  it("rejects empty, too long and invalid names", () => {
    for (const bad of ["", "sixteen-chars-xx", "a/b", "a b", ".."]) {
      assert.throws(
        () => validateInterfaceName(bad),
        (e: NsmError) => e.code === Code.InvalidArgument,
        bad,
      );
    }
    validateInterfaceName("nsm-1");
  });
});
