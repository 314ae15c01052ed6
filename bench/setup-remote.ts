// SPDX-License-Identifier: Apache-2.0
/**
 * Remote next to local kernel2kernel setup (`npm run bench:setup -- --remote`; bench/setup.ts,
 * which measures the floor, the CNI peer and the cost of security, hands --remote runs here).
 * Real processes (insecure): registry, and per node netns an nsmgr (unix socket and
 * tcp://198.18.0.<i>:5001 on a veth underlay) and a forwarder with NSM_TUNNEL_IP; the endpoint on
 * node 2 (remote) or node 1 (local); the client chain in this process, one fresh client netns per
 * connection. Remote connections have 6 path segments and a VXLAN device born in each pod netns.
 *
 * Usage: npm run bench:setup -- --remote [--connections 200] [--smoke] (bench/setup.ts hands
 * --remote runs here). Root. The last line is JSON. --smoke: 3 connections.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Connection } from "../src/api/index.js";
import { NSM_NODE_FLAGS } from "../src/local/pods.js";
import { CallContext } from "../src/sdk/core/context.js";
import type { createClient } from "../src/sdk/networkservice/chains/client/index.js";
import { countOption, pct, r3, rssMiB, timedKernelRequest, waitAccepting, warmUp } from "./common.js";

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "200" },
    remote: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
  },
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

function start(ns: string | undefined, name: string, role: string[], env: Record<string, string>): ChildProcess {
  const cmd = ["node", ...NSM_NODE_FLAGS, "bin/nsm.js", ...role];
  const argv = ns ? ["ip", ["netns", "exec", ns, ...cmd]] : [cmd[0]!, cmd.slice(1)];
  const p = spawn(argv[0] as string, argv[1] as string[], {
    // Security costs are measured by bench/setup.ts; this run compares remote with local.
    env: { ...process.env, NSM_LOG_LEVEL: "WARN", NSM_INSECURE: "true", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  p.on("exit", (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`bench: ${name} exited with ${code}\n`);
  });
  procs.push(p);
  return p;
}

/** A node: netns, nsmgr (unix socket, plus tcp on the underlay address when remote) and forwarder. */
async function startNode(
  p: string,
  i: number,
  reg: string,
  underlay?: string,
): Promise<{ netns: string; nsm: string; nsmgr: ChildProcess; fwd: ChildProcess }> {
  const netns = `nsmb-${tag}-${p}node${i}`;
  const nsm = `unix://${dir}/${p}nsm${i}.sock`;
  const nsmgr = start(netns, `${p}nsmgr-${i}`, ["nsmgr"], {
    NSM_NAME: `nsmgr-${i}`,
    NSM_LISTEN_ON: underlay ? `${nsm},tcp://${underlay}:5001` : nsm,
    NSM_REGISTRY_URL: reg,
  });
  await waitAccepting(nsm);
  const fwd = start(netns, `${p}forwarder-${i}`, ["forwarder"], {
    NSM_NAME: `forwarder-${i}`,
    NSM_LISTEN_ON: `unix://${dir}/${p}fwd${i}.sock`,
    NSM_CONNECT_TO: nsm,
    ...(underlay ? { NSM_TUNNEL_IP: underlay } : {}),
  });
  return { netns, nsm, nsmgr, fwd };
}

async function stopPhase(phase: ChildProcess[]): Promise<void> {
  await Promise.all(
    phase.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once("exit", () => resolve());
          p.kill("SIGTERM");
        }),
    ),
  );
}

type StartedNode = Awaited<ReturnType<typeof startNode>>;

