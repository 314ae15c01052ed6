// SPDX-License-Identifier: Apache-2.0
/**
 * examples/sdk/compose: an endpoint composed from the public SDK's pieces runs (tsx, importing
 * `nsm-ts/sdk` only) and prints what each piece did: the connection over the standard path, the
 * addresses from point2pointipam, the example's own element's stamp, the client address the
 * gateway element recorded (and forgot on Close), and the idle notification after its timeout.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { collectOutput } from "../helpers/process.js";
import { REPO } from "../local/helpers.js";

describe("examples/sdk/compose: your own endpoint from the SDK's pieces", () => {
  it("runs and prints the connection each piece shaped, then the idle notification", async () => {
    const started = Date.now();
    const r = await collectOutput(
      spawn(
        join(REPO, "node_modules", ".bin", "tsx"),
        ["--conditions=source", join(REPO, "examples", "sdk", "compose", "main.ts")],
        { cwd: REPO, env: { ...process.env, EXAMPLE_IDLE_MS: "700" }, stdio: ["ignore", "pipe", "pipe"] },
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "connected app-0 to my-endpoint over KERNEL",
      "client 172.16.9.1/32 endpoint 172.16.9.0/32",
      "served-by my-endpoint",
      "path app > nsmgr-0 > forwarder-0 > my-endpoint",
      "connected clients 172.16.9.1",
      "closed; connected clients 0",
      "idle: no connection for 700 ms, the endpoint would stop now",
    ]);
    assert.ok(Date.now() - started >= 700, "the idle notification came after the timeout");
  });
});
