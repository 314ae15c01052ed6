// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  ConnectionSchema,
  create,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../../../api/index.js";
import { Code, NsmError } from "../../../core/errors.js";
import { awarenessGroupOf, parseAwarenessGroups } from "./index.js";

const request = (service: string, iface: string, labels: Record<string, string> = {}) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { networkService: service, labels }),
    mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: iface })],
  });

describe("awareness groups", () => {
  it("parses upstream's format (spaces ignored) and finds a request's group by its NSURL", () => {
    const groups = parseAwarenessGroups(
      "[kernel://mutually-aware-nses-1/nsm-1, kernel://mutually-aware-nses-2/nsm-2], [kernel://other/nsm-3?color=red]",
    );
    assert.equal(groups.length, 2);
    assert.deepEqual(
      groups[0]!.map((k) => [k.networkService, k.interfaceName]),
      [
        ["mutually-aware-nses-1", "nsm-1"],
        ["mutually-aware-nses-2", "nsm-2"],
      ],
    );
    assert.equal(awarenessGroupOf(request("mutually-aware-nses-2", "nsm-2"), groups), 0);
    assert.equal(awarenessGroupOf(request("other", "nsm-3", { color: "red" }), groups), 1);
    assert.equal(awarenessGroupOf(request("other", "nsm-3"), groups), -1, "labels are part of the NSURL");
    assert.equal(awarenessGroupOf(request("mutually-aware-nses-1", "nsm-9"), groups), -1);
    assert.deepEqual(parseAwarenessGroups(" "), []);
  });

  it("bad input is InvalidArgument", () => {
    const invalid = (e: unknown) => e instanceof NsmError && e.code === Code.InvalidArgument;
    for (const bad of [
      "kernel://a/b",
      "[kernel://a/b",
      "[kernel://a/b]]",
      "[kernel://a/b][x://c/d]",
      "[,]",
      "[nope]",
    ]) {
      assert.throws(() => parseAwarenessGroups(bad), invalid, bad);
    }
  });
});