/** Two nodes whose netns are joined by a veth (the underlay, 198.18.0.0/24). */
async function startTwoNodes(p: string, reg: string): Promise<[StartedNode, StartedNode]> {
  const a = addNetns(`nsmb-${tag}-rnode1`);
  const b = addNetns(`nsmb-${tag}-rnode2`);
  execFileSync("ip", ["-n", a, "link", "add", "u0", "type", "veth", "peer", "name", "u1", "netns", b]);
  for (const [ns, dev, ip] of [
    [a, "u0", "198.18.0.1/24"],
    [b, "u1", "198.18.0.2/24"],
  ] as const) {
    execFileSync("ip", ["-n", ns, "addr", "add", ip, "dev", dev]);
    execFileSync("ip", ["-n", ns, "link", "set", dev, "up"]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }
  return Promise.all([startNode(p, 1, reg, "198.18.0.1"), startNode(p, 2, reg, "198.18.0.2")]);
}

/** One node, client and endpoint side alike. */
async function startOneNode(p: string, reg: string): Promise<[StartedNode, StartedNode]> {
  addNetns(`nsmb-${tag}-node1`);
  const n = await startNode(p, 1, reg);
  return [n, n];
}

/**
 * Setup of N connections through real processes: local (client, nsmgr, forwarder and endpoint on
 * one node) or remote (client on node 1, endpoint on node 2).
 */
async function ours(remote: boolean): Promise<{ times: number[]; nsmgrRss: number; forwarderRss: number }> {
  const p = remote ? "r" : "";
  const first = procs.length;
  const reg = `unix://${dir}/${p}registry.sock`;
  const nsePod = addNetns(`nsmb-${tag}-${p}nse`);
  start(undefined, `${p}registry`, ["registry"], { NSM_LISTEN_ON: reg });
  await waitAccepting(reg);
  const [n1, n2] = remote ? await startTwoNodes(p, reg) : await startOneNode(p, reg);
  start(nsePod, `${p}nse`, ["nse", "icmp-responder"], {
    NSM_NAME: "nse-kernel",
    NSM_CONNECT_TO: n2.nsm,
    NSM_SERVICE_NAMES: "kernel2kernel",
    NSM_CIDR_PREFIX: "10.60.0.0/16",
  });
  const nsm = n1.nsm;
  const { nsmgr, fwd } = n1;
  // A process in each client netns: its pid names the netns, as an NSC's does.
  const clients = Array.from({ length: N + 1 }, (_, i) => {
    const holder = spawn("ip", ["netns", "exec", addNetns(`nsmb-${tag}-${p}c${i}`), "sleep", "infinity"], {
      stdio: "ignore",
    });
    procs.push(holder);
    return holder.pid!;
  });
  const conns: { client: ReturnType<typeof createClient>; conn: Connection }[] = [];
  const times: number[] = [];
  const request = async (i: number) => {
    const t = await timedKernelRequest(i, clients[i]!, { connectTo: nsm });
    conns.push(t);
    return t.ms;
  };
  await warmUp(() => request(N));
  const warm = conns[0]!.conn;
  const segments = warm.path?.pathSegments.length ?? 0;
  if (segments !== (remote ? 6 : 4)) throw new Error(`a ${p ? "remote" : "local"} path of ${segments} segments`);
  for (let i = 0; i < N; i++) {
    times.push(await request(i));
    if (i % 20 === 0) progress(`nsm ${remote ? "remote " : ""}requests`, i);
  }
  const nsmgrRss = rssMiB(nsmgr.pid!);
  const forwarderRss = rssMiB(fwd.pid!);
  await closeAll(conns);
  await stopPhase(procs.slice(first));
  return { times, nsmgrRss, forwarderRss };
}

async function closeAll(conns: { client: ReturnType<typeof createClient>; conn: Connection }[]): Promise<void> {
  for (const [i, c] of conns.entries()) {
    await c.client.close(c.conn, CallContext.create({ deadline: Date.now() + 15_000 }));
    if (i % 20 === 0) progress("closes", i);
  }
}

function cleanup(): void {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  for (const n of netns.splice(0)) spawnSync("ip", ["netns", "del", n], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
}
process.on("exit", cleanup);

try {
  // The floor and the CNI peer are measured by bench/setup.ts; this run puts remote next to local.
  const local = await ours(false);
  const remote = await ours(true);
  const result = {
    connections: N,
    p50_ms: r3(pct(local.times, 50)),
    p95_ms: r3(pct(local.times, 95)),
    remote_p50_ms: r3(pct(remote.times, 50)),
    remote_p95_ms: r3(pct(remote.times, 95)),
    ratio_remote_vs_local: r3(pct(remote.times, 50) / pct(local.times, 50)),
    nsmgr_rss_mib: local.nsmgrRss,
    forwarder_rss_mib: local.forwarderRss,
    remote_nsmgr_rss_mib: remote.nsmgrRss,
    remote_forwarder_rss_mib: remote.forwarderRss,
  };
  console.log(`kernel2kernel setup, ${N} connections (client Request → interfaces configured), insecure:`);
  console.log(`  local    p50 ${result.p50_ms} ms  p95 ${result.p95_ms} ms  (client and endpoint on one node: veth)`);
  console.log(
    `  remote   p50 ${result.remote_p50_ms} ms  p95 ${result.remote_p95_ms} ms  (two nodes: VXLAN, 6 path segments)`,
  );
  console.log(`  remote vs local: ${result.ratio_remote_vs_local}×`);
  console.log(JSON.stringify(result));
} finally {
  cleanup();
  await new Promise((r) => setTimeout(r, 300));
}
