// SPDX-License-Identifier: Apache-2.0
/** `nsm dashboard` as a child process, for the tests that drive the real command. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { REPO } from "../local/helpers.js";

export interface DashboardProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything it printed so far. */
  output(): string;
  /** SIGINT, then its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `nsm dashboard --port 0 ARGS` (state dir `stateDir`) and resolves once it prints its URL. */
export function startDashboard(
  stateDir: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<DashboardProcess> {
  const child = spawn(process.execPath, [join(REPO, "bin", "nsm.js"), "dashboard", "--port", "0", ...args], {
    env: { ...process.env, ...env, NSM_LOCAL_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stderr!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m)
        resolve({
          child,
          url: m[1]!,
          output: () => out,
          async stop() {
            if (child.exitCode === null) child.kill("SIGINT");
            return exited;
          },
        });
    });
    void exited.then((code) => reject(new Error(`nsm dashboard exited with ${code}: ${out}`)));
  });
}
