// SPDX-License-Identifier: Apache-2.0
/**
 * Network services next to a plain kernel2kernel connection, in one run of the local runtime:
 * - composition setup: how long `nsm apply` takes to bring up one more client pod (init container
 *   connected) through examples/nse-composition (firewall → passthrough → passthrough → final
 *   endpoint) ÷ the same for examples/kernel2kernel; each client is deleted before the next
 *   (the examples' /31 pools hold one client each). Both include the same pod start cost, so the
 *   ratio understates the composition's own cost.
 * - firewall throughput: iperf3 TCP to port 8080 (the ACL's allowed port) through the composition
 *   (three bridged hops, the firewall's nftables rules on the first) ÷ through the kernel2kernel
 *   veth.
 * - vL3 setup: the same for a client of examples/vl3-basic (the IPAM and one vL3 endpoint on the
 *   one node; the example's second endpoint and its clients are left out) ÷ kernel2kernel.
 * - bridge throughput: iperf3 TCP between the two clients of examples/bridge (veth → the
 *   endpoint's bridge → veth) ÷ through the kernel2kernel veth.
 * Throughput is measured in rounds (veth, firewall, bridge, the order rotating each round) and each
 * ratio is the median of its per-round ratios: on a shared machine the load drifts within seconds,
 * and a ratio of two runs far apart in time measures the drift as much as the data path.
 * Issue goals: composition_setup_ratio ≤ 4, firewall_throughput_ratio ≥ 0.8.
 *
 * Usage: npm run bench:services [-- --runs 5] [--seconds 5]. Root, iperf3, nftables. The last
 * line is JSON. --smoke: 1 setup run, 3 throughput rounds of 1 s (scripts/bench-smoke.sh).
 * Throughput takes max(3, --runs) rounds. Everything runs in a temporary state directory and
 * `nsm down` removes it all.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pct, r3 } from "./common.js";

const REPO = join(import.meta.dirname, "..");
const NSM = join(REPO, "bin", "nsm.js");
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    seconds: { type: "string", default: "5" },
    smoke: { type: "boolean", default: false },
  },
});
const RUNS = values.smoke ? 1 : Number(values.runs);
/** Throughput rounds: at least 3 (a median of one round is the noise of that round). */
const ROUNDS = Math.max(3, RUNS);
const SECONDS = values.smoke ? 1 : Number(values.seconds);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error("--runs must be a positive integer");
if (!Number.isInteger(SECONDS) || SECONDS < 1) throw new Error("--seconds must be a positive integer");

const work = mkdtempSync(join(tmpdir(), "nsm-bench-services-"));
const stateDir = join(work, "state");
const procs: ChildProcess[] = [];

