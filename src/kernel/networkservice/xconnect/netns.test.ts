// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import { netnsPathFromUrl } from "../index.js";

const invalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof NsmError && err.code === Code.InvalidArgument && pattern.test(err.message);

describe("netnsPathFromUrl", () => {
  it("accepts absolute file:// URLs", () => {
    assert.equal(netnsPathFromUrl("file:///proc/1234/ns/net"), "/proc/1234/ns/net");
    assert.equal(netnsPathFromUrl("file:///var/run/netns/pod-a"), "/var/run/netns/pod-a");
    assert.equal(netnsPathFromUrl("file:///proc/77/fd/12"), "/proc/77/fd/12");
    assert.equal(netnsPathFromUrl("FILE://localhost/run/netns/x"), "/run/netns/x");
    assert.equal(netnsPathFromUrl("file:///var/run/netns/a%20b"), "/var/run/netns/a b");
  });

  it("refuses inode:// URLs: no fd passing", () => {
    assert.throws(
      () => netnsPathFromUrl("inode://4/4026532281"),
      invalid(/fd passing is not supported: send a file:\/\/ netns URL/),
    );
  });

  it("refuses other schemes, relative paths and dot segments", () => {
    for (const url of [
      "",
      "/proc/1/ns/net",
      "proc/1/ns/net",
      "unix:///var/run/netns/x",
      "http://host/proc/1/ns/net",
      "file://proc/1/ns/net",
      "file:/proc/1/ns/net",
      "file://",
      "file:///",
      "file:///proc/1/../2/ns/net",
      "file:///proc/1/%2e%2e/2/ns/net",
      "file:///var/run/netns/./x",
      "file:///var/run//netns/x",
      "file:///var/run/netns/x/",
      "file:///var/run/netns/x?y",
      "file:///var/run/netns/x#y",
      "file:///var/run/netns/x%00",
      "file:///var/run/netns/%zz",
    ]) {
      assert.throws(() => netnsPathFromUrl(url), invalid(/./), url);
    }
  });

  it("refuses /proc/self and /proc/thread-self: they would name the forwarder's netns", () => {
    assert.throws(() => netnsPathFromUrl("file:///proc/thread-self/ns/net"), invalid(/forwarder's own namespace/));
    assert.throws(() => netnsPathFromUrl("file:///proc/self/ns/net"), invalid(/forwarder's own namespace/));
  });
});
