// SPDX-License-Identifier: Apache-2.0
/**
 * Remote connections through the local runtime on two nodes (`nsm up --nodes 2`: node netns
 * joined by the fabric bridge, 198.18.0.<i>/24 each): examples/kernel2ethernet2kernel (VXLAN)
 * and examples/kernel2ip2kernel (WireGuard through wireguard-go), as their READMEs run them;
 * four clients on node-1 to two endpoints on node-2 (one VNI each); and a teardown that leaves
 * nothing. Everything is checked on the real kernel with `ip -j` and ping.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ipJson,
  ipv4Of,
  linksOf,
  podNetns,
  REPO,
  rows,
  skipReason,
  type TestRuntime,
  testRuntime,
  wireguardGoIn,
} from "./helpers.js";

const ETH = { dir: join(REPO, "examples", "kernel2ethernet2kernel"), ns: "ns-kernel2ethernet2kernel" };
const IP = { dir: join(REPO, "examples", "kernel2ip2kernel"), ns: "ns-kernel2ip2kernel" };
const WIREGUARD_GO = "/usr/bin/wireguard-go";
const WIREGUARD_RUN_DIR = "/var/run/wireguard";

const skip =
  skipReason() ??
  (existsSync(WIREGUARD_GO) ? undefined : `needs ${WIREGUARD_GO}`) ??
  (existsSync("/usr/bin/ping") || existsSync("/bin/ping") ? undefined : "needs ping");

interface NodeInfo {
  name: string;
  netns: string;
}

function nodesOf(rt: TestRuntime): NodeInfo[] {
  return JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8")).nodes;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** `ip -d -j link show DEV` in a netns: kind (vxlan, tun, veth), MTU, VNI, alias. */
function linkDetails(netns: string, dev: string): { kind?: string; mtu: number; vni?: number; alias?: string } {
  const [l] = ipJson(netns, "-d", "link", "show", "dev", dev);
  return { kind: l.linkinfo?.info_kind, mtu: l.mtu, vni: l.linkinfo?.info_data?.id, alias: l.ifalias };
}

/** The single connection row of `nsm get connections` for a service. */
async function connectionOf(rt: TestRuntime, service: string): Promise<string[]> {
  const all = rows(await rt.ok("get", "connections"));
  const mine = all.filter((r) => r[2] === service);
  assert.equal(mine.length, 1, JSON.stringify(all));
  return mine[0]!;
}

