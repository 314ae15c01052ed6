// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { it } from "node:test";

it("committed generated code matches proto/ (npm run generate)", () => {
  const out = execFileSync("node", ["scripts/check-generated.mjs"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  assert.match(out, /matches proto/);
});
