// SPDX-License-Identifier: Apache-2.0
/**
 * How long a role takes from its process start to serving, in secure mode (SVIDs from the
 * identity provider through the SPIFFE Workload API, mTLS, the default policies), each role
 * restarted as a crashed component is (SIGKILL, then started again beside the running mesh):
 * - **registry, nsmgr, forwarder, nse icmp-responder**: from the spawn of the process (`node`
 *   exec'd, in its netns for nsmgr/forwarder/nse) to the first gRPC call its server answers over
 *   mTLS (a call to an unknown method: UNIMPLEMENTED comes from the role's own server, after the
 *   TLS handshake).
 * - **nsc --init**: from its spawn to its "connection established" log line (its first Request
 *   answered end to end, a fresh client netns each run).
 *
 * The floor is the same measurement of a bare `node -e` that listens with grpc-js (no TLS, no
 * service): what Node and grpc-js alone cost. Ratios are ours ÷ floor. Each role also logs its
 * start-up milestones (`startupMs`: modules loaded, SVID ready, listening, registered; ms since
 * its process started), printed as the breakdown of the p50 run.
 *
 * The machine may be shared: next to each wall-clock time the CPU time the process used until it
 * served (from its milestones; the floor prints its own), which other processes' load inflates
 * much less.
 *
 * Usage: npm run bench:startup [-- --runs 5] [--smoke] [--profile DIR]. Root (netns). --smoke: one
 * run (what scripts/bench-smoke.sh runs). --profile: CPU profiles of every role process in
 * DIR/ROLE (restarts are then SIGTERM, as a profile is written at exit). The last line is JSON: ROLE_accept_p50_ms for registry, nsmgr,
 * forwarder, nse; nsc_established_p50_ms; floor_accept_p50_ms; ROLE_ratio_vs_floor; ROLE_cpu_p50_ms,
 * floor_cpu_p50_ms and ROLE_cpu_ratio_vs_floor; max_accept_ms (the slowest of nsmgr and forwarder
 * over the runs).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type * as grpc from "@grpc/grpc-js";
import { socketAccepts } from "../src/local/cluster.js";
import { NSM_NODE_FLAGS } from "../src/local/pods.js";
import { closeChannel, type DialOptions, dialChannel } from "../src/sdk/grpc/dial.js";
import { createSecurity, workloadSpiffeId } from "../src/security/index.js";
import { type BenchIdentityProvider, benchIdentityProvider, countOption, pct, r3, startRole } from "./common.js";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    smoke: { type: "boolean", default: false },
    profile: { type: "string" },
  },
});
const RUNS = countOption(values.runs, "runs", values.smoke, 1);
const REPO = join(import.meta.dirname, "..");
const tag = randomBytes(3).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "nsm-bench-startup-"));
const netns: string[] = [];
const procs: ChildProcess[] = [];
const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const addNetns = (name: string) => {
  execFileSync("ip", ["netns", "add", name]);
  netns.push(name);
  return name;
};

/** One timed start: ms from spawn to serving, and the role's own milestones (ms since its start). */
interface Sample {
  ms: number;
  marks?: Record<string, number>;
}

/** A started role: its process and its `startupMs` milestones once it logs them. */
interface Started {
  proc: ChildProcess;
  marks: Promise<Record<string, number> | undefined>;
  /** Resolves with the first log line whose msg is `msg`. */
  line(msg: string): Promise<{ time: string } | undefined>;
}

