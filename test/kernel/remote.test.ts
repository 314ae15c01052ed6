// SPDX-License-Identifier: Apache-2.0
/**
 * Remote (cross-node) connections on the real kernel: VXLAN and WireGuard (wireguard-go).
 * Needs root, the built addon, and (for WireGuard) /usr/bin/wireguard-go.
 *
 * Namespaces `nsmr-<hex>-…`, all deleted in `after` (and on process exit):
 * - two "nodes" joined by a veth underlay 198.18.0.1/24 ↔ 198.18.0.2/24 (created in the
 *   nodes' netns; nothing in the root netns);
 * - a client pod (NSC) and an endpoint pod (NSE).
 * Two forwarder-shaped chains from `kernelForwarderElements()` run in this process, one per
 * node (`tunnelNetns` = the node's netns; wireguard-go is started in the node's netns through
 * `nsenter --net=…`, which execs, so its PID is wireguard-go's), joined the way an nsmgr would
 * join them, in front of a fake NSE doing point-to-point IPAM (172.16.1.100/31 per connection).
 * `ip`/`ping` are used only to check what the kernel does.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  Cls,
  type Connection,
  ConnectionSchema,
  create,
  MechanismType,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  newMechanism,
  Payload,
} from "../../src/api/index.js";
import { createNetlinkKernel, type KernelApi } from "../../src/kernel/index.js";
import {
  createWireguardGoRunner,
  insecureNetnsOwnership,
  type KernelForwarderElements,
  kernelForwarderElements,
  listTaggedLinks,
  type WireguardDevice,
} from "../../src/kernel/networkservice/index.js";
import { forwarderChain, hop, p2pEndpoint, recordingRunner } from "../../src/kernel/networkservice/testing.js";
import type { NetworkServiceHandler } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { havePing, ipJson, kernelSkipReason, NetnsSet, nsPath, ping } from "../helpers/netns.js";

const WIREGUARD_GO = "/usr/bin/wireguard-go";

const skip = kernelSkipReason() ?? (havePing ? undefined : "needs ping (iputils-ping)");
const skipWireguard = skip ?? (existsSync(WIREGUARD_GO) ? undefined : `needs ${WIREGUARD_GO}`);

const namespaces = new NetnsSet("nsmr");
const addNetns = (role: string) => namespaces.add(role);

const links = (ns: string) => ipJson(ns, "link");
const linkNames = (ns: string) => links(ns).map((l) => l.ifname as string);

/** Every wireguard-go started, in order. */
const started: WireguardDevice[] = [];

