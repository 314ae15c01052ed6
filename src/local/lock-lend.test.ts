// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { isLending, type LentRequest, lendLockWhile, requestFromLender } from "./lock-lend.js";
import { runtimePaths } from "./state.js";

describe("local runtime: lending the lock while a client waits", () => {
  const dir = mkdtempSync(join(tmpdir(), "lock-lend-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const paths = runtimePaths(dir);

  it("serves a request sent while lending, returns its lines, and stops lending after", async () => {
    const served: LentRequest[] = [];
    let finish!: () => void;
    const waiting = new Promise<string>((r) => {
      finish = () => r("connected");
    });
    const lending = lendLockWhile(
      paths,
      async (req, lines) => {
        served.push(req);
        lines.push(`pod/${req.files[0]} created`);
        finish(); // the endpoint the waiting client needed now runs
      },
      waiting,
    );
    assert.equal(isLending(paths, process.pid), true);
    const lines = await requestFromLender(paths, process.pid, { files: ["nse.yaml"], namespace: "ns" });
    assert.deepEqual(lines, ["pod/nse.yaml created"]);
    assert.equal(await lending, "connected");
    assert.deepEqual(served, [{ files: ["nse.yaml"], namespace: "ns" }]);
    assert.equal(isLending(paths, process.pid), false);
    assert.deepEqual(readdirSync(join(paths.tmpDir, "lock-lend")), [], "no request or result file left");
  });

  it("gives the sender the holder's error", async () => {
    let finish!: () => void;
    const waiting = new Promise<void>((r) => {
      finish = r;
    });
    const lending = lendLockWhile(
      paths,
      async () => {
        finish();
        throw new Error("pod ns/x: bad");
      },
      waiting,
    );
    await assert.rejects(requestFromLender(paths, process.pid, { files: ["x.yaml"] }), /pod ns\/x: bad/);
    await lending;
  });
});