/** Starts a role (roles log at INFO to stderr: the milestones are read from there). */
function startTimed(ns: string | undefined, name: string, role: string[], env: Record<string, string>): Started {
  const cmd = [process.execPath, ...NSM_NODE_FLAGS, ...profileFlags(name), join(REPO, "bin", "nsm.js"), ...role];
  const argv = ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd;
  const proc = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, NSM_FROM_SOURCE: "0", NSM_LOG_LEVEL: "INFO", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  procs.push(proc);
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let rest = "";
  proc.stderr?.setEncoding("utf8");
  proc.stderr?.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const l of parts) {
      if (!l.startsWith("{")) continue;
      const o = JSON.parse(l) as Record<string, unknown>;
      if (o.level === "warn" || o.level === "error") log(`  ${name}: ${l}`);
      lines.push(o);
    }
    for (const w of waiters.splice(0)) w();
  });
  const find = async (pred: (o: Record<string, unknown>) => boolean) => {
    for (;;) {
      const hit = lines.find(pred);
      if (hit) return hit;
      if (proc.exitCode !== null || proc.signalCode !== null) return undefined;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return {
    proc,
    marks: find((o) => o.startupMs !== undefined).then((o) => o?.startupMs as Record<string, number> | undefined),
    line: (msg) => find((o) => o.msg === msg) as Promise<{ time: string } | undefined>,
  };
}

/** --profile DIR: CPU profiles of each role's processes in DIR/ROLE (written when they end: SIGTERM, not SIGKILL). */
function profileFlags(name: string): string[] {
  return values.profile ? ["--cpu-prof", "--cpu-prof-dir", join(values.profile, name)] : [];
}

/** One unary call to an unknown method: true when the server answered (any status but UNAVAILABLE/DEADLINE). */
function answers(url: string, dial: DialOptions): Promise<boolean> {
  const ch = dialChannel(url, dial);
  const id = (b: Buffer) => b;
  return new Promise<boolean>((resolve) => {
    ch.makeUnaryRequest(
      "/nsm.bench.Startup/Probe",
      id,
      id,
      Buffer.alloc(0),
      { deadline: Date.now() + 2000 },
      (err: grpc.ServiceError | null) => resolve(!err || (err.code !== 14 && err.code !== 4)),
    );
  }).finally(() => closeChannel(ch));
}

/** Waits until the gRPC server on unix socket `path` answers a call; ms since `t0`. */
async function acceptedAfter(t0: number, path: () => string | undefined, dial: DialOptions): Promise<number> {
  for (;;) {
    if (performance.now() - t0 > 30_000) throw new Error("not serving within 30 s");
    const p = path();
    if (p && (await socketAccepts(p)) && (await answers(`unix://${p}`, dial))) return performance.now() - t0;
    await sleep(2);
  }
}

/** Kills a role's process and waits for its end. */
async function kill(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once("exit", r));
  p.kill(values.profile ? "SIGTERM" : "SIGKILL");
  await gone;
}

/** The unix socket the endpoint made in its TMPDIR (`NAME-XXXXXX/listen.on`). */
function nseSocket(tmp: string): string | undefined {
  const sub = existsSync(tmp) ? readdirSync(tmp).find((d) => d.startsWith("nse-kernel-")) : undefined;
  return sub ? join(tmp, sub, "listen.on") : undefined;
}

interface Mesh {
  idp: BenchIdentityProvider;
  base: Record<string, string>;
  dial: DialOptions;
  node: string;
  pod: string;
  running: Record<string, ChildProcess | undefined>;
}

const sock = (name: string) => join(dir, `${name}.sock`);
const TD = "bench.nsm";

/** Each role's start: where it runs, its env, its identity and where it listens. */
function roleSpec(m: Mesh, role: string, run: number) {
  const specs: Record<string, { ns?: string; argv: string[]; env: Record<string, string>; id: string }> = {
    registry: { argv: ["registry"], env: { NSM_LISTEN_ON: `unix://${sock("registry")}` }, id: "registry" },
    nsmgr: {
      ns: m.node,
      argv: ["nsmgr"],
      env: {
        NSM_NAME: "nsmgr-1",
        NSM_LISTEN_ON: `unix://${sock("nsm")}`,
        NSM_REGISTRY_URL: `unix://${sock("registry")}`,
      },
      id: "nsmgr-1",
    },
    forwarder: {
      ns: m.node,
      argv: ["forwarder"],
      env: { NSM_NAME: "forwarder-1", NSM_LISTEN_ON: `unix://${sock("fwd")}`, NSM_CONNECT_TO: `unix://${sock("nsm")}` },
      id: "forwarder-1",
    },
    nse: {
      ns: m.pod,
      argv: ["nse", "icmp-responder"],
      env: {
        NSM_NAME: "nse-kernel",
        NSM_CONNECT_TO: `unix://${sock("nsm")}`,
        NSM_SERVICE_NAMES: "kernel2kernel",
        NSM_CIDR_PREFIX: "10.61.0.0/16",
        TMPDIR: join(dir, `nse-${run}`),
      },
      id: workloadSpiffeId(TD, "bench", "nse-kernel"),
    },
  };
  return specs[role]!;
}

