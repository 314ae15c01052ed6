// SPDX-License-Identifier: Apache-2.0
/**
 * kernel2kernel connection setup on one node: client Request → interface configured in both
 * network namespaces, through real processes (registry, nsmgr and forwarder in a node netns,
 * the icmp-responder in its pod netns) with the client chain in this process; each connection
 * goes into a fresh client netns made beforehand.
 *
 * In the same run:
 * - floor: the same netlink work (veth pair, moves, names, tags, addresses, routes, sysctls)
 *   done directly through the forwarder's kernel element, with no control plane;
 * - peer: Debian's CNI `ptp` plugin ADD (with host-local IPAM) into a fresh netns, invoked as a
 *   runtime would (one exec per ADD, config on stdin); its "host" side lives in a throwaway netns.
 * Also the RSS of nsmgr and forwarder with all connections live.
 * The control plane runs twice, side by side in the same run, its requests interleaved: insecure
 * (NSM_INSECURE=true) and secure (every hop mTLS with SVIDs from the identity provider, path
 * tokens, default policies, the forwarder's netns ownership check); `security_overhead_ratio` is
 * secure p50 / insecure p50. Clients name their netns by the pid of a process inside it
 * (`file:///proc/<pid>/ns/net`) in both.
 * Two more insecure meshes run beside them, interleaved the same way: one with Prometheus metrics on
 * in every role (NSM_PROMETHEUS=true) and one with OpenTelemetry traces on (TELEMETRY=true, spans
 * of every element of every hop, the client's included, exported to a live collector: the real
 * Jaeger when scripts/peers.sh built it, else a stand-in OTLP receiver that accepts every export);
 * `metrics_overhead_ratio` and `tracing_overhead_ratio` are their p50 / the insecure p50.
 *
 * Usage: npm run bench:setup [-- --connections 200] [--smoke]. Root. The last line is JSON.
 * --smoke: 3 connections (seconds; what scripts/bench-smoke.sh runs so the benchmark cannot rot).
 */
import { type ChildProcess, execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Connection } from "../src/api/index.js";
import { createTracing, parseOtlpEndpoint, type Tracing } from "../src/observe/trace.js";
import { CallContext } from "../src/sdk/core/context.js";
import { silentLogger } from "../src/sdk/core/logger.js";
import { setChainTracer } from "../src/sdk/core/tracing.js";
import type { createClient } from "../src/sdk/networkservice/chains/client/index.js";
import { createSecurity, workloadSpiffeId } from "../src/security/index.js";
import { type Collector, startJaeger, startOtlpSink } from "../test/helpers/jaeger.js";
import { missingPeers } from "../test/helpers/peers.js";
import {
  type BenchIdentityProvider,
  benchIdentityProvider,
  countOption,
  netnsHolder,
  pct,
  r3,
  rssMiB,
  startRole,
  timedKernelRequest,
  waitAccepting,
  warmUp,
} from "./common.js";
import { cniPtp, netlinkFloor } from "./floors.js";

if (process.argv.includes("--remote")) {
  // Remote next to local (insecure, processes on two nodes): a separate script.
  await import("./setup-remote.js");
  process.exit(0);
}
const { values } = parseArgs({
  options: { connections: { type: "string", default: "200" }, smoke: { type: "boolean", default: false } },
});
const N = countOption(values.connections, "connections", values.smoke, 3);
const tag = randomBytes(3).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "nsm-bench-setup-"));
const netns: string[] = [];
const procs: ChildProcess[] = [];

const addNetns = (name: string) => {
  execFileSync("ip", ["netns", "add", name]);
  netns.push(name);
  return name;
};
const progress = (what: string, i: number) => process.stderr.write(`  ${what}: ${i}/${N}\r`);

const start = (ns: string | undefined, name: string, role: string[], env: Record<string, string>) =>
  startRole(procs, ns, name, role, env);
const holder = (netns: string) => netnsHolder(procs, netns);

/** The identity provider of the secure run, started as one of the mesh's processes. */
function identityProvider(run: string, spawned: (p: ChildProcess) => ChildProcess): Promise<BenchIdentityProvider> {
  return benchIdentityProvider(dir, `${run}-`, (env) =>
    spawned(start(undefined, "identity-provider", ["identity-provider"], env)),
  );
}

