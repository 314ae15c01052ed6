// SPDX-License-Identifier: Apache-2.0
/**
 * examples/bridge-domain on the local runtime with two nodes: one bridge endpoint per node, each
 * client on its own node's endpoint, the two bridges linked through the mesh (the node-2
 * endpoint is a client of the node-1 one, a VXLAN tunnel between the nodes), so the clients
 * share one L2 segment: addresses from one subnet, pings both ways, each other's MAC in the
 * neighbour table, full-size frames within the domain's MTU. Delete and down leave nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ipJson, ipv4Of, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-bridge-domain";
const EXAMPLE = join(REPO, "examples", "bridge-domain");
const skip = skipReason();

describe("endpoints: examples/bridge-domain (distributed bridge domain on two nodes)", { skip }, () => {
  let rt: TestRuntime;
  const nse: Record<string, string> = {};
  const addr: Record<string, string> = {};

  const ping = (from: string, to: string, ...extra: string[]) =>
    rt.nsm("exec", from, "-n", NS, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", ...extra, to);

  before(async () => {
    rt = testRuntime("bridge-domain");
    await rt.ok("up", "--nodes", "2");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(out, /pod ns-bridge-domain\/alpine-a running on node-1, connected kernel:\/\/bridge-domain\/nsm-1/);
    assert.match(out, /pod ns-bridge-domain\/alpine-b running on node-2, connected kernel:\/\/bridge-domain\/nsm-1/);
    for (const r of rows(await rt.ok("get", "pods", "-n", NS))) {
      const m = /^nse-bridge-(\d)-/.exec(r[1]!);
      if (m) nse[`node-${m[1]}`] = r[1]!;
    }
    for (const c of ["alpine-a", "alpine-b"]) addr[c] = ipv4Of(podNetns(rt, NS, c), "nsm-1")[0]!;
    // The node-2 endpoint links to the hub within a peering interval or two.
    const b = addr["alpine-b"]!.split("/")[0]!;
    for (let i = 0; i < 40 && (await ping("alpine-a", b)).code !== 0; i++) await sleep(500);
  });
  after(() => rt?.cleanup());

  it("each client is served by its own node's endpoint, from that endpoint's range of one subnet", () => {
    assert.equal(addr["alpine-a"], "172.16.3.2/24");
    assert.equal(addr["alpine-b"], "172.16.3.65/24");
    assert.deepEqual(ipv4Of(podNetns(rt, NS, nse["node-1"]!), "nsm-br0"), ["172.16.3.1/24"]);
    assert.deepEqual(ipv4Of(podNetns(rt, NS, nse["node-2"]!), "nsm-br0"), ["172.16.3.64/24"]);
  });

  it("the node-2 bridge is linked to the node-1 bridge by a VXLAN port through the mesh", async () => {
    const peer = rows(await rt.ok("get", "connections")).find((r) => r[1]!.endsWith("-bridge-peer"));
    assert.ok(peer, "a peer connection");
    assert.equal(peer[0], "node-2");
    assert.equal(peer[3], nse["node-1"], "its endpoint is the node-1 bridge");
    const links = ipJson(podNetns(rt, NS, nse["node-2"]!), "-d", "link", "show");
    const vxlan = links.filter((l) => l.linkinfo?.info_kind === "vxlan");
    assert.equal(vxlan.length, 1, JSON.stringify(links.map((l) => l.ifname)));
    assert.equal(vxlan[0].master, "nsm-br0");
    assert.deepEqual(ipv4Of(podNetns(rt, NS, nse["node-2"]!), vxlan[0].ifname), [], "the peer port has no address");
    const hubPorts = ipJson(podNetns(rt, NS, nse["node-1"]!), "link", "show").filter((l) => l.master === "nsm-br0");
    assert.equal(hubPorts.length, 2, "node-1's bridge: alpine-a's port and the peer link");
  });

  it("the clients ping each other across the nodes and see each other's MAC as a neighbour", async () => {
    for (const [from, to] of [
      ["alpine-a", "alpine-b"],
      ["alpine-b", "alpine-a"],
    ] as const) {
      const ip = addr[to]!.split("/")[0]!;
      const r = await ping(from, ip);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
      const [theirs] = ipJson(podNetns(rt, NS, to), "link", "show", "dev", "nsm-1");
      const neigh = ipJson(podNetns(rt, NS, from), "neigh", "show", "dev", "nsm-1").find((n) => n.dst === ip);
      assert.equal(neigh?.lladdr, theirs.address, `${from} resolved ${ip} to ${to}'s MAC by ARP`);
    }
  });

  it("client interfaces get the domain's MTU (1450): a full-size frame crosses the VXLAN link", async () => {
    for (const c of ["alpine-a", "alpine-b"]) {
      assert.equal(ipJson(podNetns(rt, NS, c), "link", "show", "dev", "nsm-1")[0].mtu, 1450);
    }
    const r = await ping("alpine-a", addr["alpine-b"]!.split("/")[0]!, "-M", "do", "-s", "1422");
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it("delete removes the pods and their namespaces; down leaves nothing", async () => {
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    assert.deepEqual(rows(await rt.ok("get", "connections")), []);
    assert.deepEqual(
      rt.netns().filter((n) => n.includes(NS)),
      [],
    );
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
