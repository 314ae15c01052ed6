// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadManifests } from "./manifest.js";

describe("NetworkService payload default", () => {
  it("a NetworkService without payload is IP, as upstream's registry registers it", () => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-payload-"));
    try {
      const f = join(dir, "ns.yaml");
      writeFileSync(f, "apiVersion: networkservicemesh.io/v1\nkind: NetworkService\nmetadata: {name: svc}\nspec: {}\n");
      const [m] = loadManifests([f]);
      assert.ok(m?.kind === "NetworkService");
      assert.equal(m.record.payload, "IP");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
