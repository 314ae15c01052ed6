// SPDX-License-Identifier: Apache-2.0
/**
 * How fast connections heal, through the local runtime with real processes (one node, one
 * client pod, two endpoints of its service):
 * - **NSE death**: the endpoint the client uses dies at once (its processes get SIGKILL and its
 *   pod netns is deleted, as a deleted pod); timed until the client's first answered ping through
 *   the other endpoint. The endpoint is then applied again for the next run.
 * - **nsmgr restart**: the node's nsmgr gets SIGKILL and is started again while the client pings
 *   its endpoint every 20 ms; timed until the client's sidecar logs the re-request, and every
 *   unanswered echo is counted.
 *
 * Each figure comes with its floor, measured in the same run: for NSE death, a fresh Request
 * through the same mesh (the client's `nsc --init` connecting, from its log): a heal is at least
 * one Request, and detection can be immediate (the endpoint's monitor stream breaks) or take up
 * to a liveness interval (200 ms); for nsmgr restart, the time the restarted nsmgr takes to
 * accept connections. The peer is upstream's published bound: its heal
 * suites give a connection 10 s (heal_extended: the interface must be back within 10 s after a
 * component restart). Ratios are ours ÷ floor and ours ÷ peer.
 *
 * Usage: npm run bench:heal [-- --runs 10] [--smoke]. Root. --smoke: one run of each (what
 * scripts/bench-smoke.sh runs so the benchmark cannot rot). The last line is JSON with nse_death_p50_ms,
 * nse_death_max_ms, nsmgr_restart_p50_ms, nsmgr_restart_lost_pings and the floors and ratios.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { socketAccepts } from "../src/local/cluster.js";
import {
  clientYaml,
  currentEndpoint,
  endpointAddressOf,
  namespaceYaml,
  networkServiceYaml,
  nseYaml,
  Pinger,
  podNetns,
  waitHealed,
  waitPing,
  waitPingThrough,
  writeManifest,
} from "../test/heal/helpers.js";
import type { TestRuntime } from "../test/local/helpers.js";
import { pct, r3 } from "./common.js";

const run = promisify(execFile);
const REPO = join(import.meta.dirname, "..");
const NSM = join(REPO, "bin", "nsm.js");
const NS = "bench-heal";
const UPSTREAM_HEAL_BOUND_MS = 10_000;
const PREFIX: Record<string, string> = { "nse-a": "172.16.40.", "nse-b": "172.16.41." };
const CIDR: Record<string, string> = { "nse-a": "172.16.40.64/27", "nse-b": "172.16.41.64/27" };

const { values } = parseArgs({
  options: { runs: { type: "string", default: "10" }, smoke: { type: "boolean", default: false } },
});
const RUNS = values.smoke ? 1 : Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error("--runs must be a positive integer");

const dir = mkdtempSync(join(tmpdir(), "nsm-bench-heal-"));
const stateDir = join(dir, "state");
const manifests = join(dir, "manifests");

async function nsm(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [NSM, ...args], {
    env: { ...process.env, NSM_LOCAL_STATE_DIR: stateDir },
    maxBuffer: 1 << 24,
  });
  return stdout;
}

/** The bits of test/local/helpers' TestRuntime the heal helpers read. */
const rt = { dir: stateDir } as TestRuntime;

interface PodProcs {
  netns: string;
  containers: { proc?: { pid: number } }[];
}
const state = () =>
  JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as {
    pods: (PodProcs & { name: string })[];
    nodes: { nsmgr: { pid: number }; nsmgrSocket: string }[];
  };

const log = (s: string) => process.stderr.write(`${s}\n`);
const nseFile = (name: string) =>
  writeManifest(manifests, name, nseYaml({ name, service: "bench-heal", cidr: CIDR[name]!, node: "node-1" }));

/** The client's Request latency as its `nsc --init` logged it: first log line to "connection established". */
function initRequestMs(): number {
  const lines = readFileSync(join(stateDir, "logs", `${NS}_c1_cmd-nsc-init.log`), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { time: string; msg: string });
  const established = lines.findLast((l) => l.msg === "connection established");
  const security = lines.findLast((l, i) => l.msg === "mTLS on" && i < lines.indexOf(established!));
  if (!established || !security) throw new Error("no request in the nsc-init log");
  return Date.parse(established.time) - Date.parse(security.time);
}

async function nseDeath(): Promise<number> {
  const c1 = podNetns(rt, NS, "c1");
  const current = currentEndpoint(rt, NS, "c1");
  const other = current === "nse-a" ? "nse-b" : "nse-a";
  await waitPing(c1, endpointAddressOf(c1), 5000);
  const pod = state().pods.find((p) => p.name === current)!;
  const t0 = performance.now();
  for (const c of pod.containers) if (c.proc) process.kill(c.proc.pid, "SIGKILL");
  await run("ip", ["netns", "del", pod.netns]);
  await waitPingThrough(c1, "nsm-1", PREFIX[other]!, 30_000);
  const ms = performance.now() - t0;
  // The pod is gone; apply it again (same name) for the next run.
  await nsm("delete", "-n", NS, "-f", join(manifests, `${current}.yaml`));
  await nsm("apply", "-n", NS, "-f", nseFile(current));
  return ms;
}

