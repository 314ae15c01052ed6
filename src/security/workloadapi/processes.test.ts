// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { tempDir } from "../testing.js";
import {
  processIdentity,
  processIdentityResolver,
  processStartTime,
  readProcessIdentities,
  writeProcessIdentities,
} from "./processes.js";

const TD = "proc.test";
const ME = `spiffe://${TD}/ns/default/pod/me`;
const OTHER = `spiffe://${TD}/ns/default/pod/other`;

describe("process identity file", () => {
  let dir: ReturnType<typeof tempDir>;
  let file: string;
  before(() => {
    dir = tempDir();
    file = join(dir.path, "identities.json");
  });
  after(() => dir.cleanup());

  it("is written atomically, owner-only, and read back", () => {
    const me = processIdentity(process.pid, ME)!;
    writeProcessIdentities(file, { version: 1, trustDomain: TD, processes: [me] });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readProcessIdentities(file)?.processes, [me]);
    assert.equal(readProcessIdentities(join(dir.path, "none.json")), undefined);
    assert.throws(() =>
      writeProcessIdentities(file, {
        version: 1,
        trustDomain: TD,
        processes: [{ pid: 1, start: 1, spiffeId: "spiffe://elsewhere/x" }],
      }),
    );
  });

  it("resolves a listed process and its children, never a recycled pid or a stranger", async () => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    try {
      const resolve = processIdentityResolver(file);
      writeProcessIdentities(file, { version: 1, trustDomain: TD, processes: [processIdentity(process.pid, ME)!] });
      assert.equal(await resolve(process.pid), ME);
      assert.equal(await resolve(child.pid!), ME, "a child inherits its parent's identity");
      assert.equal(await resolve(1), undefined, "pid 1 is nobody");
      assert.equal(await resolve(2 ** 22 + 777), undefined, "no such process");
      // The same pid with another start time is another process.
      writeProcessIdentities(file, {
        version: 1,
        trustDomain: TD,
        processes: [{ pid: process.pid, start: processStartTime(process.pid)! + 1, spiffeId: ME }],
      });
      assert.equal(await resolve(process.pid), undefined);
      // The child listed on its own wins over its parent.
      writeProcessIdentities(file, {
        version: 1,
        trustDomain: TD,
        processes: [processIdentity(process.pid, ME)!, processIdentity(child.pid!, OTHER)!],
      });
      assert.equal(await resolve(child.pid!), OTHER);
    } finally {
      child.kill();
    }
  });

  it("waits for a running process to be listed (the runtime writes just after spawning)", async () => {
    writeProcessIdentities(file, { version: 1, trustDomain: TD, processes: [] });
    const resolve = processIdentityResolver(file, { waitMs: 2000, pollMs: 20 });
    const later = setTimeout(
      () =>
        writeProcessIdentities(file, { version: 1, trustDomain: TD, processes: [processIdentity(process.pid, ME)!] }),
      200,
    );
    try {
      assert.equal(await resolve(process.pid), ME);
    } finally {
      clearTimeout(later);
    }
    const t0 = Date.now();
    assert.equal(await processIdentityResolver(file, { waitMs: 2000 })(2 ** 22 + 778), undefined);
    assert.ok(Date.now() - t0 < 500, "a pid that does not exist is not waited for");
  });

  it("refuses a damaged file", async () => {
    writeFileSync(file, JSON.stringify({ version: 2 }));
    await assert.rejects(async () => processIdentityResolver(file)(process.pid));
  });
});
