// SPDX-License-Identifier: Apache-2.0
/**
 * Helpers for the local-runtime tests: each test file gets its own state directory under the temp
 * dir (so its netns prefix is its own and files can run in parallel), runs the real CLI
 * (`bin/nsm.js`) and checks the kernel with `ip -j`.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadNativeBinding } from "../../src/kernel/index.js";
import { findByEnv } from "../../src/local/proc.js";
import { RUNTIME_MARKER_ENV, runtimePaths } from "../../src/local/state.js";
import { type CommandResult, collectOutput } from "../helpers/process.js";

export const REPO = join(import.meta.dirname, "..", "..");
export const EXAMPLE = join(REPO, "examples", "kernel2kernel");
const BIN = join(REPO, "bin", "nsm.js");

/** Why these tests cannot run here, or undefined. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  try {
    loadNativeBinding();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

export type Result = CommandResult;

export interface TestRuntime {
  readonly dir: string;
  readonly prefix: string;
  /** Runs `nsm ARGS` against this runtime's state dir. */
  nsm(...args: string[]): Promise<Result>;
  /** Like nsm(), but fails the test (with the output) unless the exit code is 0. */
  ok(...args: string[]): Promise<string>;
  /** The runtime's netns names. */
  netns(): string[];
  /** Live processes carrying the runtime's marker. */
  processes(): number[];
  /** With NSM_TEST_KEEP_LOGS=DIR: copies every component's log (and a README shell's files) to DIR/<name>. */
  keepLogs(): void;
  /** keepLogs(), `nsm down` and removal of the temp dir (for after hooks; never throws). */
  cleanup(): Promise<void>;
}

/** `env`: extra environment for every `nsm` command (e.g. NSM_MAX_TOKEN_LIFETIME, passed on to the runtime's processes). */
export function testRuntime(name: string, env: Record<string, string> = {}): TestRuntime {
  const dir = join(mkdtempSync(join(tmpdir(), `nsm-${name}-`)), "state");
  const { prefix } = runtimePaths(dir);
  const nsm = (...args: string[]): Promise<Result> =>
    collectOutput(
      spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, ...env, NSM_LOCAL_STATE_DIR: dir },
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
  const rt: TestRuntime = {
    dir,
    prefix,
    nsm,
    async ok(...args) {
      const r = await nsm(...args);
      if (r.code !== 0)
        throw new Error(`nsm ${args.join(" ")} exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      return r.stdout;
    },
    netns: () => listNetns().filter((n) => n.startsWith(`${prefix}-`)),
    processes: () => findByEnv(RUNTIME_MARKER_ENV, prefix).map((p) => p.pid),
    keepLogs() {
      // NSM_TEST_KEEP_LOGS=DIR keeps every component's log for a look after the run.
      const keep = process.env.NSM_TEST_KEEP_LOGS;
      if (!keep) return;
      if (existsSync(join(dir, "logs"))) cpSync(join(dir, "logs"), join(keep, name), { recursive: true, force: true });
      const shell = join(dir, "..", "readme-shell");
      if (existsSync(shell)) cpSync(shell, join(keep, name, "readme-shell"), { recursive: true, force: true });
    },
    async cleanup() {
      rt.keepLogs();
      await nsm("down");
      rmSync(join(dir, ".."), { recursive: true, force: true });
    },
  };
  return rt;
}

export function listNetns(): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter(Boolean);
}

/** `ip -n NETNS -j ARGS`, parsed. */
export function ipJson(netns: string, ...args: string[]): any[] {
  const out = execFileSync("ip", ["-n", netns, "-j", ...args], { encoding: "utf8" });
  return out.trim() ? JSON.parse(out) : [];
}

/** The IPv4 addresses (`a.b.c.d/len`) of a link in a netns. */
export function ipv4Of(netns: string, link: string): string[] {
  const [l] = ipJson(netns, "addr", "show", "dev", link);
  return (l?.addr_info ?? [])
    .filter((a: { family: string }) => a.family === "inet")
    .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
}

/** The links of a netns other than lo. */
export function linksOf(netns: string): { ifname: string; ifalias?: string }[] {
  return ipJson(netns, "link", "show").filter((l: { ifname: string }) => l.ifname !== "lo");
}

/** Rows of a kubectl-like table printed by `nsm get` (header dropped), split on runs of spaces. */
export function rows(table: string): string[][] {
  return table
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s{2,}/));
}

/**
 * `nsm exec TARGET -n NAMESPACE -- ping -c 2 -i 0.2 -W 2 ADDRESS` (TARGET: `pods/NAME`,
 * `deployments/NAME`); fails the test, with the output, unless both replies came.
 */
export async function assertPings(rt: TestRuntime, target: string, namespace: string, address: string): Promise<void> {
  const r = await rt.nsm("exec", target, "-n", namespace, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", address);
  assert.match(r.stdout, /2 received/, `ping ${address} from ${target}: ${r.stdout}${r.stderr}`);
}

/** The netns of a pod, from the state file. */
export function podNetns(rt: TestRuntime, namespace: string, pod: string): string {
  const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
  const p = state.pods.find((x: { namespace: string; name: string }) => x.namespace === namespace && x.name === pod);
  if (!p) throw new Error(`pod ${namespace}/${pod} not in the state`);
  return p.netns;
}

/** The wireguard-go processes running in a netns: pid and interface (UAPI) name. */
export function wireguardGoIn(netns: string): { pid: number; name: string }[] {
  let pids: number[];
  try {
    pids = execFileSync("ip", ["netns", "pids", netns], { encoding: "utf8" }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  const out: { pid: number; name: string }[] = [];
  for (const pid of pids) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith("wireguard-go")) continue;
    out.push({ pid, name: argv.at(argv.indexOf("-f") + 1) ?? argv.at(-2) ?? "" });
  }
  return out;
}