async function nsmgrRestart(): Promise<{ rerequestMs: number; backMs: number; lost: number }> {
  const c1 = podNetns(rt, NS, "c1");
  const pinger = new Pinger(c1, endpointAddressOf(c1), 20);
  while (pinger.answered < 5) await new Promise((r) => setTimeout(r, 20));
  const node = state().nodes[0]!;
  const t0 = Date.now();
  process.kill(node.nsmgr.pid, "SIGKILL");
  while (existsSync(`/proc/${node.nsmgr.pid}`)) await new Promise((r) => setTimeout(r, 5));
  const started = nsm("start", "nsmgr/node-1");
  // The killed process's socket file refuses connections; accepting means the new nsmgr listens.
  while (!(await socketAccepts(node.nsmgrSocket).catch(() => false))) await new Promise((r) => setTimeout(r, 10));
  const backMs = Date.now() - t0;
  const healed = await waitHealed(rt, NS, "c1", t0, 30_000);
  await started;
  await new Promise((r) => setTimeout(r, 300));
  const rec = await pinger.stop();
  return { rerequestMs: healed.time - t0, backMs, lost: rec.lost };
}

type RestartRun = { rerequestMs: number; backMs: number; lost: number };

/** A mesh with one service, two endpoints and client c1; resolves with the time of c1's first Request. */
async function setUp(): Promise<number> {
  await nsm("up");
  await nsm(
    "apply",
    "-n",
    NS,
    "-f",
    writeManifest(manifests, "base", namespaceYaml(NS), networkServiceYaml("bench-heal", "ETHERNET")),
  );
  await nsm("apply", "-n", NS, "-f", nseFile("nse-a"), "-f", nseFile("nse-b"));
  await nsm(
    "apply",
    "-n",
    NS,
    "-f",
    writeManifest(manifests, "c1", clientYaml({ name: "c1", nsurl: "kernel://bench-heal/nsm-1", node: "node-1" })),
  );
  return initRequestMs();
}

/** The figures of the runs, with their ratios to the floors and to the upstream bound. */
function summarize(requestMs: number, deaths: number[], restarts: RestartRun[]) {
  const nseDeathFloor = requestMs;
  const nseP50 = pct(deaths, 50);
  const rr = restarts.map((r) => r.rerequestMs);
  const backP50 = pct(
    restarts.map((r) => r.backMs),
    50,
  );
  return {
    runs: RUNS,
    nse_death_p50_ms: Math.round(nseP50),
    nse_death_max_ms: Math.round(Math.max(...deaths)),
    nse_death_floor_ms: Math.round(nseDeathFloor),
    nse_death_ratio_vs_floor: r3(nseP50 / nseDeathFloor),
    nse_death_ratio_vs_upstream_bound: r3(nseP50 / UPSTREAM_HEAL_BOUND_MS),
    nsmgr_restart_p50_ms: pct(rr, 50),
    nsmgr_restart_max_ms: Math.max(...rr),
    nsmgr_restart_floor_ms: backP50,
    nsmgr_restart_ratio_vs_floor: r3(pct(rr, 50) / backP50),
    nsmgr_restart_ratio_vs_upstream_bound: r3(pct(rr, 50) / UPSTREAM_HEAL_BOUND_MS),
    nsmgr_restart_lost_pings: restarts.reduce((n, r) => n + r.lost, 0),
  };
}

function report(result: ReturnType<typeof summarize>): void {
  console.log(
    [
      `NSE death → ping through the other endpoint: p50 ${result.nse_death_p50_ms} ms, max ${result.nse_death_max_ms} ms`,
      `  floor (a fresh Request): ${result.nse_death_floor_ms} ms → ratio ${result.nse_death_ratio_vs_floor}`,
      `  upstream bound ${UPSTREAM_HEAL_BOUND_MS} ms → ratio ${result.nse_death_ratio_vs_upstream_bound}`,
      `nsmgr restart → re-request: p50 ${result.nsmgr_restart_p50_ms} ms, max ${result.nsmgr_restart_max_ms} ms, ${result.nsmgr_restart_lost_pings} ping(s) lost (20 ms interval)`,
      `  floor (nsmgr accepting again): ${result.nsmgr_restart_floor_ms} ms → ratio ${result.nsmgr_restart_ratio_vs_floor}`,
      `  upstream bound ${UPSTREAM_HEAL_BOUND_MS} ms → ratio ${result.nsmgr_restart_ratio_vs_upstream_bound}`,
    ].join("\n"),
  );
  console.log(JSON.stringify(result));
}

async function main(): Promise<void> {
  log(`heal benchmark: ${RUNS} runs each, state in ${stateDir}`);
  try {
    const requestMs = await setUp();
    const deaths: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      deaths.push(await nseDeath());
      log(`  NSE death ${i}/${RUNS}: ping through the other endpoint after ${Math.round(deaths.at(-1)!)} ms`);
    }
    const restarts: RestartRun[] = [];
    for (let i = 1; i <= RUNS; i++) {
      restarts.push(await nsmgrRestart());
      const r = restarts.at(-1)!;
      log(
        `  nsmgr restart ${i}/${RUNS}: nsmgr back ${r.backMs} ms, re-request ${r.rerequestMs} ms, ${r.lost} ping(s) lost`,
      );
    }
    report(summarize(requestMs, deaths, restarts));
  } finally {
    await nsm("down").catch((err) => log(`nsm down failed: ${err}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
