// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, type NsmError } from "../core/errors.js";
import { nsUrlMechanism, parseNsUrl } from "./nsurl.js";

const isInvalid = (e: NsmError) => e.code === Code.InvalidArgument && e.reason === "bad-nsurl";

describe("parseNsUrl", () => {
  it("parses kernel://kernel2kernel/nsm-1", () => {
    const u = parseNsUrl("kernel://kernel2kernel/nsm-1");
    assert.deepEqual(
      { ...u },
      { mechanismType: "KERNEL", cls: "LOCAL", networkService: "kernel2kernel", interfaceName: "nsm-1", labels: {} },
    );
    const m = nsUrlMechanism(u);
    assert.equal(m.type, "KERNEL");
    assert.equal(m.cls, "LOCAL");
    assert.deepEqual(m.parameters, { name: "nsm-1" });
  });
  it("reads labels from the query, joining repeated keys with a comma", () => {
    const u = parseNsUrl("kernel://icmp-responder/nsm-1?app=web&color=red&color=blue");
    assert.deepEqual(u.labels, { app: "web", color: "red,blue" });
  });
  it("keeps the domain of an interdomain service", () => {
    const u = parseNsUrl("kernel://floating-vl3@my.cluster3/nsm-1");
    assert.equal(u.networkService, "floating-vl3@my.cluster3");
    assert.equal(u.interfaceName, "nsm-1");
  });
  it("upper-cases other mechanisms and allows a URL without an interface", () => {
    const u = parseNsUrl("vfio://sriov-svc");
    assert.equal(u.mechanismType, "VFIO");
    assert.equal(u.interfaceName, undefined);
    assert.deepEqual(nsUrlMechanism(u).parameters, {});
  });
  it("takes the last path segment as the interface name", () => {
    assert.equal(parseNsUrl("kernel://svc/a/nsm-2").interfaceName, "nsm-2");
  });
  it("rejects malformed URLs with InvalidArgument", () => {
    for (const bad of [
      "",
      "kernel2kernel",
      "kernel:kernel2kernel/nsm-1",
      "kernel:///nsm-1",
      "://svc/nsm-1",
      "kernel://svc/this-name-is-too-long",
    ]) {
      assert.throws(() => parseNsUrl(bad), isInvalid, bad);
    }
  });
  it("names the URL in the error", () => {
    assert.throws(
      () => parseNsUrl("kernel:///nsm-1"),
      (e: NsmError) => e.message.includes('"kernel:///nsm-1"'),
    );
  });
});