describe("remote connections on the real kernel", { skip }, () => {
  let kernel: KernelApi;
  let node1: string;
  let node2: string;
  let nsc: string;
  let nse: string;
  let f1: KernelForwarderElements;
  let f2: KernelForwarderElements;
  let nscSide: NetworkServiceHandler;
  const run = randomBytes(3).toString("hex");

  const request = (n: number, payload: string): NetworkServiceRequest =>
    create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: `${run}-conn-${n}`, networkService: "icmp-responder", payload }),
      mechanismPreferences: [
        newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${nsPath(nsc)}`, name: `nsm-${n}` }),
      ],
    });

  const timed = async (n: number, payload: string) => {
    const t0 = performance.now();
    const conn = await nscSide.request(request(n, payload), CallContext.create());
    return { conn, ms: performance.now() - t0 };
  };

  before(async () => {
    kernel = createNetlinkKernel();
    node1 = addNetns("node1");
    node2 = addNetns("node2");
    nsc = addNetns("nsc");
    nse = addNetns("nse");
    execFileSync("ip", ["-n", node1, "link", "add", "u0", "type", "veth", "peer", "name", "u1", "netns", node2]);
    execFileSync("ip", ["-n", node1, "addr", "add", "198.18.0.1/24", "dev", "u0"]);
    execFileSync("ip", ["-n", node2, "addr", "add", "198.18.0.2/24", "dev", "u1"]);
    execFileSync("ip", ["-n", node1, "link", "set", "u0", "up"]);
    execFileSync("ip", ["-n", node2, "link", "set", "u1", "up"]);
    const wireguard = (node: string) =>
      skipWireguard
        ? (false as const)
        : {
            runner: recordingRunner(
              createWireguardGoRunner({ launcher: ["nsenter", `--net=${nsPath(node)}`] }),
              started,
            ),
          };
    f1 = await kernelForwarderElements({
      netnsOwnership: insecureNetnsOwnership(),
      kernel,
      tunnelIp: "198.18.0.1",
      tunnelNetns: nsPath(node1),
      wireguard: wireguard(node1),
    });
    f2 = await kernelForwarderElements({
      netnsOwnership: insecureNetnsOwnership(),
      kernel,
      tunnelIp: "198.18.0.2",
      tunnelNetns: nsPath(node2),
      wireguard: wireguard(node2),
    });
    const nseSide = forwarderChain(
      f2,
      "unix:///nse.sock",
      p2pEndpoint(nsPath(nse), { interfaceName: (n) => `icmp-nse-${n + 1}` }).element,
    );
    nscSide = forwarderChain(
      f1,
      "tcp://198.18.0.2:5001",
      hop(() => nseSide, "remote-"),
    );
  });

  after(async () => {
    await f1?.dispose();
    await f2?.dispose();
    await kernel?.close();
    namespaces.deleteAll();
  });

  it("VXLAN (ETHERNET): nsm-1 in the client pod pings the endpoint and back; MTU = underlay − 50; devices live as long as the connection", async (t) => {
    assert.equal(f1.underlayMtu, 1500);
    const { conn, ms } = await timed(1, Payload.ETHERNET);
    t.diagnostic(`VXLAN connection setup (both forwarders, NSE stub): ${ms.toFixed(1)} ms`);

    const [c] = ipJson(nsc, "link", "show", "nsm-1");
    assert.equal(c.linkinfo.info_kind, "vxlan");
    assert.equal(c.mtu, 1450);
    assert.equal(c.ifalias, `nsm:client:forwarder:${run}-conn-1`);
    assert.equal(c.linkinfo.info_data.local, "198.18.0.1");
    assert.equal(c.linkinfo.info_data.remote, "198.18.0.2");
    assert.equal(c.linkinfo.info_data.port, 4789);
    const vni = c.linkinfo.info_data.id as number;
    assert.equal(vni % 2, 0, "parity: 198.18.0.1 ≤ 198.18.0.2 → even");
    const [e] = ipJson(nse, "link", "show", "icmp-nse-1");
    assert.equal(e.linkinfo.info_kind, "vxlan");
    assert.equal(e.linkinfo.info_data.id, vni);
    assert.equal(e.linkinfo.info_data.local, "198.18.0.2");
    assert.equal(e.mtu, 1450);
    assert.deepEqual(
      (await listTaggedLinks(kernel, nsPath(nse))).map((l) => [l.side, l.link.name]),
      [["endpoint", "icmp-nse-1"]],
    );
    // The devices live in the pods, their UDP sockets in the nodes.
    assert.deepEqual(linkNames(node1).sort(), ["lo", "u0"]);
    const udp = (ns: string) => execFileSync("ip", ["netns", "exec", ns, "cat", "/proc/net/udp"], { encoding: "utf8" });
    assert.match(udp(node1), /:12B5 /, "VXLAN socket (port 4789) in node1's netns");
    assert.doesNotMatch(udp(nsc), /:12B5 /, "and not in the pod's");

    assert.ok(ping(nsc, "172.16.1.100"), "client → endpoint");
    assert.ok(ping(nse, "172.16.1.101"), "endpoint → client");
    const big = spawnSync("ip", [
      "netns",
      "exec",
      nsc,
      "ping",
      "-c",
      "1",
      "-W",
      "2",
      "-M",
      "do",
      "-s",
      "1422",
      "172.16.1.100",
    ]);
    assert.equal(big.status, 0, "a 1450-byte packet (DF) crosses the tunnel");

    const again = await nscSide.request(
      create(NetworkServiceRequestSchema, { connection: conn }),
      CallContext.create(),
    );
    assert.equal(ipJson(nsc, "link", "show", "nsm-1")[0].ifindex, c.ifindex, "refresh keeps the device");
    await nscSide.close(again, CallContext.create());
    assert.deepEqual(linkNames(nsc), ["lo"]);
    assert.deepEqual(linkNames(nse), ["lo"]);
    assert.doesNotMatch(udp(node1), /:12B5 /, "the socket went with the last device");
  });

  it("VXLAN: 4 connections on one node pair get distinct VNIs; closing one leaves the others working", async (t) => {
    const conns: Connection[] = [];
    const times: number[] = [];
    for (let n = 1; n <= 4; n++) {
      const { conn, ms } = await timed(n, Payload.ETHERNET);
      conns.push(conn);
      times.push(ms);
    }
    t.diagnostic(`VXLAN setup per connection: ${times.map((x) => x.toFixed(1)).join(", ")} ms`);
    const vnis = [1, 2, 3, 4].map((n) => ipJson(nsc, "link", "show", `nsm-${n}`)[0].linkinfo.info_data.id as number);
    assert.equal(new Set(vnis).size, 4, `distinct VNIs: ${vnis}`);
    for (let n = 0; n < 4; n++) assert.ok(ping(nsc, `172.16.1.${100 + 2 * n}`), `connection ${n + 1} answers`);
    await nscSide.close(conns[1]!, CallContext.create());
    assert.deepEqual(linkNames(nsc).sort(), ["lo", "nsm-1", "nsm-3", "nsm-4"]);
    for (const n of [0, 2, 3]) assert.ok(ping(nsc, `172.16.1.${100 + 2 * n}`), `connection ${n + 1} still answers`);
    assert.ok(!ping(nsc, "172.16.1.102", 1), "the closed one does not");
    for (const i of [0, 2, 3]) await nscSide.close(conns[i]!, CallContext.create());
    assert.deepEqual(linkNames(nsc), ["lo"]);
    assert.deepEqual(linkNames(nse), ["lo"]);
  });

  it("WireGuard (IP) over wireguard-go: pings both ways, MTU = underlay − 80, processes gone after Close", {
    skip: skipWireguard,
  }, async (t) => {
    const { conn, ms } = await timed(1, Payload.IP);
    t.diagnostic(`WireGuard connection setup (two wireguard-go started and configured): ${ms.toFixed(1)} ms`);
    const [c] = ipJson(nsc, "link", "show", "nsm-1");
    assert.equal(c.linkinfo?.info_kind, "tun");
    assert.equal(c.mtu, 1420);
    assert.equal(c.ifalias, `nsm:client:forwarder:${run}-conn-1`);
    const [e] = ipJson(nse, "link", "show", "icmp-nse-1");
    assert.equal(e.mtu, 1420);
    assert.deepEqual(linkNames(node1).sort(), ["lo", "u0"], "the TUN left the node's netns");

    assert.equal(started.length, 2, "one wireguard-go per node");
    for (const d of started) {
      assert.match(readFileSync(`/proc/${d.pid}/cmdline`, "utf8"), new RegExp(`wireguard-go\0-f\0${d.name}\0`));
      assert.ok(existsSync(`/var/run/wireguard/${d.name}.sock`));
    }
    // The NSE side's forwarder builds its end first (its Request returns first).
    assert.deepEqual(
      started.map((d) => statSync(`/proc/${d.pid}/ns/net`).ino).sort(),
      [statSync(nsPath(node1)).ino, statSync(nsPath(node2)).ino].sort(),
      "each wireguard-go runs in its node's netns",
    );
    const pids = started.map((d) => d.pid);

    assert.ok(ping(nsc, "172.16.1.100", 5), "client → endpoint over WireGuard");
    assert.ok(ping(nse, "172.16.1.101"), "endpoint → client");
    const big = spawnSync("ip", [
      "netns",
      "exec",
      nsc,
      "ping",
      "-c",
      "1",
      "-W",
      "2",
      "-M",
      "do",
      "-s",
      "1392",
      "172.16.1.100",
    ]);
    assert.equal(big.status, 0, "a 1420-byte packet (DF) crosses the tunnel");

    const again = await nscSide.request(
      create(NetworkServiceRequestSchema, { connection: conn }),
      CallContext.create(),
    );
    assert.equal(ipJson(nsc, "link", "show", "nsm-1")[0].ifindex, c.ifindex, "refresh keeps the TUN");
    await nscSide.close(again, CallContext.create());
    assert.deepEqual(linkNames(nsc), ["lo"]);
    assert.deepEqual(linkNames(nse), ["lo"]);
    for (const pid of pids) assert.ok(!existsSync(`/proc/${pid}`), `wireguard-go ${pid} has exited`);
    // Only this test's devices: other test files may run wireguard-go at the same time.
    for (const d of started)
      assert.ok(!existsSync(`/var/run/wireguard/${d.name}.sock`), `${d.name}'s UAPI socket removed`);
  });
});
