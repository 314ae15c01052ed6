// SPDX-License-Identifier: Apache-2.0
/**
 * Throughput of the connections NSM builds, next to the same data path built by hand, in one run:
 * iperf3 TCP from the client pod to the endpoint pod through
 * - a kernel2kernel connection (veth pair) ↔ a veth pair between two fresh namespaces;
 * - a kernel2ethernet2kernel connection (VXLAN across nodes) ↔ a VXLAN device per node made in
 *   the node netns (same underlay, UDP port, MTU and flags) and moved into a fresh namespace;
 * - a kernel2ip2kernel connection (WireGuard through wireguard-go) ↔ a wireguard-go per node
 *   started in the node netns, configured with `wg`, its TUN moved into a fresh namespace.
 *
 * The NSM connections are made by the local runtime, as a user would: `nsm up --nodes 2` (in a
 * temporary state directory) and `nsm apply -f examples/…`. The hand-made pairs hang off the same
 * two node namespaces. Nothing touches the root namespace; everything is removed at the end
 * (wireguard-go stopped by PID, namespaces deleted, `nsm down`).
 *
 * Usage: npm run bench:throughput [-- --seconds 5] [--repeat 3]. Root, iperf3, wireguard-go and
 * wg. With --repeat N each pair is measured N times, in alternating order, and the medians count.
 * The last line is JSON; a ratio is NSM ÷ hand-made (1 = no cost). --smoke: 1 s, once each
 * (what scripts/bench-smoke.sh runs so the benchmark cannot rot).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const REPO = join(import.meta.dirname, "..");
const NSM = join(REPO, "bin", "nsm.js");

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    repeat: { type: "string", default: "3" },
    smoke: { type: "boolean", default: false },
  },
});
const SECONDS = values.smoke ? 1 : Number(values.seconds);
const REPEAT = values.smoke ? 1 : Number(values.repeat);
if (!Number.isInteger(SECONDS) || SECONDS < 1) throw new Error("--seconds must be a positive integer");
if (!Number.isInteger(REPEAT) || REPEAT < 1) throw new Error("--repeat must be a positive integer");

const tag = randomBytes(3).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "nsm-bench-tp-"));
const stateDir = join(dir, "state");
const ownNetns: string[] = [];
const ownProcs: ChildProcess[] = [];
let runtimeUp = false;

const sh = (...argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
const inNs = (netns: string, ...argv: string[]) => sh("ip", "netns", "exec", netns, ...argv);
const say = (line: string) => process.stderr.write(`${line}\n`);
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

function nsm(...args: string[]): string {
  const r = spawnSync(process.execPath, [NSM, ...args], {
    // The runtime's own log level (a sidecar is ready when it logs its connection at INFO).
    env: { ...process.env, NSM_LOCAL_STATE_DIR: stateDir, NSM_LOG_LEVEL: "" },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`nsm ${args.join(" ")} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function addNetns(role: string): string {
  const name = `nsmtp-${tag}-${role}`;
  sh("ip", "netns", "add", name);
  ownNetns.push(name);
  sh("ip", "-n", name, "link", "set", "lo", "up");
  return name;
}

/** iperf3 TCP from `client` to `server`'s `addr`, in Gbit/s (received). */
function iperf(server: string, client: string, addr: string): number {
  const srv = spawn("ip", ["netns", "exec", server, "iperf3", "-s", "-1", "-B", addr], { stdio: "ignore" });
  ownProcs.push(srv);
  try {
    for (let attempt = 0; ; attempt++) {
      const r = spawnSync(
        "ip",
        ["netns", "exec", client, "iperf3", "-c", addr, "-t", String(SECONDS), "-J", "--connect-timeout", "2000"],
        { encoding: "utf8" },
      );
      let result: { end?: { sum_received?: { bits_per_second: number } }; error?: string } | undefined;
      try {
        result = JSON.parse(r.stdout);
      } catch {
        result = undefined;
      }
      const bps = result?.end?.sum_received?.bits_per_second;
      if (bps) return bps / 1e9;
      // The server may not be listening yet.
      if (attempt >= 20) throw new Error(`iperf3 ${client} → ${addr}: ${result?.error ?? r.stderr}`);
      spawnSync("sleep", ["0.1"]);
    }
  } finally {
    if (srv.exitCode === null) srv.kill("SIGTERM");
  }
}

