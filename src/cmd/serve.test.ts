// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";

/** A role process that logs one debug and one info line every 20 ms (NSM_LOG_LEVEL=INFO). */
const SCRIPT = `
import { Env } from "./src/cmd/env.ts";
import { roleLogger } from "./src/cmd/serve.ts";
const log = roleLogger(new Env({ NSM_LOG_LEVEL: "INFO" }), "probe");
let i = 0;
setInterval(() => { log.debug({ i }, "debug line"); log.info({ i: i++ }, "info line"); }, 20);
process.stdout.write("ready\\n");
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("runtime log level (upstream: SIGUSR1 → TRACE, SIGUSR2 → back to NSM_LOG_LEVEL)", () => {
  it("starts at the configured level, logs debug after SIGUSR1 and stops again after SIGUSR2", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", SCRIPT], {
      cwd: new URL("../..", import.meta.url).pathname,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once("data", () => resolve());
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const levels = () =>
        stderr
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as { level: string; msg: string });
      await sleep(300);
      assert.ok(levels().some((l) => l.level === "info"));
      assert.equal(levels().filter((l) => l.level === "debug").length, 0);
      child.kill("SIGUSR1");
      await sleep(300);
      const afterUsr1 = levels().length;
      assert.ok(levels().filter((l) => l.level === "debug").length > 2, "debug lines after SIGUSR1");
      child.kill("SIGUSR2");
      await sleep(100);
      const debugAtUsr2 = levels().filter((l) => l.level === "debug").length;
      await sleep(300);
      assert.ok(levels().length > afterUsr1, "info lines go on");
      assert.equal(levels().filter((l) => l.level === "debug").length, debugAtUsr2, "no debug after SIGUSR2");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
