// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm dashboard` as a command: bad flags and a taken port get one line and an exit code; with no
 * runtime up it still serves, and says so on the page; SIGINT stops it with 0.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { collectOutput } from "../helpers/process.js";
import { REPO } from "../local/helpers.js";

const skip = process.getuid?.() !== 0 ? "needs root (the dashboard reads the local runtime)" : undefined;
const dir = mkdtempSync(join(tmpdir(), "nsm-dash-cli-"));

function dashboard(...args: string[]) {
  return spawn(process.execPath, [join(REPO, "bin", "nsm.js"), "dashboard", ...args], {
    env: { ...process.env, NSM_LOCAL_STATE_DIR: join(dir, "state") },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("nsm dashboard (command)", { skip }, () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("rejects bad flags with one line and exit code 2", async () => {
    for (const [args, message] of [
      [["--port", "abc"], "nsm dashboard: --port abc: expected a port number (0-65535)\n"],
      [["--port", "70000"], "nsm dashboard: --port 70000: expected a port number (0-65535)\n"],
      [["--poll", "fast"], "nsm dashboard: --poll fast: expected a duration such as 500ms or 2s\n"],
      [["--colour"], "nsm dashboard: unknown option --colour\n"],
    ] as const) {
      const r = await collectOutput(dashboard(...args));
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stderr, message);
      assert.equal(r.stdout, "");
    }
  });

  it("a port already taken: one line, exit code 1", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await collectOutput(dashboard("--port", String(port)));
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `nsm dashboard: error: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
    } finally {
      taken.close();
    }
  });

  it("with no runtime up it serves the page and says the runtime is not up; SIGINT stops it", async () => {
    const child = dashboard("--port", "0");
    const done = collectOutput(child);
    let out = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /serving (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code) => reject(new Error(`exited with ${code}`)));
    });
    const snapshot = (await (await fetch(new URL("/api/snapshot", url))).json()) as { problems: string[] };
    assert.deepEqual(snapshot.problems, [`the local runtime in ${join(dir, "state")} is not up (run \`nsm up\`)`]);
    assert.match(await (await fetch(url)).text(), /<script src="\/app.js" defer><\/script>/);
    child.kill("SIGINT");
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
  });
});