function ping(netns: string, addr: string): void {
  const r = spawnSync("ip", ["netns", "exec", netns, "ping", "-c", "2", "-i", "0.2", "-W", "2", addr], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`no ping ${addr} from ${netns}: ${r.stdout}${r.stderr}`);
}

interface PodInfo {
  namespace: string;
  name: string;
  netns: string;
  node: string;
}

/** The client (alpine) and endpoint pods of an example, from the runtime's state. */
function examplePods(namespace: string): { client: PodInfo; nse: PodInfo } {
  const state = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as { pods: PodInfo[] };
  const pods = state.pods.filter((p) => p.namespace === namespace);
  const client = pods.find((p) => p.name === "alpine");
  const nse = pods.find((p) => p.name.startsWith("nse-kernel-"));
  if (!client || !nse) throw new Error(`pods of ${namespace} not found`);
  return { client, nse };
}

function nodeNetns(): Record<string, string> {
  const state = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as {
    nodes: { name: string; netns: string }[];
  };
  return Object.fromEntries(state.nodes.map((n) => [n.name, n.netns]));
}

function linkOf(netns: string, dev: string): { mtu: number; vni?: number; kind?: string } {
  const [l] = JSON.parse(sh("ip", "-n", netns, "-d", "-j", "link", "show", "dev", dev));
  return { mtu: l.mtu, vni: l.linkinfo?.info_data?.id, kind: l.linkinfo?.info_kind };
}