function nsm(...args: string[]): string {
  const r = spawnSync(process.execPath, [NSM, ...args], {
    env: { ...process.env, NSM_LOCAL_STATE_DIR: stateDir, NSM_LOG_LEVEL: "" },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`nsm ${args.join(" ")} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function podNetns(namespace: string, prefix: string): string {
  const state = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as {
    pods: { namespace: string; name: string; netns: string }[];
  };
  const pod = state.pods.find((p) => p.namespace === namespace && p.name.startsWith(prefix));
  if (!pod) throw new Error(`no pod ${prefix}… in ${namespace}`);
  return pod.netns;
}

/** The first IPv4 address (no length) of `link` in `netns`. */
function addressIn(netns: string, link: string): string {
  const out = spawnSync("ip", ["-n", netns, "-j", "-4", "addr", "show", "dev", link], { encoding: "utf8" });
  const ip = (JSON.parse(out.stdout || "[]") as { addr_info: { local: string }[] }[])[0]?.addr_info[0]?.local;
  if (!ip) throw new Error(`no IPv4 address on ${link} in ${netns}: ${out.stderr}`);
  return ip;
}

/** One throughput path: where iperf3 serves, where it runs, and the address it dials. */
interface ThroughputPath {
  readonly name: "veth" | "firewall" | "bridge";
  readonly server: string;
  readonly client: string;
  readonly addr: string;
}

/** Gbit/s of every path per round (rotating order), and each path's median ratio to veth. */
function throughputRounds(paths: readonly ThroughputPath[], rounds: number) {
  const gbps: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p.name, []]));
  const ratios: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p.name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
    const got: Record<string, number> = {};
    for (const p of order) got[p.name] = iperf(p.server, p.client, p.addr);
    for (const p of paths) {
      gbps[p.name]!.push(got[p.name]!);
      ratios[p.name]!.push(got[p.name]! / got.veth!);
    }
  }
  const median = (xs: number[]) => pct(xs, 50);
  return {
    gbps: (name: string) => median(gbps[name]!),
    ratio: (name: string) => median(ratios[name]!),
  };
}

/** iperf3 TCP to `addr`:8080 from `client`, in Gbit/s (received). */
function iperf(server: string, client: string, addr: string): number {
  const srv = spawn("ip", ["netns", "exec", server, "iperf3", "-s", "-1", "-p", "8080"], { stdio: "ignore" });
  procs.push(srv);
  try {
    for (let attempt = 0; ; attempt++) {
      const r = spawnSync(
        "ip",
        [
          "netns",
          "exec",
          client,
          "iperf3",
          "-c",
          addr,
          "-p",
          "8080",
          "-t",
          String(SECONDS),
          "-J",
          "--connect-timeout",
          "2000",
        ],
        { encoding: "utf8" },
      );
      let bps: number | undefined;
      try {
        bps = JSON.parse(r.stdout)?.end?.sum_received?.bits_per_second;
      } catch {
        bps = undefined;
      }
      if (bps) return bps / 1e9;
      if (attempt >= 20) throw new Error(`iperf3 ${client} → ${addr}:8080: ${r.stdout.slice(0, 300)}${r.stderr}`);
      spawnSync("sleep", ["0.1"]);
    }
  } finally {
    if (srv.exitCode === null) srv.kill("SIGTERM");
  }
}

/** A client pod manifest for `service` in `namespace`. */
function clientPod(namespace: string, name: string, service: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n  annotations:\n    networkservicemesh.io: kernel://${service}/nsm-1\nspec:\n  containers:\n    - name: alpine\n      image: alpine:3.15.0\n`,
  );
  return file;
}

/** Seconds `nsm apply` reports for one more client of `service` (the pod is deleted after). */
function clientSetupMs(namespace: string, service: string, i: number): number {
  const file = clientPod(namespace, `bench-${i}`, service);
  const out = nsm("apply", "-f", file);
  const m = /connected kernel:\/\/\S+ \(([\d.]+)s\)/.exec(out);
  nsm("delete", "-f", file);
  if (!m) throw new Error(`no connection time in: ${out}`);
  return Number(m[1]) * 1000;
}

/** examples/vl3-basic for one node: one vL3 endpoint, no clients (the bench adds its own). */
function vl3OneNode(): string {
  const dir = join(work, "vl3-basic");
  cpSync(join(REPO, "examples", "vl3-basic"), dir, { recursive: true });
  const kustomization = join(dir, "kustomization.yaml");
  writeFileSync(kustomization, readFileSync(kustomization, "utf8").replace(/^\s*- client\.yaml\n/m, ""));
  const nse = join(dir, "nse-vl3.yaml");
  writeFileSync(nse, readFileSync(nse, "utf8").replace("replicas: 2", "replicas: 1"));
  return dir;
}

function main(): void {
  nsm("up");
  nsm("apply", "-f", join(REPO, "examples", "kernel2kernel"));
  nsm("apply", "-f", join(REPO, "examples", "nse-composition"));
  nsm("apply", "-f", vl3OneNode());
  nsm("apply", "-f", join(REPO, "examples", "bridge"));
  const bridgePeer = podNetns("ns-bridge", "alpine-b");
  const paths: ThroughputPath[] = [
    {
      name: "veth",
      server: podNetns("ns-kernel2kernel", "nse-kernel-"),
      client: podNetns("ns-kernel2kernel", "alpine"),
      addr: "172.16.1.100",
    },
    {
      name: "firewall",
      server: podNetns("ns-nse-composition", "nse-kernel-"),
      client: podNetns("ns-nse-composition", "alpine"),
      addr: "172.16.1.100",
    },
    {
      name: "bridge",
      server: bridgePeer,
      client: podNetns("ns-bridge", "alpine-a"),
      addr: addressIn(bridgePeer, "nsm-1"),
    },
  ];
  const tp = throughputRounds(paths, ROUNDS);
  nsm("delete", "-f", join(REPO, "examples", "bridge"));
  nsm("delete", "-f", join(REPO, "examples", "kernel2kernel", "client.yaml"), "-n", "ns-kernel2kernel");
  nsm("delete", "-f", join(REPO, "examples", "nse-composition", "client.yaml"), "-n", "ns-nse-composition");
  const k2k: number[] = [];
  const comp: number[] = [];
  const vl3: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    k2k.push(clientSetupMs("ns-kernel2kernel", "kernel2kernel", i));
    comp.push(clientSetupMs("ns-nse-composition", "nse-composition", i));
    vl3.push(clientSetupMs("ns-vl3", "vl3-basic", i));
  }
  const vl3P50 = pct(vl3, 50);
  const k2kP50 = pct(k2k, 50);
  const compP50 = pct(comp, 50);
  const [veth, firewall, bridge] = [tp.gbps("veth"), tp.gbps("firewall"), tp.gbps("bridge")];
  console.log(
    `throughput (median of ${ROUNDS} rounds): veth ${r3(veth)}, firewall (composition) ${r3(firewall)}, bridge ${r3(bridge)} Gbit/s`,
  );
  console.log(`client setup p50: composition ${Math.round(compP50)} ms, kernel2kernel ${Math.round(k2kP50)} ms`);
  console.log(`client setup p50: vL3 ${Math.round(vl3P50)} ms`);
  console.log(
    JSON.stringify({
      composition_setup_p50_ms: Math.round(compP50),
      kernel2kernel_setup_p50_ms: Math.round(k2kP50),
      composition_setup_ratio: r3(compP50 / k2kP50),
      firewall_gbps: r3(firewall),
      veth_gbps: r3(veth),
      firewall_throughput_ratio: r3(tp.ratio("firewall")),
      bridge_gbps: r3(bridge),
      bridge_throughput_ratio: r3(tp.ratio("bridge")),
      vl3_setup_p50_ms: Math.round(vl3P50),
      vl3_setup_ratio: r3(vl3P50 / k2kP50),
    }),
  );
}

try {
  main();
} finally {
  for (const p of procs) if (p.exitCode === null && p.pid) process.kill(p.pid);
  spawnSync(process.execPath, [NSM, "down"], {
    env: { ...process.env, NSM_LOCAL_STATE_DIR: stateDir },
    stdio: "ignore",
  });
  rmSync(work, { recursive: true, force: true });
}
