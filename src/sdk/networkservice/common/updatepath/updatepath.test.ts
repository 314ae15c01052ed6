// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConnectionSchema,
  create,
  NetworkServiceRequestSchema,
  PathSchema,
  PathSegmentSchema,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { checkRequest } from "../../../testing/elements.js";
import { updatePath, updatePathServer } from "./index.js";

const conn = (index: number, ids: [string, string][], id: string) =>
  create(ConnectionSchema, {
    id,
    path: create(PathSchema, {
      index,
      pathSegments: ids.map(([name, sid]) => create(PathSegmentSchema, { name, id: sid })),
    }),
  });

describe("updatePath", () => {
  it("adds the first segment, keeping a given connection id", () => {
    const c = create(ConnectionSchema, { id: "nsc-0" });
    assert.equal(updatePath(c, "nsc"), 0);
    assert.deepEqual(
      c.path?.pathSegments.map((s) => [s.name, s.id]),
      [["nsc", "nsc-0"]],
    );
  });
  it("generates an id for an empty connection", () => {
    const c = create(ConnectionSchema, {});
    updatePath(c, "nsc");
    assert.match(c.id, /^[0-9a-f-]{36}$/);
    assert.equal(c.path?.pathSegments[0]?.id, c.id);
  });
  it("reuses the current segment when it is ours", () => {
    const c = conn(
      1,
      [
        ["nsc", "a"],
        ["nsmgr", "b"],
      ],
      "x",
    );
    assert.equal(updatePath(c, "nsmgr"), 1);
    assert.equal(c.id, "b");
  });
  it("appends the next segment with a new id", () => {
    const c = conn(0, [["nsc", "a"]], "a");
    assert.equal(updatePath(c, "nsmgr"), 0);
    assert.equal(c.path?.index, 1);
    assert.equal(c.path?.pathSegments.length, 2);
    assert.equal(c.path?.pathSegments[1]?.id, c.id);
    assert.notEqual(c.id, "a");
  });
  it("takes the id of an existing next segment with our name", () => {
    const c = conn(
      0,
      [
        ["nsc", "a"],
        ["nsmgr", "b"],
      ],
      "a",
    );
    updatePath(c, "nsmgr");
    assert.equal(c.id, "b");
  });
  it("renames and re-ids a next segment that belongs to someone else", () => {
    const c = conn(
      0,
      [
        ["nsc", "a"],
        ["old-nsmgr", "b"],
      ],
      "a",
    );
    updatePath(c, "nsmgr");
    assert.equal(c.path?.pathSegments[1]?.name, "nsmgr");
    assert.notEqual(c.id, "b");
  });
  it("rejects a segment id that does not match the connection id", () => {
    const c = conn(0, [["nsc", "a"]], "zzz");
    assert.throws(
      () => updatePath(c, "nsmgr"),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });
  it("rejects an index out of range", () => {
    const c = conn(5, [["nsc", "a"]], "a");
    assert.throws(
      () => updatePath(c, "nsmgr"),
      (e: NsmError) => e.code === Code.InvalidArgument && e.reason === "path-index-out-of-range",
    );
  });
});

describe("updatePathServer", () => {
  it("hands downstream this hop's id and returns the caller's id and index", async () => {
    let seen = "";
    const h = bind(
      chain(
        updatePathServer("nsmgr"),
        checkRequest((r) => {
          seen = r.connection!.id;
        }),
      ),
    );
    const req = create(NetworkServiceRequestSchema, { connection: conn(0, [["nsc", "a"]], "a") });
    const out = await h.request(req, CallContext.create());
    assert.notEqual(seen, "a");
    assert.equal(out.id, "a");
    assert.equal(out.path?.index, 0);
    assert.equal(out.path?.pathSegments[1]?.id, seen);
    assert.equal(req.connection?.path?.pathSegments.length, 1, "the caller's request is not mutated");
  });
});