/** Starts wireguard-go in `node` (foreground; `ip netns exec` execs, so the PID is its own). */
async function startWireguardGo(node: string, name: string): Promise<ChildProcess> {
  const p = spawn("ip", ["netns", "exec", node, "/usr/bin/wireguard-go", "-f", name], {
    stdio: "ignore",
    env: {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      LOG_LEVEL: "error",
      WG_PROCESS_FOREGROUND: "1",
      WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: "1",
    },
  });
  ownProcs.push(p);
  const sock = `/var/run/wireguard/${name}.sock`;
  for (let i = 0; !existsSync(sock); i++) {
    if (i > 100 || p.exitCode !== null) throw new Error(`wireguard-go ${name} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), 3000);
  await gone;
  clearTimeout(timer);
}

interface Pair {
  nsm: number;
  raw: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Both measurements, REPEAT times in alternating order; the medians. */
function measure(nsmSide: () => number, rawSide: () => number): Pair {
  const nsm: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    if (i % 2 === 0) {
      nsm.push(nsmSide());
      raw.push(rawSide());
    } else {
      raw.push(rawSide());
      nsm.push(nsmSide());
    }
  }
  return { nsm: median(nsm), raw: median(raw) };
}

async function main(): Promise<Record<string, Pair>> {
  say(`nsm up --nodes 2 (state in ${stateDir})`);
  runtimeUp = true;
  nsm("up", "--nodes", "2");
  for (const ex of ["kernel2kernel", "kernel2ethernet2kernel", "kernel2ip2kernel"]) {
    say(`nsm apply -f examples/${ex}`);
    nsm("apply", "-f", join(REPO, "examples", ex));
  }
  const nodes = nodeNetns();
  return { veth: measureVeth(), vxlan: measureVxlan(nodes), wireguard: await measureWireguard(nodes) };
}

/** veth: kernel2kernel vs a veth pair between two fresh namespaces. */
function measureVeth(): Pair {
  const { client, nse } = examplePods("ns-kernel2kernel");
  ping(client.netns, "172.16.1.100");
  const a = addNetns("veth-a");
  const b = addNetns("veth-b");
  sh("ip", "-n", a, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", b);
  const mtu = linkOf(client.netns, "nsm-1").mtu;
  for (const [ns, dev, ip] of [
    [a, "v0", "10.90.1.1/24"],
    [b, "v1", "10.90.1.2/24"],
  ] as const) {
    sh("ip", "-n", ns, "link", "set", dev, "mtu", String(mtu), "up");
    sh("ip", "-n", ns, "addr", "add", ip, "dev", dev);
  }
  ping(a, "10.90.1.2");
  say("iperf3: veth (nsm kernel2kernel, then hand-made)");
  return measure(
    () => iperf(nse.netns, client.netns, "172.16.1.100"),
    () => iperf(b, a, "10.90.1.2"),
  );
}

/** VXLAN: kernel2ethernet2kernel vs VXLAN devices made in the node netns and moved out. */
function measureVxlan(nodes: Record<string, string>): Pair {
  const { client, nse } = examplePods("ns-kernel2ethernet2kernel");
  ping(client.netns, "172.16.1.100");
  const nsmLink = linkOf(client.netns, "nsm-1");
  if (nsmLink.kind !== "vxlan") throw new Error(`nsm-1 of the ETHERNET example is ${nsmLink.kind}, not vxlan`);
  const vni = nsmLink.vni === 4242 ? 4243 : 4242;
  const a = addNetns("vxlan-a");
  const b = addNetns("vxlan-b");
  const sides = [
    [client.node, nse.node, a, "10.90.2.1/24"],
    [nse.node, client.node, b, "10.90.2.2/24"],
  ] as const;
  for (const [node, peer, pod, ip] of sides) {
    const local = node === "node-1" ? "198.18.0.1" : "198.18.0.2";
    const remote = peer === "node-1" ? "198.18.0.1" : "198.18.0.2";
    const dev = `tpvx${tag}`;
    // As the forwarder makes it: point to point, so no learning.
    const vx = ["type", "vxlan", "id", String(vni), "local", local, "remote", remote, "dstport", "4789", "nolearning"];
    sh("ip", "-n", nodes[node]!, "link", "add", dev, ...vx);
    sh("ip", "-n", nodes[node]!, "link", "set", dev, "netns", pod);
    sh("ip", "-n", pod, "link", "set", dev, "mtu", String(nsmLink.mtu), "up");
    sh("ip", "-n", pod, "addr", "add", ip, "dev", dev);
  }
  ping(a, "10.90.2.2");
  say(`iperf3: VXLAN (nsm kernel2ethernet2kernel, MTU ${nsmLink.mtu}, then hand-made)`);
  return measure(
    () => iperf(nse.netns, client.netns, "172.16.1.100"),
    () => iperf(b, a, "10.90.2.2"),
  );
}

/** WireGuard: kernel2ip2kernel vs wireguard-go + wg, TUNs moved out of the node netns. */
async function measureWireguard(nodes: Record<string, string>): Promise<Pair> {
  const { client, nse } = examplePods("ns-kernel2ip2kernel");
  ping(client.netns, "172.16.1.100");
  const mtu = linkOf(client.netns, "nsm-1").mtu;
  const a = addNetns("wg-a");
  const b = addNetns("wg-b");
  const keys = [0, 1].map(() => {
    const priv = sh("wg", "genkey").trim();
    return { priv, pub: execFileSync("wg", ["pubkey"], { input: priv, encoding: "utf8" }).trim() };
  });
  const sides = [
    { node: client.node, pod: a, ip: "10.90.3.1/24", port: 59821, key: keys[0]!, peerKey: keys[1]!, peerPort: 59822 },
    { node: nse.node, pod: b, ip: "10.90.3.2/24", port: 59822, key: keys[1]!, peerKey: keys[0]!, peerPort: 59821 },
  ];
  const procs: ChildProcess[] = [];
  try {
    for (const i of sides.keys()) await handMadeWireguardSide(nodes, sides, i, mtu, procs);
    ping(a, "10.90.3.2");
    say(`iperf3: WireGuard (nsm kernel2ip2kernel, MTU ${mtu}, then hand-made wireguard-go)`);
    return measure(
      () => iperf(nse.netns, client.netns, "172.16.1.100"),
      () => iperf(b, a, "10.90.3.2"),
    );
  } finally {
    await Promise.all(procs.map(stopProc));
  }
}

type WireguardSide = {
  node: string;
  pod: string;
  ip: string;
  port: number;
  key: { priv: string; pub: string };
  peerKey: { priv: string; pub: string };
  peerPort: number;
};

/**
 * A wireguard-go (added to `procs`) in the node netns of side `i`, configured by `wg`, its TUN
 * moved into the side's pod.
 */
async function handMadeWireguardSide(
  nodes: Record<string, string>,
  sides: readonly WireguardSide[],
  i: number,
  mtu: number,
  procs: ChildProcess[],
): Promise<void> {
  const s = sides[i]!;
  const name = `tpwg${tag}${i}`;
  const peerIp = sides[1 - i]!.node === "node-1" ? "198.18.0.1" : "198.18.0.2";
  procs.push(await startWireguardGo(nodes[s.node]!, name));
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(keyFile, `${s.key.priv}\n`, { mode: 0o600 });
  inNs(nodes[s.node]!, "wg", "set", name, "private-key", keyFile, "listen-port", String(s.port));
  inNs(
    nodes[s.node]!,
    "wg",
    "set",
    name,
    "peer",
    s.peerKey.pub,
    "endpoint",
    `${peerIp}:${s.peerPort}`,
    "allowed-ips",
    "0.0.0.0/0",
    "persistent-keepalive",
    "25",
  );
  sh("ip", "-n", nodes[s.node]!, "link", "set", name, "mtu", String(mtu));
  sh("ip", "-n", nodes[s.node]!, "link", "set", name, "netns", s.pod);
  sh("ip", "-n", s.pod, "link", "set", name, "up");
  sh("ip", "-n", s.pod, "addr", "add", s.ip, "dev", name);
}

async function cleanup(): Promise<void> {
  await Promise.all(ownProcs.map(stopProc));
  for (const n of ownNetns.splice(0)) spawnSync("ip", ["netns", "del", n], { stdio: "ignore" });
  if (runtimeUp) {
    runtimeUp = false;
    spawnSync(process.execPath, [NSM, "down"], { env: { ...process.env, NSM_LOCAL_STATE_DIR: stateDir } });
  }
  rmSync(dir, { recursive: true, force: true });
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    void cleanup().then(() => process.exit(130));
  });
}

try {
  const r = await main();
  const row = (what: string, p: Pair) =>
    `  ${what.padEnd(10)} nsm ${r2(p.nsm).toFixed(2).padStart(6)} Gbit/s   hand-made ${r2(p.raw).toFixed(2).padStart(6)} Gbit/s   ratio ${r3(p.nsm / p.raw)}`;
  const runs = REPEAT > 1 ? `, median of ${REPEAT}` : "";
  console.log(`iperf3 TCP, ${SECONDS} s each${runs}, pod to pod (client → endpoint):`);
  console.log(row("veth", r.veth!));
  console.log(row("VXLAN", r.vxlan!));
  console.log(row("WireGuard", r.wireguard!));
  const json: Record<string, number> = { seconds: SECONDS, repeat: REPEAT };
  for (const [k, p] of Object.entries(r)) {
    json[`${k}_ratio`] = r3(p.nsm / p.raw);
    json[`${k}_gbps`] = r2(p.nsm);
    json[`${k}_raw_gbps`] = r2(p.raw);
  }
  console.log(JSON.stringify(json));
} finally {
  await cleanup();
}
