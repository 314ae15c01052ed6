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
 *
 * With --remote, also remote setup: the same Requests from a client on node 1 to the endpoint on
 * node 2 (two node netns joined by a veth underlay 198.18.0.1/24 ↔ 198.18.0.2/24, nsmgrs on their
 * unix socket and tcp://198.18.0.<i>:5001, forwarders with NSM_TUNNEL_IP): 6 path segments, a
 * VXLAN device made in each node and moved into the client's and the endpoint's netns. Reported
 * next to the local figure (remote_* fields and ratio_remote_vs_local).
 *
 * Usage: npm run bench:setup -- --remote [--connections 200] (bench/setup.ts hands --remote runs
 * here). Root. The last line is JSON.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  Cls,
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  create,
  IPContextSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  RouteSchema,
} from "../src/api/index.js";
import { createNetlinkKernel } from "../src/kernel/index.js";
import { kernelXconnectClient, kernelXconnectServer } from "../src/kernel/networkservice/index.js";
import { bind, chain, type NetworkServiceElement, passThrough } from "../src/sdk/core/chain.js";
import { CallContext } from "../src/sdk/core/context.js";
import { createClient } from "../src/sdk/networkservice/chains/client/index.js";
import { connectServer } from "../src/sdk/networkservice/common/connect/index.js";
import { kernelMechanismClient } from "../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient, mechanismsServer } from "../src/sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../src/sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../src/sdk/networkservice/common/metadata/index.js";
import { closeChannel, dialChannel, waitForReady } from "../src/sdk/tools/grpcurl.js";

const { values } = parseArgs({
  options: { connections: { type: "string", default: "200" }, remote: { type: "boolean", default: false } },
});
const N = Number(values.connections);
const tag = randomBytes(3).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "nsm-bench-setup-"));
const netns: string[] = [];
const procs: ChildProcess[] = [];

const addNetns = (name: string) => {
  execFileSync("ip", ["netns", "add", name]);
  netns.push(name);
  return name;
};
const nsPath = (n: string) => `/var/run/netns/${n}`;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const progress = (what: string, i: number) => process.stderr.write(`  ${what}: ${i}/${N}\r`);

function start(ns: string | undefined, name: string, role: string[], env: Record<string, string>): ChildProcess {
  const cmd = ["node", "bin/nsm.js", ...role];
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

async function ready(url: string): Promise<void> {
  const ch = dialChannel(url);
  try {
    await waitForReady(ch, 15_000);
  } finally {
    closeChannel(ch);
  }
}

function rssMiB(pid: number): number {
  // `ip netns exec` execs the command, so the PID is node's own.
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : Number.NaN;
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
  await ready(nsm);
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

/**
 * Setup of N connections through real processes: local (client, nsmgr, forwarder and endpoint on
 * one node) or remote (client on node 1, endpoint on node 2).
 */
async function ours(remote: boolean): Promise<{ times: number[]; nsmgrRss: number; forwarderRss: number }> {
  const p = remote ? "r" : "";
  const first = procs.length;
  const reg = `unix://${dir}/${p}registry.sock`;
  let n1: Awaited<ReturnType<typeof startNode>>;
  let n2: Awaited<ReturnType<typeof startNode>>;
  const nsePod = addNetns(`nsmb-${tag}-${p}nse`);
  start(undefined, `${p}registry`, ["registry"], { NSM_LISTEN_ON: reg });
  await ready(reg);
  if (remote) {
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
    [n1, n2] = await Promise.all([startNode(p, 1, reg, "198.18.0.1"), startNode(p, 2, reg, "198.18.0.2")]);
  } else {
    addNetns(`nsmb-${tag}-node1`);
    n1 = n2 = await startNode(p, 1, reg);
  }
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
    const client = createClient({
      name: `nsc-${i}`,
      connectTo: nsm,
      additional: [
        mechanismsClient({
          KERNEL: kernelMechanismClient({ inodeUrl: `file:///proc/${clients[i]}/ns/net`, interfaceName: "nsm-1" }),
        }),
      ],
    });
    const req = create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: `nsc-${i}-0`, networkService: "kernel2kernel" }),
    });
    const t0 = performance.now();
    const conn = await client.request(req, CallContext.create({ deadline: Date.now() + 15_000 }));
    const dt = performance.now() - t0;
    conns.push({ client, conn });
    return dt;
  };
  // Warm-up (also waits for the endpoint and forwarder to register).
  for (let tries = 0; ; tries++) {
    try {
      await request(N);
      break;
    } catch (err) {
      if (tries > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const warm = conns[0]!.conn;
  const segments = warm.path?.pathSegments.length ?? 0;
  if (segments !== (remote ? 6 : 4)) throw new Error(`a ${p ? "remote" : "local"} path of ${segments} segments`);
  for (let i = 0; i < N; i++) {
    times.push(await request(i));
    if (i % 20 === 0) progress(`nsm ${remote ? "remote " : ""}requests`, i);
  }
  const nsmgrRss = rssMiB(nsmgr.pid!);
  const forwarderRss = rssMiB(fwd.pid!);
  for (const [i, c] of conns.entries()) {
    await c.client.close(c.conn, CallContext.create({ deadline: Date.now() + 15_000 }));
    if (i % 20 === 0) progress("closes", i);
  }
  await stopPhase(procs.slice(first));
  return { times, nsmgrRss, forwarderRss };
}

async function floor(): Promise<number[]> {
  const nse = addNetns(`nsmb-${tag}-fnse`);
  const clients = Array.from({ length: N }, (_, i) => addNetns(`nsmb-${tag}-f${i}`));
  const kernel = createNetlinkKernel();
  const endpoint: NetworkServiceElement = {
    name: "endpoint",
    request: async (req) => {
      const c = req.connection!;
      c.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
        name: `e${c.id}`.slice(0, 15),
        inodeURL: `file://${nsPath(nse)}`,
      });
      return c;
    },
    close: async () => {},
  };
  const h = bind(
    chain(
      metadataServer(),
      mechanismsServer({ KERNEL: passThrough("kernel") }),
      kernelXconnectServer({ kernel }),
      connectServer(chain(metadataClient(), mechanismTranslationClient(), kernelXconnectClient(), endpoint)),
    ),
  );
  const times: number[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const a = 1 + 2 * i;
      const ctx = create(ConnectionContextSchema, {
        ipContext: create(IPContextSchema, {
          srcIpAddrs: [`10.61.${a >> 8}.${a & 255}/32`],
          dstIpAddrs: [`10.61.${(a - 1) >> 8}.${(a - 1) & 255}/32`],
          srcRoutes: [create(RouteSchema, { prefix: `10.61.${(a - 1) >> 8}.${(a - 1) & 255}/32` })],
          dstRoutes: [create(RouteSchema, { prefix: `10.61.${a >> 8}.${a & 255}/32` })],
        }),
      });
      const req = create(NetworkServiceRequestSchema, {
        connection: create(ConnectionSchema, {
          id: `f${i}`,
          networkService: "floor",
          mechanism: newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
            name: "nsm-1",
            inodeURL: `file://${nsPath(clients[i]!)}`,
          }),
          context: ctx,
        }),
      });
      const t0 = performance.now();
      await h.request(req, CallContext.create());
      times.push(performance.now() - t0);
      if (i % 20 === 0) progress("floor", i);
    }
  } finally {
    await kernel.close();
  }
  return times;
}

