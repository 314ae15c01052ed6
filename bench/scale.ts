// SPDX-License-Identifier: Apache-2.0
/**
 * One node at scale: kernel2kernel connections through real processes (registry, nsmgr and
 * forwarder in a node netns, the icmp-responder in its pod netns, the identity provider; secure
 * mode: mTLS, path tokens, policies, netns ownership) with the client chains in this process,
 * the live count stepped 10 → 100 → 500 → 1000.
 *
 * At each step S, once S connections are live:
 * - setup and close: `samples` connections are closed (timed) and requested again (timed), one
 *   after another, so that each is measured with S (or S - 1) others live;
 * - nsmgr and forwarder RSS and open fds;
 * - idle CPU of nsmgr + forwarder over `--idle-seconds` with all S live (refreshes, liveness),
 *   as a percentage of one core;
 * - next to it, in the same client netns: the netlink floor (the same kernel work through the
 *   forwarder's kernel element, no control plane) and Debian's CNI `ptp` ADD, each also with S
 *   of its own live and its sample measured the same way (remove one, add it again). Like the
 *   forwarder's, the floor's Close answers once the pair has left both namespaces; the kernel's
 *   acknowledgement of the deletion (RCU grace periods, ~20 ms) is awaited in the background.
 * - the transport floor (`hops`): one call through three relay processes (`bench/relay.ts`), as
 *   many cross-process gRPC hops as the Request's path (client → nsmgr → forwarder → NSE), each
 *   a bare grpc-js unary call with the roles' credentials carrying 2.6 KB (what nsmgr sends the
 *   forwarder), sampled the same way. netlink floor + transport floor is the least a Request
 *   through three processes could cost here: `setup_ratio_vs_floors_S` is ours over that sum.
 * At the end every connection is closed one by one (timed: `teardown_close_p50_ms`).
 *
 * The roles run with NSM_PROCESS_ENV (src/local/pods.ts), 16 libuv threads among it; `npm run
 * bench:scale` gives this process (the netlink floor) the same pool.
 * Usage: npm run bench:scale [-- --steps 10,100,500,1000] [--samples 30] [--idle-seconds 60]
 *        [--insecure] [--profile DIR] [--smoke]
 * --smoke: steps 5,20, 5 samples, 2 s idle (what scripts/bench-smoke.sh runs).
 * --profile DIR: nsmgr, forwarder and the NSE run with --cpu-prof (written into DIR/<role> when
 * they stop); nsmgr and forwarder write a heap snapshot there at each step (SIGUSR2), after the
 * step's figures are taken (a snapshot inflates RSS: compare RSS from runs without --profile).
 * Root. The last line is JSON: per step S, setup_p50_ms_S, setup_p95_ms_S, close_p50_ms_S,
 * close_p95_ms_S, floor_p50_ms_S, floor_close_p50_ms_S, cni_ptp_p50_ms_S, hops_p50_ms_S,
 * setup_ratio_vs_floor_S, setup_ratio_vs_floors_S, setup_ratio_vs_cni_S, nsmgr_rss_mib_S, forwarder_rss_mib_S, nsmgr_fds_S, forwarder_fds_S,
 * idle_cpu_pct_S.
 */
import { type ChildProcess, execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Connection } from "../src/api/index.js";
import { CallContext } from "../src/sdk/core/context.js";
import { type DialOptions, dialChannel } from "../src/sdk/grpc/dial.js";
import type { createClient } from "../src/sdk/networkservice/chains/client/index.js";
import { createSecurity, workloadSpiffeId } from "../src/security/index.js";
import {
  type BenchIdentityProvider,
  benchIdentityProvider,
  netnsHolder,
  pct,
  r3,
  rssMiB,
  startNode,
  startRole,
  timedKernelRequest,
  waitAccepting,
  warmUp,
} from "./common.js";
import { cniPtp, netlinkFloor } from "./floors.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "10,100,500,1000" },
    samples: { type: "string", default: "30" },
    "idle-seconds": { type: "string", default: "60" },
    insecure: { type: "boolean", default: false },
    profile: { type: "string" },
    smoke: { type: "boolean", default: false },
  },
});

