// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  ConnectionSchema,
  create,
  MechanismSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  PathSchema,
  PathSegmentSchema,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code } from "../../../core/errors.js";
import { count } from "../../../testing/elements.js";
import { validateServer } from "./index.js";

const ctx = () => CallContext.create();

function setup() {
  const c = count();
  return { c, h: bind(chain(validateServer(), c)) };
}

describe("validate", () => {
  it("passes a well-formed request on unchanged", async () => {
    const { c, h } = setup();
    const req = create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: "a", networkService: "svc" }),
      mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "nsm-1" })],
    });
    const conn = await h.request(req, ctx());
    assert.equal(conn.id, "a");
    assert.equal(c.lastRequest, req);
  });

  const bad: [string, Parameters<typeof create<typeof NetworkServiceRequestSchema>>[1], RegExp][] = [
    ["no connection", {}, /request has no connection/],
    ["no network service", { connection: { id: "a" } }, /network_service is empty/],
    [
      "a path index past the segments",
      {
        connection: {
          id: "a",
          networkService: "svc",
          path: create(PathSchema, { index: 1, pathSegments: [create(PathSegmentSchema, { name: "nsc" })] }),
        },
      },
      /path index 1 is out of range/,
    ],
    [
      "a mechanism without type",
      { connection: { id: "a", networkService: "svc" }, mechanismPreferences: [create(MechanismSchema, {})] },
      /a mechanism has no type/,
    ],
    [
      "an interface name too long",
      {
        connection: {
          id: "a",
          networkService: "svc",
          mechanism: newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "a-name-of-17-chrs" }),
        },
      },
      /interface name "a-name-of-17-chrs" is not valid/,
    ],
    [
      "an interface name with a slash",
      {
        connection: { id: "a", networkService: "svc" },
        mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "ns/1" })],
      },
      /is not valid/,
    ],
  ];
  for (const [what, init, message] of bad) {
    it(`rejects ${what} with InvalidArgument before anything runs`, async () => {
      const { c, h } = setup();
      await assert.rejects(h.request(create(NetworkServiceRequestSchema, init), ctx()), (err: unknown) => {
        assert.equal((err as { code?: number }).code, Code.InvalidArgument);
        assert.match(String(err), message);
        return true;
      });
      assert.equal(c.requests, 0);
    });
  }

  it("rejects a Close that names no connection, passes one that does", async () => {
    const { c, h } = setup();
    await assert.rejects(h.close(create(ConnectionSchema, {}), ctx()), { code: Code.InvalidArgument });
    await h.close(create(ConnectionSchema, { id: "a" }), ctx());
    assert.equal(c.closes, 1);
  });
});