/** Restarts `role` (SIGKILL of the running one) and times its new process to serving. */
async function restartTimed(m: Mesh, role: string, run: number): Promise<Sample> {
  const spec = roleSpec(m, role, run);
  await kill(m.running[role]);
  if (spec.env.TMPDIR) mkdirSync(spec.env.TMPDIR, { recursive: true });
  const t0 = performance.now();
  const started = startTimed(spec.ns, role, spec.argv, { ...m.base, ...spec.env });
  m.idp.list(started.proc.pid!, spec.id);
  m.running[role] = started.proc;
  const path = () => (role === "nse" ? nseSocket(spec.env.TMPDIR!) : sock(role === "nsmgr" ? "nsm" : role));
  const ms = await acceptedAfter(t0, role === "forwarder" ? () => sock("fwd") : path, m.dial);
  return { ms, marks: await within(started.marks, 15_000) };
}

/** A client's `nsc --init` in a fresh netns: ms from its spawn to "connection established". */
async function nscTimed(m: Mesh, run: number): Promise<Sample> {
  const ns = addNetns(`nsmst-${tag}-c${run}`);
  const name = `nsc-${run}`;
  const t0 = Date.now();
  const started = startTimed(ns, "nsc", ["nsc", "--init"], {
    ...m.base,
    NSM_NAME: name,
    NSM_CONNECT_TO: `unix://${sock("nsm")}`,
    NSM_NETWORK_SERVICES: "kernel://kernel2kernel/nsm-1",
  });
  m.idp.list(started.proc.pid!, workloadSpiffeId(TD, "bench", name));
  const line = await within(started.line("connection established"), 30_000);
  if (!line) throw new Error(`${name}: no connection established`);
  return { ms: Date.parse(line.time) - t0, marks: await within(started.marks, 1000) };
}

/** The floor: a bare `node -e` serving grpc-js on a unix socket in the node's netns. */
async function floorTimed(m: Mesh, run: number): Promise<Sample> {
  const path = join(dir, `floor-${run}.sock`);
  const script =
    'const g=require("@grpc/grpc-js");const s=new g.Server();' +
    `s.bindAsync("unix://${path}",g.ServerCredentials.createInsecure(),()=>{` +
    "const c=process.cpuUsage();process.stdout.write(String(Math.round((c.user+c.system)/1000)))});" +
    "setInterval(()=>{},1e9);";
  const t0 = performance.now();
  const p = spawn("ip", ["netns", "exec", m.node, "node", ...NSM_NODE_FLAGS, "-e", script], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "ignore"],
  });
  procs.push(p);
  let cpu = "";
  p.stdout?.on("data", (d) => (cpu += d));
  const ms = await acceptedAfter(t0, () => path, {});
  await kill(p);
  return { ms, marks: { cpu: Number(cpu) } };
}

async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** The mesh every restart happens in: identity provider, then each role started once. */
async function setUp(): Promise<Mesh> {
  const idp = await benchIdentityProvider(dir, "", (env) =>
    startRole(procs, undefined, "identity-provider", ["identity-provider"], { NSM_FROM_SOURCE: "0", ...env }),
  );
  const sec = await createSecurity({ socket: idp.env.SPIFFE_ENDPOINT_SOCKET });
  closers.push(() => sec.close());
  const m: Mesh = {
    idp,
    base: idp.env,
    dial: sec.dialOptions(),
    node: addNetns(`nsmst-${tag}-node`),
    pod: addNetns(`nsmst-${tag}-nse`),
    running: {},
  };
  for (const role of ROLES) await restartTimed(m, role, 0);
  await sleep(1000);
  return m;
}

const closers: (() => void)[] = [];
const ROLES = ["registry", "nsmgr", "forwarder", "nse"] as const;
type Samples = Record<(typeof ROLES)[number] | "nsc" | "floor", Sample[]>;