/** A strictly parsed positive integer option. */
function positive(raw: string, name: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not ${raw}`);
  return n;
}

const STEPS = values.smoke ? [5, 20] : values.steps.split(",").map((s) => positive(s.trim(), "steps"));
if (STEPS.some((s, i) => i > 0 && s <= STEPS[i - 1]!)) throw new Error("--steps must increase");
const SAMPLES = values.smoke ? 5 : positive(values.samples, "samples");
const IDLE_S = values.smoke ? 2 : positive(values["idle-seconds"], "idle-seconds");
const SECURE = !values.insecure;
const PROFILE = values.profile ? resolve(values.profile) : undefined;
const MAX = STEPS.at(-1)!;
const tag = randomBytes(3).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "nsm-bench-scale-"));
const netns: string[] = [];
const procs: ChildProcess[] = [];
const progress = (what: string, i: number, n: number) => process.stderr.write(`  ${what}: ${i}/${n}      \r`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function addNetns(name: string): string {
  execFileSync("ip", ["netns", "add", name]);
  netns.push(name);
  return name;
}

const start = (ns: string | undefined, name: string, role: string[], env: Record<string, string>, flags?: string[]) =>
  startRole(procs, ns, name, role, env, flags);
const holder = (ns: string) => netnsHolder(procs, ns);

/** Node flags of nsmgr and forwarder under --profile: a CPU profile and heap snapshots on SIGUSR2. */
function profileFlags(role: string): string[] {
  if (!PROFILE) return [];
  const out = join(PROFILE, role);
  mkdirSync(out, { recursive: true });
  return ["--cpu-prof", `--cpu-prof-dir=${out}`, "--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${out}`];
}

type IdentityProvider = BenchIdentityProvider;

/** The embedded CA serving the Workload API, attesting processes from a process identity file. */
function identityProvider(): Promise<IdentityProvider> {
  return benchIdentityProvider(dir, "", (env) => start(undefined, "identity-provider", ["identity-provider"], env));
}

/** The mesh's processes, and the client netns (each with its holder's pid). */
interface Mesh {
  nsmgr: ChildProcess;
  forwarder: ChildProcess;
  /** The transport floor, with the same credentials. */
  hops: Side;
  request(i: number): Promise<number>;
  close(i: number): Promise<number>;
  stop(): Promise<void>;
}

async function startRoles(idp: IdentityProvider | undefined, node: string, nsePod: string) {
  const base: Record<string, string> = idp ? idp.env : { NSM_INSECURE: "true" };
  const sec = await createSecurity({ socket: idp?.env.SPIFFE_ENDPOINT_SOCKET, insecure: !idp });
  const dial = sec.dialOptions();
  const reg = `unix://${dir}/registry.sock`;
  const nsm = `unix://${dir}/nsm.sock`;
  const registry = start(undefined, "registry", ["registry"], { ...base, NSM_LISTEN_ON: reg });
  idp?.list(registry.pid!, "registry");
  await waitAccepting(reg, dial);
  const nsmgr = start(
    node,
    "nsmgr",
    ["nsmgr"],
    { ...base, NSM_NAME: "nsmgr-1", NSM_LISTEN_ON: nsm, NSM_REGISTRY_URL: reg },
    profileFlags("nsmgr"),
  );
  idp?.list(nsmgr.pid!, "nsmgr-1");
  await waitAccepting(nsm, dial);
  const forwarder = start(
    node,
    "forwarder",
    ["forwarder"],
    { ...base, NSM_NAME: "forwarder-1", NSM_LISTEN_ON: `unix://${dir}/fwd.sock`, NSM_CONNECT_TO: nsm },
    profileFlags("forwarder"),
  );
  idp?.list(forwarder.pid!, "forwarder-1");
  const nse = start(
    nsePod,
    "nse",
    ["nse", "icmp-responder"],
    {
      ...base,
      NSM_NAME: "nse-kernel",
      NSM_CONNECT_TO: nsm,
      NSM_SERVICE_NAMES: "kernel2kernel",
      NSM_CIDR_PREFIX: "10.60.0.0/16",
    },
    profileFlags("nse"),
  );
  idp?.list(nse.pid!, workloadSpiffeId("bench.nsm", "bench", "nse-kernel"));
  return { sec, dial, nsm, nsmgr, forwarder };
}

const RELAYS = 3;
const RELAY_PATH = "/bench.Relay/Hop";
const RELAY_MESSAGE = Buffer.alloc(2600, 0x5a);

/** The transport floor: relays started last to first, each dialing the next (see the module doc). */
async function relayChain(idp: IdentityProvider | undefined, dial: DialOptions): Promise<Side> {
  const base: Record<string, string> = idp ? idp.env : { NSM_INSECURE: "true" };
  const urls = Array.from({ length: RELAYS }, (_, i) => `unix://${dir}/relay-${i}.sock`);
  for (let i = RELAYS - 1; i >= 0; i--) {
    const args = ["--import", "tsx", "bench/relay.ts", urls[i]!, ...(urls[i + 1] ? [urls[i + 1]!] : [])];
    const p = startNode(procs, undefined, `relay-${i}`, args, base);
    idp?.list(p.pid!, `relay-${i}`);
    await waitAccepting(urls[i]!, dial);
  }
  const channel = dialChannel(urls[0]!, dial);
  const hop = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      channel.makeUnaryRequest(
        RELAY_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        RELAY_MESSAGE,
        { deadline: Date.now() + 15_000 },
        (err, reply) => {
          if (err) reject(err);
          else if (reply?.length !== RELAY_MESSAGE.length) reject(new Error("the relays answered a wrong message"));
          else resolve(performance.now() - t0);
        },
      );
    });
  await warmUp(hop);
  return { request: hop, close: hop };
}