interface Mesh {
  /** One client Request into a fresh netns; resolves with its duration in ms. */
  request(i: number): Promise<number>;
  /** RSS of nsmgr and forwarder now. */
  rss(): { nsmgr: number; forwarder: number };
  /** Closes every connection, stops the processes. */
  close(): Promise<void>;
}

/** One of the meshes of the run: its letter in names, whether it is secure, extra env of every role. */
interface MeshKind {
  readonly run: string;
  readonly secure: boolean;
  readonly env: Readonly<Record<string, string>>;
  /** The client's tracing in this process, installed around each of this mesh's Requests. */
  readonly tracing?: Tracing;
}

/**
 * The kernel2kernel setup through real processes. `secure`: every hop mTLS with SVIDs from the
 * identity provider, path tokens, the default policies, and the forwarder's netns ownership
 * check; otherwise all of that off (NSM_INSECURE=true). Clients name their netns by the pid of a
 * process inside it in both runs.
 */
async function mesh(kind: MeshKind): Promise<Mesh> {
  const { run, secure } = kind;
  const own: ChildProcess[] = [];
  const spawned = <T extends ChildProcess>(p: T): T => {
    own.push(p);
    return p;
  };
  const node = addNetns(`nsmb-${tag}-${run}node`);
  const nsePod = addNetns(`nsmb-${tag}-${run}nse`);
  const idp = secure ? await identityProvider(run, spawned) : undefined;
  const base: Record<string, string> = { ...(idp ? idp.env : { NSM_INSECURE: "true" }), ...kind.env };
  const sec = await createSecurity({ socket: idp?.env.SPIFFE_ENDPOINT_SOCKET, insecure: !secure });
  const dial = sec.dialOptions();
  const reg = `unix://${dir}/${run}-registry.sock`;
  const nsm = `unix://${dir}/${run}-nsm.sock`;
  // The registry is in the root netns: its metrics only on loopback.
  const regEnv = { ...base, NSM_LISTEN_ON: reg, NSM_PROMETHEUS_LISTEN_ON: "127.0.0.1:0" };
  const registry = spawned(start(undefined, "registry", ["registry"], regEnv));
  idp?.list(registry.pid!, "registry");
  await waitAccepting(reg, dial);
  const nsmgr = spawned(
    start(node, "nsmgr", ["nsmgr"], { ...base, NSM_NAME: "nsmgr-1", NSM_LISTEN_ON: nsm, NSM_REGISTRY_URL: reg }),
  );
  idp?.list(nsmgr.pid!, "nsmgr-1");
  await waitAccepting(nsm, dial);
  const fwd = spawned(
    start(node, "forwarder", ["forwarder"], {
      ...base,
      NSM_NAME: "forwarder-1",
      NSM_LISTEN_ON: `unix://${dir}/${run}-fwd.sock`,
      NSM_CONNECT_TO: nsm,
    }),
  );
  idp?.list(fwd.pid!, "forwarder-1");
  const nse = spawned(
    start(nsePod, "nse", ["nse", "icmp-responder"], {
      ...base,
      NSM_NAME: "nse-kernel",
      NSM_CONNECT_TO: nsm,
      NSM_SERVICE_NAMES: "kernel2kernel",
      NSM_CIDR_PREFIX: "10.60.0.0/16",
    }),
  );
  idp?.list(nse.pid!, workloadSpiffeId("bench.nsm", "bench", "nse-kernel"));
  const clients = Array.from({ length: N + 1 }, (_, i) => spawned(holder(addNetns(`nsmb-${tag}-${run}c${i}`))).pid!);
  const conns: { client: ReturnType<typeof createClient>; conn: Connection }[] = [];
  const authorize = sec.clientAuthorize();
  const request = async (i: number) => {
    setChainTracer(kind.tracing?.tracer);
    try {
      const t = await timedKernelRequest(i, clients[i]!, { connectTo: nsm, ...dial, authorize });
      conns.push(t);
      return t.ms;
    } finally {
      setChainTracer(undefined);
    }
  };
  await warmUp(() => request(N));
  return {
    request,
    rss: () => ({ nsmgr: rssMiB(nsmgr.pid!), forwarder: rssMiB(fwd.pid!) }),
    async close() {
      await closeAll(conns, run);
      sec.close();
      await stopMesh(own, secure);
    },
  };
}