async function measure(m: Mesh): Promise<Samples> {
  const s: Samples = { registry: [], nsmgr: [], forwarder: [], nse: [], nsc: [], floor: [] };
  for (let run = 1; run <= RUNS; run++) {
    s.floor.push(await floorTimed(m, run));
    for (const role of ROLES) {
      s[role].push(await restartTimed(m, role, run));
      // Let the others reconnect and re-register before the next restart.
      await sleep(1000);
    }
    s.nsc.push(await nscTimed(m, run));
    const last = Object.entries(s).map(([k, v]) => `${k} ${Math.round(v.at(-1)!.ms)}`);
    log(`  run ${run}/${RUNS}: ${last.join(", ")} ms`);
  }
  return s;
}

/** The sample at the p50 of `xs` (its milestones are the breakdown printed). */
const medianSample = (xs: Sample[]) => [...xs].sort((a, b) => a.ms - b.ms)[Math.floor(xs.length / 2)]!;

const p50 = (xs: number[]) => Math.round(pct(xs, 50));
/** The p50 of the CPU time each sample's process used until it served (NaN when a role did not log it). */
const cpuP50 = (xs: Sample[]) => p50(xs.map((x) => x.marks?.cpu ?? Number.NaN));

/**
 * Wall-clock figures and ratios, and CPU figures (`ROLE_cpu_p50_ms`: CPU time until serving; on a
 * loaded machine the wall clock mostly measures the others' load, the CPU time much less).
 */
function summarize(s: Samples) {
  const floor = p50(s.floor.map((x) => x.ms));
  const floorCpu = cpuP50(s.floor);
  const out: Record<string, number> = { runs: RUNS, floor_accept_p50_ms: floor, floor_cpu_p50_ms: floorCpu };
  for (const role of ROLES) {
    out[`${role}_accept_p50_ms`] = p50(s[role].map((x) => x.ms));
    out[`${role}_ratio_vs_floor`] = r3(out[`${role}_accept_p50_ms`]! / floor);
    out[`${role}_cpu_p50_ms`] = cpuP50(s[role]);
    out[`${role}_cpu_ratio_vs_floor`] = r3(cpuP50(s[role]) / floorCpu);
  }
  out.nsc_established_p50_ms = p50(s.nsc.map((x) => x.ms));
  out.nsc_ratio_vs_floor = r3(out.nsc_established_p50_ms / floor);
  out.nsc_cpu_p50_ms = cpuP50(s.nsc);
  out.max_accept_ms = Math.round(Math.max(...[...s.nsmgr, ...s.forwarder].map((x) => x.ms)));
  return out;
}

function report(s: Samples, out: Record<string, number>): void {
  const lines = [
    `start → serving (secure; p50 of ${RUNS}; floor: bare node + grpc-js listening ${out.floor_accept_p50_ms} ms, CPU ${out.floor_cpu_p50_ms} ms)`,
  ];
  for (const role of [...ROLES, "nsc"] as const) {
    const key = role === "nsc" ? "nsc_established_p50_ms" : `${role}_accept_p50_ms`;
    const marks = medianSample(s[role]).marks ?? {};
    const breakdown = Object.entries(marks)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    const cpu = `CPU ${out[`${role}_cpu_p50_ms`]} ms${role === "nsc" ? "" : ` ×${out[`${role}_cpu_ratio_vs_floor`]}`}`;
    lines.push(
      `  ${role.padEnd(10)} ${String(out[key]).padStart(5)} ms  ×${out[`${role}_ratio_vs_floor`]}  ${cpu}  (p50 run: ${breakdown})`,
    );
  }
  console.log(lines.join("\n"));
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  log(`startup benchmark: ${RUNS} run(s), in ${dir}`);
  try {
    const m = await setUp();
    const s = await measure(m);
    report(s, summarize(s));
  } finally {
    const [idp, ...rest] = procs;
    for (const p of rest.reverse()) await kill(p);
    await kill(idp);
    for (const n of netns) execFileSync("ip", ["netns", "del", n]);
    rmSync(dir, { recursive: true, force: true });
    for (const close of closers) close();
  }
}

await main();
// The channels of the probes' grpc-js may linger: done.
process.exit(0);