/** Our control plane: `pids[i]` names the netns of connection i (index MAX is the warm-up's). */
async function mesh(pids: number[]): Promise<Mesh> {
  const idp = SECURE ? await identityProvider() : undefined;
  const roles = await startRoles(idp, addNetns(`nsms-${tag}-node`), addNetns(`nsms-${tag}-nse`));
  const authorize = roles.sec.clientAuthorize();
  const live = new Map<number, { client: ReturnType<typeof createClient>; conn: Connection }>();
  const request = async (i: number) => {
    const t = await timedKernelRequest(i, pids[i]!, { connectTo: roles.nsm, ...roles.dial, authorize });
    live.set(i, t);
    return t.ms;
  };
  const close = async (i: number) => {
    const c = live.get(i)!;
    live.delete(i);
    const t0 = performance.now();
    await c.client.close(c.conn, CallContext.create({ deadline: Date.now() + 15_000 }));
    return performance.now() - t0;
  };
  await warmUp(() => request(MAX));
  await close(MAX);
  const hops = await relayChain(idp, roles.dial);
  return {
    nsmgr: roles.nsmgr,
    forwarder: roles.forwarder,
    hops,
    request,
    close,
    async stop() {
      roles.sec.close();
      // The identity provider goes last: the others hold its streams.
      const [idpProc, ...rest] = procs.filter((p) => p.spawnargs.includes("bin/nsm.js"));
      for (const p of SECURE ? rest : [idpProc!, ...rest]) if (p.exitCode === null) p.kill("SIGTERM");
      await sleep(1000);
      if (SECURE && idpProc?.exitCode === null) idpProc.kill("SIGTERM");
    },
  };
}

interface Side {
  request(i: number): Promise<number>;
  close(i: number): Promise<number>;
}

/** The netlink floor (bench/floors.ts), connection i into client netns i. */
function floor(clientNs: string[]): Side & { stop(): Promise<void> } {
  const f = netlinkFloor(addNetns(`nsms-${tag}-fnse`), "flr");
  return { request: (i) => f.request(i, clientNs[i]!), close: (i) => f.close(i), stop: () => f.stop() };
}

/** Debian's CNI ptp plugin (bench/floors.ts), container i in client netns i. */
function cniSide(clientNs: string[]): Side {
  const cni = cniPtp(addNetns(`nsms-${tag}-host`), join(dir, "cni-ipam"), tag);
  return {
    request: async (i) => cni.run("ADD", i, clientNs[i]!),
    close: async (i) => cni.run("DEL", i, clientNs[i]!),
  };
}

/** User + system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

interface Timings {
  setup: number[];
  close: number[];
}

/** Brings `side` from `from` to `to` live, then closes and re-requests `SAMPLES` of them (timed). */
async function step(side: Side, what: string, from: number, to: number): Promise<Timings> {
  for (let i = from; i < to; i++) {
    await side.request(i);
    if (i % 20 === 0) progress(`${what} to ${to}`, i, to);
  }
  const out: Timings = { setup: [], close: [] };
  const n = Math.min(SAMPLES, to);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(((k + 0.5) * to) / n);
    out.close.push(await side.close(i));
    out.setup.push(await side.request(i));
  }
  return out;
}

/** CPU of nsmgr + forwarder, in % of one core, over IDLE_S seconds of nothing asked of them. */
async function idleCpu(pids: number[]): Promise<number> {
  const before = pids.map(cpuSeconds);
  const t0 = performance.now();
  await sleep(IDLE_S * 1000);
  const used = pids.map(cpuSeconds).reduce((a, b, i) => a + b - before[i]!, 0);
  return (100 * used) / ((performance.now() - t0) / 1000);
}

type Row = Record<string, number>;

/** Asks each process for a heap snapshot (SIGUSR2, --profile) and gives them time to write it. */
async function heapSnapshots(pids: number[]): Promise<void> {
  for (const pid of pids) process.kill(pid, "SIGUSR2");
  await sleep(15_000);
}