async function closeAll(conns: { client: ReturnType<typeof createClient>; conn: Connection }[], run: string) {
  const what = `${run} mesh`;
  for (const [i, c] of conns.entries()) {
    await c.client.close(c.conn, CallContext.create({ deadline: Date.now() + 15_000 }));
    if (i % 20 === 0) progress(`${what} closes`, i);
  }
}

/** Ends the mesh's processes; the identity provider (first, when there is one) goes last: the others hold its streams. */
async function stopMesh(own: ChildProcess[], secure: boolean): Promise<void> {
  const [first, ...rest] = own;
  for (const p of secure ? rest : own) if (p.exitCode === null) p.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 300));
  if (secure && first?.exitCode === null) first.kill("SIGTERM");
}

/** Where the tracing mesh sends its spans (see the module doc). */
async function traceCollector(): Promise<{ collector: Collector; name: string; check(): Promise<string> }> {
  if (missingPeers("jaeger") === undefined) {
    const jaeger = await startJaeger(dir);
    const check = async () => {
      const services = ((await (await fetch(`${jaeger.queryUrl}/api/services`)).json()) as { data: string[] }).data;
      if (!services?.includes("nsmgr-1")) throw new Error(`Jaeger has no nsmgr-1 spans: ${services}`);
      return `${services.length} services`;
    };
    return { collector: jaeger, name: "jaeger", check };
  }
  const sink = await startOtlpSink(dir);
  const check = async () => {
    if (sink.received() === 0) throw new Error("the OTLP receiver got no spans");
    return `${sink.received()} bytes`;
  };
  return { collector: sink, name: "otlp-sink", check };
}

type Times = Record<"insecure" | "secure" | "metrics" | "tracing", number[]>;

/**
 * All meshes at once, requests interleaved (insecure, secure, metrics, tracing; each round starting
 * with the next one), so that whatever else the machine does slows all alike and the ratios are
 * the cost of what differs.
 */
async function ours(): Promise<{ times: Times; rss: Record<string, number>; collector: string }> {
  const traces = await traceCollector();
  const clientTracing = createTracing({
    serviceName: "bench-client",
    target: parseOtlpEndpoint(traces.collector.endpoint),
    log: silentLogger,
  });
  const telemetry = { TELEMETRY: "true", NSM_OPEN_TELEMETRY_ENDPOINT: traces.collector.endpoint };
  const meshes = {
    insecure: await mesh({ run: "i", secure: false, env: {} }),
    secure: await mesh({ run: "s", secure: true, env: {} }),
    metrics: await mesh({ run: "m", secure: false, env: { NSM_PROMETHEUS: "true", NSM_PROMETHEUS_LISTEN_ON: ":0" } }),
    tracing: await mesh({ run: "t", secure: false, env: telemetry, tracing: clientTracing }),
  };
  const times: Times = { insecure: [], secure: [], metrics: [], tracing: [] };
  try {
    for (let i = 0; i < N; i++) {
      const order = Object.entries(meshes);
      // Each round starts with another mesh, so that none always goes first after a pause.
      for (const [k, m] of [...order.slice(i % 4), ...order.slice(0, i % 4)]) {
        times[k as keyof Times].push(await m.request(i));
      }
      if (i % 20 === 0) progress("requests (insecure, secure, metrics, tracing)", i);
    }
    const a = meshes.insecure.rss();
    const b = meshes.secure.rss();
    await clientTracing.flush();
    await new Promise((r) => setTimeout(r, 2500)); // the roles export every second
    const collector = `${traces.name} (${await traces.check()})`;
    const rss = { nsmgr: a.nsmgr, forwarder: a.forwarder, secureNsmgr: b.nsmgr, secureForwarder: b.forwarder };
    return { times, rss, collector };
  } finally {
    for (const m of Object.values(meshes)) await m.close();
    await clientTracing.shutdown();
    await traces.collector.stop();
  }
}

