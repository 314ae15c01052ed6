// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, Env } from "./env.js";
import { awarenessGroupsOf, networkServices } from "./nsc.js";

describe("nsc: NSM_NETWORK_SERVICES", () => {
  it("several NSURLs give several connections, each with its own service, interface and labels", () => {
    const urls = networkServices(
      new Env({ NSM_NETWORK_SERVICES: "kernel://multi-ns-1/nsm-1, kernel://multi-ns-2/nsm-2?app=x" }),
    );
    assert.deepEqual(
      urls.map((u) => [u.networkService, u.interfaceName, u.labels]),
      [
        ["multi-ns-1", "nsm-1", {}],
        ["multi-ns-2", "nsm-2", { app: "x" }],
      ],
    );
  });
  it("a bad entry is a ConfigError naming it; none at all is required", () => {
    assert.throws(
      () => networkServices(new Env({ NSM_NETWORK_SERVICES: "kernel://ok/nsm-1,not a url" })),
      (e: Error) => e instanceof ConfigError && /not a url/.test(e.message),
    );
    assert.throws(() => networkServices(new Env({})), ConfigError);
    assert.throws(() => networkServices(new Env({ NSM_NETWORK_SERVICES: " , " })), /at least one NSURL/);
  });

  it("NSM_AWARENESS_GROUPS: groups of NSURLs; a malformed value is a ConfigError naming the variable", () => {
    const groups = awarenessGroupsOf(
      new Env({ NSM_AWARENESS_GROUPS: "[kernel://a/nsm-1,kernel://b/nsm-2],[kernel://c]" }),
    );
    assert.deepEqual(
      groups.map((g) => g.map((k) => k.networkService)),
      [["a", "b"], ["c"]],
    );
    assert.deepEqual(awarenessGroupsOf(new Env({})), []);
    assert.throws(
      () => awarenessGroupsOf(new Env({ NSM_AWARENESS_GROUPS: "kernel://a/nsm-1" })),
      (e: Error) => e instanceof ConfigError && /NSM_AWARENESS_GROUPS/.test(e.message),
    );
  });
});