async function measureStep(s: number, prev: number, m: Mesh, fl: Side, cni: Side): Promise<Row> {
  const ours = await step(m, "nsm", prev, s);
  const f = await step(fl, "floor", prev, s);
  const c = await step(cni, "cni ptp", prev, s);
  const h = await step(m.hops, "transport floor", prev, s);
  const [nsmgr, forwarder] = [m.nsmgr.pid!, m.forwarder.pid!];
  const idle = await idleCpu([nsmgr, forwarder]);
  const row: Row = {
    [`setup_p50_ms_${s}`]: r3(pct(ours.setup, 50)),
    [`setup_p95_ms_${s}`]: r3(pct(ours.setup, 95)),
    [`close_p50_ms_${s}`]: r3(pct(ours.close, 50)),
    [`close_p95_ms_${s}`]: r3(pct(ours.close, 95)),
    [`floor_p50_ms_${s}`]: r3(pct(f.setup, 50)),
    [`floor_close_p50_ms_${s}`]: r3(pct(f.close, 50)),
    [`cni_ptp_p50_ms_${s}`]: r3(pct(c.setup, 50)),
    [`hops_p50_ms_${s}`]: r3(pct(h.setup, 50)),
    [`setup_ratio_vs_floor_${s}`]: r3(pct(ours.setup, 50) / pct(f.setup, 50)),
    [`setup_ratio_vs_floors_${s}`]: r3(pct(ours.setup, 50) / (pct(f.setup, 50) + pct(h.setup, 50))),
    [`setup_ratio_vs_cni_${s}`]: r3(pct(ours.setup, 50) / pct(c.setup, 50)),
    [`nsmgr_rss_mib_${s}`]: rssMiB(nsmgr),
    [`forwarder_rss_mib_${s}`]: rssMiB(forwarder),
    [`nsmgr_fds_${s}`]: fds(nsmgr),
    [`forwarder_fds_${s}`]: fds(forwarder),
    [`idle_cpu_pct_${s}`]: r3(idle),
  };
  printStep(s, row);
  if (PROFILE) await heapSnapshots([nsmgr, forwarder]);
  return row;
}

function printStep(s: number, r: Row): void {
  const g = (k: string) => r[`${k}_${s}`];
  console.log(
    `${s} live: setup p50 ${g("setup_p50_ms")} p95 ${g("setup_p95_ms")} ms, close p50 ${g("close_p50_ms")} p95 ${g("close_p95_ms")} ms` +
      ` | floor ${g("floor_p50_ms")} ms (close ${g("floor_close_p50_ms")}), transport floor ${g("hops_p50_ms")} ms,` +
      ` cni ptp ${g("cni_ptp_p50_ms")} ms | ×floor ${g("setup_ratio_vs_floor")}, ×(floor + transport)` +
      ` ${g("setup_ratio_vs_floors")}, ×cni ${g("setup_ratio_vs_cni")}` +
      ` | RSS nsmgr ${g("nsmgr_rss_mib")} fwd ${g("forwarder_rss_mib")} MiB, fds ${g("nsmgr_fds")}/${g("forwarder_fds")}` +
      ` | idle CPU ${g("idle_cpu_pct")}% of a core`,
  );
}

/** Closes every live connection of ours one by one; their durations. */
async function teardown(m: Mesh, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    times.push(await m.close(i));
    if (i % 20 === 0) progress("closing", i, n);
  }
  return times;
}

function cleanup(): void {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  for (const n of netns.splice(0)) spawnSync("ip", ["netns", "del", n], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

async function main(): Promise<void> {
  const clientNs = Array.from({ length: MAX + 1 }, (_, i) => {
    if (i % 50 === 0) progress("client netns", i, MAX);
    return addNetns(`nsms-${tag}-c${i}`);
  });
  const pids = clientNs.map((ns) => holder(ns).pid!);
  const m = await mesh(pids);
  const fl = floor(clientNs);
  const cni = cniSide(clientNs);
  let result: Row = { secure: SECURE ? 1 : 0, samples: SAMPLES, idle_seconds: IDLE_S };
  let prev = 0;
  console.log(`kernel2kernel on one node, ${SECURE ? "secure" : "insecure"}, steps ${STEPS.join(" → ")}:`);
  for (const s of STEPS) {
    result = { ...result, ...(await measureStep(s, prev, m, fl, cni)) };
    prev = s;
  }
  const closes = await teardown(m, MAX);
  result.teardown_close_p50_ms = r3(pct(closes, 50));
  result.teardown_close_p95_ms = r3(pct(closes, 95));
  console.log(
    `closing all ${MAX} one by one: p50 ${result.teardown_close_p50_ms} ms, p95 ${result.teardown_close_p95_ms} ms`,
  );
  await fl.stop();
  await m.stop();
  console.log(JSON.stringify(result));
}

try {
  await main();
} finally {
  cleanup();
  await sleep(300);
}
// Channels to the stopped processes would keep retrying (and the process alive).
process.exit(0);