function cniPtp(): number[] {
  const host = addNetns(`nsmb-${tag}-host`);
  const clients = Array.from({ length: N }, (_, i) => addNetns(`nsmb-${tag}-p${i}`));
  const conf = JSON.stringify({
    cniVersion: "1.0.0",
    name: `bench-${tag}`,
    type: "ptp",
    ipMasq: false,
    ipam: { type: "host-local", subnet: "10.62.0.0/16", dataDir: join(dir, "cni-ipam") },
  });
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = spawnSync("ip", ["netns", "exec", host, "/usr/lib/cni/ptp"], {
      input: conf,
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: `bench-${tag}-${i}`,
        CNI_NETNS: nsPath(clients[i]!),
        CNI_IFNAME: "eth0",
        CNI_PATH: "/usr/lib/cni",
      },
      encoding: "utf8",
    });
    const dt = performance.now() - t0;
    if (r.status !== 0) throw new Error(`ptp ADD failed: ${r.stdout}${r.stderr}`);
    times.push(dt);
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
  const cni = cniPtp();
  const fl = await floor();
  const o = await ours(false);
  const remote = values.remote ? await ours(true) : undefined;
  const result = {
    connections: N,
    p50_ms: r3(pct(o.times, 50)),
    p95_ms: r3(pct(o.times, 95)),
    floor_p50_ms: r3(pct(fl, 50)),
    floor_p95_ms: r3(pct(fl, 95)),
    cni_ptp_p50_ms: r3(pct(cni, 50)),
    cni_ptp_p95_ms: r3(pct(cni, 95)),
    ratio_vs_floor: r3(pct(o.times, 50) / pct(fl, 50)),
    ratio_vs_cni: r3(pct(o.times, 50) / pct(cni, 50)),
    nsmgr_rss_mib: o.nsmgrRss,
    forwarder_rss_mib: o.forwarderRss,
    ...(remote
      ? {
          remote_p50_ms: r3(pct(remote.times, 50)),
          remote_p95_ms: r3(pct(remote.times, 95)),
          ratio_remote_vs_local: r3(pct(remote.times, 50) / pct(o.times, 50)),
          remote_nsmgr_rss_mib: remote.nsmgrRss,
          remote_forwarder_rss_mib: remote.forwarderRss,
        }
      : {}),
  };
  console.log(`kernel2kernel setup on one node, ${N} connections (client Request → interfaces configured):`);
  console.log(`  nsm      p50 ${result.p50_ms} ms  p95 ${result.p95_ms} ms`);
  console.log(
    `  floor    p50 ${result.floor_p50_ms} ms  p95 ${result.floor_p95_ms} ms  (same netlink work, no control plane)`,
  );
  console.log(
    `  cni ptp  p50 ${result.cni_ptp_p50_ms} ms  p95 ${result.cni_ptp_p95_ms} ms  (Debian containernetworking-plugins)`,
  );
  if (result.remote_p50_ms !== undefined) {
    console.log(
      `  remote   p50 ${result.remote_p50_ms} ms  p95 ${result.remote_p95_ms} ms  (client and endpoint on two nodes: VXLAN, 6 path segments)`,
    );
  }
  console.log(`  ratios: vs floor ${result.ratio_vs_floor}×, vs CNI ptp ${result.ratio_vs_cni}×`);
  if (result.ratio_remote_vs_local !== undefined) console.log(`  remote vs local: ${result.ratio_remote_vs_local}×`);
  console.log(
    `  RSS with ${N} live connections: nsmgr ${result.nsmgr_rss_mib} MiB, forwarder ${result.forwarder_rss_mib} MiB`,
  );
  console.log(JSON.stringify(result));
} finally {
  cleanup();
  await new Promise((r) => setTimeout(r, 300));
}
