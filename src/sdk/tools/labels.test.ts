// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, type NsmError } from "../core/errors.js";
import { formatLabels, parseLabels } from "./labels.js";

describe("parseLabels", () => {
  it("parses NSM_LABELS", () => {
    assert.deepEqual(parseLabels("app:icmp-responder,p2p:true"), { app: "icmp-responder", p2p: "true" });
    assert.deepEqual(parseLabels("spiffe.io/spiffe-id:true"), { "spiffe.io/spiffe-id": "true" });
    assert.deepEqual(parseLabels(" a : b "), { a: "b" });
  });
  it("reads an empty string as no labels", () => {
    assert.deepEqual(parseLabels(""), {});
  });
  it("rejects pairs without exactly one colon, and empty keys", () => {
    for (const bad of ["a", "a:b:c", "a:b,,c:d", ":v"]) {
      assert.throws(
        () => parseLabels(bad),
        (e: NsmError) => e.code === Code.InvalidArgument,
        bad,
      );
    }
  });
  it("formats labels back", () => {
    assert.equal(formatLabels({ p2p: "true", app: "x" }), "app:x,p2p:true");
  });
});