/** The netlink floor (bench/floors.ts): N connections, each into a netns of its own. */
async function floor(): Promise<number[]> {
  const f = netlinkFloor(addNetns(`nsmb-${tag}-fnse`), "nsm-1");
  const times: number[] = [];
  try {
    for (let i = 0; i < N; i++) {
      times.push(await f.request(i, addNetns(`nsmb-${tag}-f${i}`)));
      if (i % 20 === 0) progress("floor", i);
    }
  } finally {
    await f.stop();
  }
  return times;
}

/** Debian's CNI ptp plugin (bench/floors.ts): N ADDs, each into a netns of its own. */
function cniPtpAdds(): number[] {
  const cni = cniPtp(addNetns(`nsmb-${tag}-host`), join(dir, "cni-ipam"), tag);
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    times.push(cni.run("ADD", i, addNetns(`nsmb-${tag}-p${i}`)));
    if (i % 20 === 0) progress("cni ptp", i);
  }
  return times;
}

function cleanup(): void {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  for (const n of netns.splice(0)) spawnSync("ip", ["netns", "del", n], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
}
process.on("exit", cleanup);

try {
  const cni = cniPtpAdds();
  const fl = await floor();
  const { times: o, rss, collector } = await ours();
  const result = {
    connections: N,
    p50_ms: r3(pct(o.insecure, 50)),
    p95_ms: r3(pct(o.insecure, 95)),
    secure_p50_ms: r3(pct(o.secure, 50)),
    secure_p95_ms: r3(pct(o.secure, 95)),
    security_overhead_ratio: r3(pct(o.secure, 50) / pct(o.insecure, 50)),
    metrics_p50_ms: r3(pct(o.metrics, 50)),
    tracing_p50_ms: r3(pct(o.tracing, 50)),
    metrics_overhead_ratio: r3(pct(o.metrics, 50) / pct(o.insecure, 50)),
    tracing_overhead_ratio: r3(pct(o.tracing, 50) / pct(o.insecure, 50)),
    tracing_collector: collector,
    floor_p50_ms: r3(pct(fl, 50)),
    floor_p95_ms: r3(pct(fl, 95)),
    cni_ptp_p50_ms: r3(pct(cni, 50)),
    cni_ptp_p95_ms: r3(pct(cni, 95)),
    ratio_vs_floor: r3(pct(o.insecure, 50) / pct(fl, 50)),
    ratio_vs_cni: r3(pct(o.insecure, 50) / pct(cni, 50)),
    nsmgr_rss_mib: rss.nsmgr,
    forwarder_rss_mib: rss.forwarder,
    secure_nsmgr_rss_mib: rss.secureNsmgr,
    secure_forwarder_rss_mib: rss.secureForwarder,
  };
  console.log(`kernel2kernel setup on one node, ${N} connections (client Request → interfaces configured):`);
  console.log(
    `  nsm      p50 ${result.p50_ms} ms  p95 ${result.p95_ms} ms  (NSM_INSECURE=true: no mTLS, tokens or policies)`,
  );
  console.log(
    `  secure   p50 ${result.secure_p50_ms} ms  p95 ${result.secure_p95_ms} ms  (mTLS, path tokens, policies, netns ownership)`,
  );
  console.log(
    `  floor    p50 ${result.floor_p50_ms} ms  p95 ${result.floor_p95_ms} ms  (same netlink work, no control plane)`,
  );
  console.log(
    `  cni ptp  p50 ${result.cni_ptp_p50_ms} ms  p95 ${result.cni_ptp_p95_ms} ms  (Debian containernetworking-plugins)`,
  );
  console.log(
    `  ratios: vs floor ${result.ratio_vs_floor}×, vs CNI ptp ${result.ratio_vs_cni}×, security overhead ${result.security_overhead_ratio}× (secure / insecure p50)`,
  );
  console.log(
    `  metrics  p50 ${result.metrics_p50_ms} ms (${result.metrics_overhead_ratio}×), tracing p50 ${result.tracing_p50_ms} ms (${result.tracing_overhead_ratio}×, spans to ${collector})`,
  );
  console.log(
    `  RSS with ${N} live connections: nsmgr ${result.nsmgr_rss_mib} MiB, forwarder ${result.forwarder_rss_mib} MiB (secure: ${result.secure_nsmgr_rss_mib}, ${result.secure_forwarder_rss_mib})`,
  );
  console.log(JSON.stringify(result));
} finally {
  cleanup();
  await new Promise((r) => setTimeout(r, 300));
}