async function ping(rt: TestRuntime, target: string, ns: string, ip: string): Promise<void> {
  const r = await rt.nsm("exec", target, "-n", ns, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", ip);
  assert.equal(r.code, 0, `ping ${ip} from ${target}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
}

/** Checks one example end to end; returns the endpoint pod's name. */
async function checkExample(
  rt: TestRuntime,
  ex: { dir: string; ns: string },
  service: string,
  want: { kind: string; mtu: number },
): Promise<string> {
  const pods = rows(await rt.ok("get", "pods", "-n", ex.ns));
  const client = pods.find((p) => p[1] === "alpine")!;
  const nse = pods.find((p) => p[1]!.startsWith("nse-kernel-"))!;
  assert.ok(client && nse, JSON.stringify(pods));
  assert.equal(client[3], "Running");
  assert.equal(nse[3], "Running");
  assert.notEqual(client[4], nse[4], "podAntiAffinity must put the client on the other node");

  const [node, id, svc, endpoint, src, dst, state, path] = await connectionOf(rt, service);
  assert.deepEqual(
    [node, id, svc, endpoint, src, dst, state],
    [client[4], "alpine-0", service, nse[1], "172.16.1.101/32", "172.16.1.100/32", "UP"],
  );
  const segments = path!.split(" > ");
  assert.deepEqual(segments, [
    "alpine",
    `nsmgr-${client[4]}`,
    `forwarder-${client[4]}`,
    `nsmgr-${nse[4]}`,
    `forwarder-${nse[4]}`,
    nse[1],
  ]);

  await ping(rt, "pods/alpine", ex.ns, "172.16.1.100");
  await ping(rt, "deployments/nse-kernel", ex.ns, "172.16.1.101");

  const shown = await rt.ok("exec", "pods/alpine", "-n", ex.ns, "--", "ip", "addr", "show", "nsm-1");
  assert.match(shown, new RegExp(`mtu ${want.mtu} `));
  assert.match(shown, /inet 172\.16\.1\.101\/32/);
  const clientNetns = podNetns(rt, ex.ns, "alpine");
  const c = linkDetails(clientNetns, "nsm-1");
  assert.equal(c.kind, want.kind);
  assert.equal(c.mtu, want.mtu);
  assert.match(c.alias ?? "", /^nsm:client:/);
  const nseNetns = podNetns(rt, ex.ns, nse[1]!);
  const [nseLink] = linksOf(nseNetns);
  assert.ok(nseLink, "the endpoint has no interface");
  const e = linkDetails(nseNetns, nseLink.ifname);
  assert.equal(e.kind, want.kind);
  assert.equal(e.mtu, want.mtu);
  assert.deepEqual(ipv4Of(nseNetns, nseLink.ifname), ["172.16.1.100/32"]);
  if (want.kind === "vxlan") assert.equal(e.vni, c.vni, "both ends must use the negotiated VNI");
  return nse[1]!;
}

describe("local runtime: remote connections on two nodes", { skip }, () => {
  let rt: TestRuntime;
  let nodes: NodeInfo[];
  let rootLinksBefore: string[];
  /** Every wireguard-go seen, for the teardown check. */
  const wireguards = new Map<number, string>();

  const rootLinks = () =>
    (JSON.parse(execFileSync("ip", ["-j", "link", "show"], { encoding: "utf8" })) as { ifname: string }[])
      .map((l) => l.ifname)
      .sort();
  const noteWireguards = () => {
    for (const n of nodes) for (const w of wireguardGoIn(n.netns)) wireguards.set(w.pid, w.name);
  };

  before(async () => {
    rootLinksBefore = rootLinks();
    rt = testRuntime("remote");
    const up = await rt.ok("up", "--nodes", "2");
    assert.match(up, /fabric: netns .*-fabric/);
    assert.match(up, /node-1: netns .*-node-1, underlay 198\.18\.0\.1/);
    assert.match(up, /node-2: netns .*-node-2, underlay 198\.18\.0\.2/);
    nodes = nodesOf(rt);
  });
  after(() => rt?.cleanup());

  it("nodes have their underlay on the fabric bridge and nsmgr listens on tcp://198.18.0.<i>:5001", async () => {
    assert.deepEqual(rt.netns().sort(), [`${rt.prefix}-fabric`, `${rt.prefix}-node-1`, `${rt.prefix}-node-2`]);
    for (const [i, n] of nodes.entries()) {
      assert.deepEqual(ipv4Of(n.netns, "eth0"), [`198.18.0.${i + 1}/24`]);
      const listening = execFileSync("ip", ["netns", "exec", n.netns, "ss", "-Hltn"], { encoding: "utf8" });
      assert.match(listening, new RegExp(`198\\.18\\.0\\.${i + 1}:5001`));
    }
    const table = rows(await rt.ok("get", "nodes"));
    assert.deepEqual(
      table.map((r) => [r[0], r[1], r[3]]),
      [
        ["node-1", "Ready", "198.18.0.1"],
        ["node-2", "Ready", "198.18.0.2"],
      ],
    );
    const bridgePorts = ipJson(`${rt.prefix}-fabric`, "link", "show", "master", "br0").map((l) => l.ifname);
    assert.deepEqual(bridgePorts.sort(), ["node-1", "node-2"]);
    const r = execFileSync("ip", ["netns", "exec", nodes[0]!.netns, "ping", "-c", "1", "-W", "2", "198.18.0.2"], {
      encoding: "utf8",
    });
    assert.match(r, /1 received/);
    // The forwarders use their node's address as tunnel IP.
    const fwdLog = readFileSync(join(rt.dir, "logs", "node-2-forwarder.log"), "utf8");
    assert.match(fwdLog, /"tunnelIp":"198\.18\.0\.2","underlayMtu":1500/);
  });

  it("kernel2ethernet2kernel: VXLAN across nodes, 6-segment path, pings both ways, MTU 1450", async () => {
    await rt.ok("apply", "-f", ETH.dir);
    const nse = await checkExample(rt, ETH, "kernel2ethernet2kernel", { kind: "vxlan", mtu: 1450 });

    // describe shows the mechanism every hop holds: kernel on the nodes' ends, VXLAN between them.
    const described = await rt.ok("describe", "connection", "alpine-0");
    const hops = [...described.matchAll(/^ {2}(\S+) > (\S+): (\S+) \((\w+)\)$/gm)].map((m) => m.slice(1).join(" "));
    const pods = rows(await rt.ok("get", "pods", "-n", ETH.ns));
    const [a, b] = ["alpine", nse].map((name) => pods.find((p) => p[1] === name)![4]!);
    assert.deepEqual(hops, [
      `alpine nsmgr-${a} KERNEL LOCAL`,
      `nsmgr-${a} forwarder-${a} KERNEL LOCAL`,
      `forwarder-${a} nsmgr-${b} VXLAN REMOTE`,
      `nsmgr-${b} forwarder-${b} VXLAN REMOTE`,
      `forwarder-${b} ${nse} KERNEL LOCAL`,
    ]);
    assert.match(
      described,
      new RegExp(`^ {2}forwarder-${a} > nsmgr-${b}: VXLAN \\(REMOTE\\)\n(?: {4}.*\n)* {4}vni: \\d+$`, "m"),
    );

    // The tunnel device lives as long as the connection: deleting the client closes it.
    const nseNetns = podNetns(rt, ETH.ns, nse);
    const out = await rt.ok("delete", "-f", join(ETH.dir, "client.yaml"), "-n", ETH.ns);
    assert.match(out, /pod "alpine" deleted/);
    assert.doesNotMatch(out, /left open/, "the connection's Close must remove the client's device");
    assert.deepEqual(linksOf(nseNetns), [], "the endpoint still has its VXLAN device");
    assert.ok(!rows(await rt.ok("get", "connections")).some((r) => r[2] === "kernel2ethernet2kernel"));
    for (const n of nodes)
      assert.deepEqual(
        linksOf(n.netns).map((l) => l.ifname),
        ["eth0"],
      );
  });

  it("kernel2ip2kernel: WireGuard (wireguard-go) across nodes, pings both ways, MTU 1420; Close stops wireguard-go", async () => {
    await rt.ok("apply", "-f", IP.dir);
    const nse = await checkExample(rt, IP, "kernel2ip2kernel", { kind: "tun", mtu: 1420 });
    const running = nodes.map((n) => wireguardGoIn(n.netns));
    assert.deepEqual(
      running.map((w) => w.length),
      [1, 1],
      "one wireguard-go per node",
    );
    noteWireguards();
    for (const [, name] of wireguards) assert.ok(existsSync(join(WIREGUARD_RUN_DIR, `${name}.sock`)));

    const nseNetns = podNetns(rt, IP.ns, nse);
    const out = await rt.ok("delete", "-f", join(IP.dir, "client.yaml"), "-n", IP.ns);
    assert.doesNotMatch(out, /left open/);
    assert.deepEqual(linksOf(nseNetns), [], "the endpoint still has its WireGuard interface");
    for (const [pid, name] of wireguards) {
      assert.ok(!alive(pid), `wireguard-go ${pid} (${name}) still runs`);
      assert.ok(!existsSync(join(WIREGUARD_RUN_DIR, `${name}.sock`)), `${name}.sock is left`);
    }

    // Back again, left running for the teardown test.
    await rt.ok("apply", "-f", IP.dir);
    await ping(rt, "pods/alpine", IP.ns, "172.16.1.100");
    noteWireguards();
  });

  it("4 clients on node-1 to 2 endpoints on node-2 get distinct VNIs; closing one leaves the others working", async () => {
    const dir = join(rt.dir, "..", "vni");
    mkdirSync(dir, { recursive: true });
    const client = (i: number) =>
      [
        "---",
        "apiVersion: v1",
        "kind: Pod",
        `metadata: {name: client-${i}, labels: {app: vni-client}, annotations: {networkservicemesh.io: "kernel://remote-vni/nsm-1"}}`,
        "spec:",
        "  nodeName: node-1",
        "  containers: [{name: alpine, image: alpine:3.15.0}]",
      ].join("\n");
    writeFileSync(
      join(dir, "system.yaml"),
      [
        "apiVersion: v1",
        "kind: Namespace",
        "metadata: {name: ns-remote-vni}",
        "---",
        "apiVersion: networkservicemesh.io/v1",
        "kind: NetworkService",
        "metadata: {name: remote-vni}",
        "spec: {payload: ETHERNET}",
        "---",
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata: {name: nse-vni}",
        "spec:",
        "  replicas: 2",
        "  selector: {matchLabels: {app: nse-vni}}",
        "  template:",
        "    metadata: {labels: {app: nse-vni}}",
        "    spec:",
        "      nodeName: node-2",
        "      containers:",
        "        - name: nse",
        "          image: ghcr.io/networkservicemesh/cmd-nse-icmp-responder:v1.14.0",
        "          env:",
        "            - {name: NSM_CIDR_PREFIX, value: 172.16.2.0/24}",
        "            - {name: NSM_SERVICE_NAMES, value: remote-vni}",
        "            - {name: NSM_REGISTER_SERVICE, value: 'false'}",
        "            - name: NSM_NAME",
        "              valueFrom: {fieldRef: {fieldPath: metadata.name}}",
      ].join("\n"),
    );
    for (let i = 1; i <= 4; i++) writeFileSync(join(dir, `client-${i}.yaml`), client(i));
    await rt.ok("apply", "-f", dir, "-n", "ns-remote-vni");

    const conns = rows(await rt.ok("get", "connections")).filter((r) => r[2] === "remote-vni");
    assert.equal(conns.length, 4, JSON.stringify(conns));
    assert.equal(new Set(conns.map((r) => r[3])).size, 2, "round robin uses both endpoints");
    const info = conns.map((r) => {
      const pod = r[1]!.replace(/-0$/, "");
      const netns = podNetns(rt, "ns-remote-vni", pod);
      assert.equal(r[0], "node-1");
      assert.equal(r[7]!.split(" > ").length, 6);
      return { pod, dst: r[5]!.replace(/\/32$/, ""), vni: linkDetails(netns, "nsm-1").vni! };
    });
    assert.equal(new Set(info.map((x) => x.vni)).size, 4, `VNIs: ${info.map((x) => x.vni)}`);
    // Every endpoint netns holds one VXLAN device per client it serves, each with its VNI.
    const endpointVnis = rows(await rt.ok("get", "pods", "-n", "ns-remote-vni"))
      .filter((p) => p[1]!.startsWith("nse-vni-"))
      .flatMap((p) => {
        assert.equal(p[4], "node-2");
        const netns = podNetns(rt, "ns-remote-vni", p[1]!);
        return linksOf(netns).map((l) => linkDetails(netns, l.ifname).vni);
      });
    assert.deepEqual([...endpointVnis].sort(), info.map((x) => x.vni).sort());

    const [gone, ...rest] = info;
    await rt.ok("delete", "-f", join(dir, `${gone!.pod}.yaml`), "-n", "ns-remote-vni");
    const left = rows(await rt.ok("get", "connections")).filter((r) => r[2] === "remote-vni");
    assert.deepEqual(left.map((r) => r[1]).sort(), rest.map((x) => `${x.pod}-0`).sort());
    await Promise.all(rest.map((x) => ping(rt, `pods/${x.pod}`, "ns-remote-vni", x.dst)));
    const stillThere = rows(await rt.ok("get", "pods", "-n", "ns-remote-vni"))
      .filter((p) => p[1]!.startsWith("nse-vni-"))
      .flatMap((p) => {
        const netns = podNetns(rt, "ns-remote-vni", p[1]!);
        return linksOf(netns).map((l) => linkDetails(netns, l.ifname).vni);
      });
    assert.deepEqual([...stillThere].sort(), rest.map((x) => x.vni).sort());
  });

  it("nsm down on two nodes leaves nothing: netns, links, processes, wireguard-go and its sockets", async () => {
    noteWireguards();
    assert.ok(wireguards.size >= 4, `wireguard-go seen: ${[...wireguards.values()]}`);
    const live = [...wireguards].filter(([pid]) => alive(pid));
    assert.equal(live.length, 2, "the kernel2ip2kernel connection is up during down");
    const out = await rt.ok("down");
    assert.match(out, /down: nothing left/);
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
    for (const [pid, name] of wireguards) {
      assert.ok(!alive(pid), `wireguard-go ${pid} (${name}) still runs`);
      assert.ok(!existsSync(join(WIREGUARD_RUN_DIR, `${name}.sock`)), `${name}.sock is left`);
    }
    const added = rootLinks().filter((l) => !rootLinksBefore.includes(l));
    assert.ok(!added.some((l) => /^(nsm|node-|br0|eth0)/.test(l)), `links left in the root netns: ${added}`);
    assert.ok(!existsSync(rt.dir), "the state dir is still there");
  });
});
