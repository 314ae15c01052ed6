// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, PathSchema } from "../../api/index.js";
import { sharePathTokens } from "./pathstrings.js";

const path = (segments: [string, string][]) =>
  create(PathSchema, { index: 0, pathSegments: segments.map(([id, token]) => ({ id, name: id, token })) });

describe("sharePathTokens", () => {
  it("keeps equal tokens of the same segments and leaves the others as they are", () => {
    // Built by concatenation so that the two paths hold distinct string objects.
    const t = (s: string) => ["tok", s].join("-");
    const known = path([
      ["a", t("a")],
      ["b", t("b")],
    ]);
    const fresh = path([
      ["a", t("a")],
      ["b", t("b2")],
      ["c", t("c")],
    ]);
    sharePathTokens(fresh, known);
    assert.deepEqual(
      fresh.pathSegments.map((s) => [s.id, s.token]),
      [
        ["a", "tok-a"],
        ["b", "tok-b2"],
        ["c", "tok-c"],
      ],
    );
    sharePathTokens(undefined, known);
    sharePathTokens(fresh, undefined);
  });
});
