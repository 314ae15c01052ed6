// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ownNetnsUrl } from "./nsc.js";

describe("ownNetnsUrl", () => {
  const dir = mkdtempSync(join(tmpdir(), "nsc-netns-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const byPid = `file:///proc/${process.pid}/ns/net`;

  it("names the namespace by pid when nothing in the directory is it", () => {
    writeFileSync(join(dir, "other"), "");
    assert.equal(ownNetnsUrl(dir), byPid);
    assert.equal(ownNetnsUrl(join(dir, "missing")), byPid);
  });

  it("prefers a file of the directory that is this namespace (same device and inode)", () => {
    symlinkSync("/proc/self/ns/net", join(dir, "my-pod"));
    assert.equal(ownNetnsUrl(dir), `file://${dir}/my-pod`);
  });
});
