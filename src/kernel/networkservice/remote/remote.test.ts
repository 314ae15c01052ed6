// SPDX-License-Identifier: Apache-2.0
/**
 * The remote cross-connect against the fake KernelApi: two forwarder-shaped chains built from
 * `kernelForwarderElements()` on one fake machine, joined the way an nsmgr would join them
 * (the NSE-side forwarder sees its own connection id), in front of a fake NSE.
 *
 * NSC-side: metadata → mechanisms(server) → additional → connect(client: metadata → clienturl →
 * mechanismtranslation → mechanisms(client) → additionalClient → filtermechanisms → hop).
 * NSE-side: the same, with a unix client URL and the fake NSE at the end.
 * The WireGuard runner is a fake that creates the TUN wireguard-go would create.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { beforeEach, describe, it } from "node:test";
import {
  Cls,
  type Connection,
  ConnectionSchema,
  clone,
  create,
  MechanismType,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  newMechanism,
  Payload,
} from "../../../api/index.js";
import { CallContext } from "../../../sdk/core/context.js";
import { Code, type NsmError } from "../../../sdk/core/errors.js";
import { nsmErrorFromErrno } from "../../errors.js";
import { createFakeKernel, type FakeKernel } from "../../fake.js";
import {
  type KernelForwarderElementsOptions,
  kernelForwarderElements,
  WIREGUARD_NAME_PREFIX,
  wireguardPublicKey,
} from "../index.js";
import {
  type FakeEndpoint,
  fakeWireguardRunner,
  forwarderChain,
  hop,
  instrumentKernel,
  p2pEndpoint,
  uncheckedNetns,
} from "../testing.js";

const NODE1 = "/var/run/netns/node1";
const NODE2 = "/var/run/netns/node2";
const NSC = "/var/run/netns/nsc";
const NSE = "/var/run/netns/nse";
const NSE_IF = "icmp-nse-1";
/** The endpoint's interface name when the forwarder's request names none. */
const nseInterface = (_n: number, conn: Connection) => `${NSE_IF.slice(0, 9)}-${conn.id.slice(-4)}`;
const ctx = () => CallContext.create();

function request(id: string, payload: string, name = "nsm-1"): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id, networkService: "icmp-responder", payload }),
    mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${NSC}`, name })],
  });
}

/** A refresh: the connection as the client got it, its mechanism set. */
function refresh(conn: Connection): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, { connection: clone(ConnectionSchema, conn) });
}

describe("remote cross-connect (fake kernel, two forwarders)", () => {
  let fake: FakeKernel;
  let k: ReturnType<typeof instrumentKernel>;
  let nse: FakeEndpoint;
  let wg1: ReturnType<typeof fakeWireguardRunner>;
  let wg2: ReturnType<typeof fakeWireguardRunner>;
  const keys = { f1: randomBytes(32), f2: randomBytes(32) };

  beforeEach(async () => {
    fake = createFakeKernel();
    for (const ns of [NODE1, NODE2, NSC, NSE]) fake.addNetns(ns);
    await fake.createVeth(NODE1, { name: "u0", peer: { name: "u1", netns: NODE2 } });
    await fake.replaceAddress(NODE1, "u0", "198.18.0.1/24");
    await fake.replaceAddress(NODE2, "u1", "198.18.0.2/24");
    k = instrumentKernel(fake);
    nse = p2pEndpoint(NSE, { interfaceName: nseInterface });
    wg1 = fakeWireguardRunner(fake, NODE1);
    wg2 = fakeWireguardRunner(fake, NODE2);
  });

  async function pair(
    o1: Partial<KernelForwarderElementsOptions> = {},
    o2: Partial<KernelForwarderElementsOptions> = {},
  ) {
    const f1 = await kernelForwarderElements({
      netnsOwnership: uncheckedNetns,
      kernel: k.kernel,
      tunnelIp: "198.18.0.1",
      tunnelNetns: NODE1,
      wireguard: { runner: wg1.runner, privateKey: keys.f1 },
      ...o1,
    });
    const f2 = await kernelForwarderElements({
      netnsOwnership: uncheckedNetns,
      kernel: k.kernel,
      tunnelIp: "198.18.0.2",
      tunnelNetns: NODE2,
      wireguard: { runner: wg2.runner, privateKey: keys.f2 },
      ...o2,
    });
    const nseSide = forwarderChain(f2, "unix:///var/lib/networkservicemesh/nse.sock", nse.element);
    const nscSide = forwarderChain(
      f1,
      "tcp://198.18.0.2:5001",
      hop(() => nseSide),
    );
    return { f1, f2, nscSide, nseSide };
  }

  const names = async (ns: string) => (await fake.listLinks(ns)).map((l) => l.name);
  const addrs = async (ns: string) => (await fake.listAddresses(ns)).map((a) => a.cidr);

  it("VXLAN (ETHERNET): one device per side, in the pods, with the VNI, tunnel ends, MTU − 50, tags and IP context", async () => {
    const { nscSide } = await pair();
    const conn = await nscSide.request(request("conn-1", Payload.ETHERNET), ctx());
    assert.equal(conn.mechanism!.type, MechanismType.KERNEL, "upstream still sees its KERNEL mechanism");
    assert.equal(conn.context!.MTU, 1450);

    const c = await fake.getLink(NSC, "nsm-1");
    const e = (await fake.listLinks(NSE)).find((l) => l.kind === "vxlan")!;
    assert.equal(c.kind, "vxlan");
    assert.deepEqual(c.vxlan, {
      vni: c.vxlan!.vni,
      port: 4789,
      learning: false,
      local: "198.18.0.1",
      remote: "198.18.0.2",
    });
    assert.deepEqual(e.vxlan, {
      vni: c.vxlan!.vni,
      port: 4789,
      learning: false,
      local: "198.18.0.2",
      remote: "198.18.0.1",
    });
    assert.equal(c.vxlan!.vni % 2, 0, "src 198.18.0.1 ≤ dst 198.18.0.2: even VNI");
    assert.deepEqual([c.mtu, e.mtu], [1450, 1450]);
    assert.deepEqual([c.up, e.up], [true, true]);
    assert.equal(c.alias, "nsm:client:forwarder:conn-1");
    assert.equal(e.alias, "nsm:endpoint:forwarder:f2-conn-1");
    assert.deepEqual(await addrs(NSC), ["172.16.1.101/32"]);
    assert.deepEqual(await addrs(NSE), ["172.16.1.100/32"]);
    assert.deepEqual(
      (await fake.listRoutes(NSC)).map((r) => r.dst),
      ["172.16.1.100/32"],
    );
    assert.deepEqual(await names(NODE1), ["lo", "u0"], "nothing stays in the node's netns");
    assert.deepEqual(await names(NODE2), ["lo", "u1"]);
    assert.equal(fake.readSysctl(NSC, "net.ipv4.ping_group_range"), "0 2147483647");
    assert.equal(wg1.live.size + wg2.live.size, 0, "no wireguard-go for VXLAN");
  });

  it("a refresh with no change touches nothing; Close removes both devices", async () => {
    const { nscSide } = await pair();
    const conn = await nscSide.request(request("conn-1", Payload.ETHERNET), ctx());
    const vni = (await fake.getLink(NSC, "nsm-1")).vxlan!.vni;
    const before = k.calls.length;
    const again = await nscSide.request(refresh(conn), ctx());
    assert.deepEqual(k.mutations(before), []);
    assert.deepEqual(k.calls.slice(before), [], "not even a read");
    assert.equal(nse.requests, 2, "the refresh went all the way to the NSE");
    assert.equal((await fake.getLink(NSC, "nsm-1")).vxlan!.vni, vni, "same VNI after the refresh");
    await nscSide.close(again, ctx());
    assert.deepEqual(await names(NSC), ["lo"]);
    assert.deepEqual(await names(NSE), ["lo"]);
    assert.equal(nse.closes, 1);
  });

  it("a changed IP context is applied as a diff on the same device; a failed update is re-applied on the next refresh", async () => {
    const { nscSide } = await pair();
    const conn = await nscSide.request(request("conn-1", Payload.ETHERNET), ctx());
    const index = (await fake.getLink(NSC, "nsm-1")).index;
    nse.extraSrcRoutes = ["10.60.0.0/16"];
    let before = k.calls.length;
    await nscSide.request(refresh(conn), ctx());
    assert.deepEqual(k.mutations(before), ["replaceRoute"]);
    assert.equal((await fake.getLink(NSC, "nsm-1")).index, index, "same device");
    const routes = async () =>
      (await fake.listRoutes(NSC)).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}`).sort();
    assert.deepEqual(await routes(), ["10.60.0.0/16 via 172.16.1.100", "172.16.1.100/32"]);

    nse.extraSrcRoutes = ["10.70.0.0/16"];
    k.failWhen((method) => (method === "replaceRoute" ? nsmErrorFromErrno(22, "replace route") : undefined));
    await assert.rejects(nscSide.request(refresh(conn), ctx()), { code: Code.InvalidArgument });
    assert.equal(nse.closes, 0, "a failed refresh keeps the connection");
    k.failWhen(undefined);
    before = k.calls.length;
    await nscSide.request(refresh(conn), ctx());
    assert.ok(k.mutations(before).length > 0, "the next refresh re-applies");
    assert.deepEqual(await routes(), ["10.70.0.0/16 via 172.16.1.100", "172.16.1.100/32"]);
  });

  it("propagates downstream errors without touching the kernel; Close twice is harmless", async () => {
    const { nscSide } = await pair();
    nse.failure = nsmErrorFromErrno(13, "nse says no");
    const before = k.calls.length;
    await assert.rejects(nscSide.request(request("conn-1", Payload.ETHERNET), ctx()), {
      code: Code.PermissionDenied,
    });
    assert.deepEqual(k.mutations(before), []);
    nse.failure = undefined;
    const conn = await nscSide.request(request("conn-1", Payload.ETHERNET), ctx());
    await nscSide.close(conn, ctx());
    await nscSide.close(conn, ctx());
    assert.deepEqual(await names(NSC), ["lo"]);
    assert.deepEqual(await names(NSE), ["lo"]);
  });

  it("4 connections on one node pair get distinct VNIs; closing one leaves the others", async () => {
    const { nscSide } = await pair();
    const conns: Connection[] = [];
    for (let i = 1; i <= 4; i++)
      conns.push(await nscSide.request(request(`conn-${i}`, Payload.ETHERNET, `nsm-${i}`), ctx()));
    const vnis = await Promise.all([1, 2, 3, 4].map(async (i) => (await fake.getLink(NSC, `nsm-${i}`)).vxlan!.vni));
    assert.equal(new Set(vnis).size, 4);
    await nscSide.close(conns[1]!, ctx());
    assert.deepEqual(await names(NSC), ["lo", "nsm-1", "nsm-3", "nsm-4"]);
    assert.equal((await fake.listLinks(NSE)).filter((l) => l.kind === "vxlan").length, 3);
    for (const i of [0, 2, 3]) await nscSide.close(conns[i]!, ctx());
    assert.deepEqual(await names(NSC), ["lo"]);
    assert.deepEqual(await names(NSE), ["lo"]);
  });

  it("WireGuard (IP): wireguard-go per side in the node netns, keys and ports crossed, TUN moved into the pod, MTU − 80", async () => {
    const { nscSide, f1, f2 } = await pair();
    const conn = await nscSide.request(request("conn-1", Payload.IP), ctx());
    assert.equal(conn.context!.MTU, 1420);
    const c = await fake.getLink(NSC, "nsm-1");
    const e = (await fake.listLinks(NSE)).find((l) => l.kind === "tun")!;
    assert.deepEqual([c.kind, c.mtu, c.up, c.alias], ["tun", 1420, true, "nsm:client:forwarder:conn-1"]);
    assert.deepEqual([e.mtu, e.up, e.alias], [1420, true, "nsm:endpoint:forwarder:f2-conn-1"]);
    assert.deepEqual(await addrs(NSC), ["172.16.1.101/32"]);
    assert.deepEqual(await addrs(NSE), ["172.16.1.100/32"]);
    assert.deepEqual(await names(NODE1), ["lo", "u0"], "the TUN left the node's netns");

    const [[n1, c1]] = [...wg1.configs];
    const [[n2, c2]] = [...wg2.configs];
    assert.ok(n1!.startsWith(WIREGUARD_NAME_PREFIX) && n1!.length <= 15 && n1 !== n2);
    assert.ok(c1!.privateKey.equals(keys.f1) && c2!.privateKey.equals(keys.f2));
    assert.ok(c1!.peerPublicKey.equals(wireguardPublicKey(keys.f2)));
    assert.ok(c2!.peerPublicKey.equals(wireguardPublicKey(keys.f1)));
    assert.equal(f1.wireguardPublicKey, wireguardPublicKey(keys.f1).toString("base64"));
    assert.equal(f2.wireguardPublicKey, wireguardPublicKey(keys.f2).toString("base64"));
    assert.deepEqual(c1!.endpoint, { ip: "198.18.0.2", port: c2!.listenPort });
    assert.deepEqual(c2!.endpoint, { ip: "198.18.0.1", port: c1!.listenPort });
    assert.equal(c1!.listenPort, 51820);

    const before = k.calls.length;
    await nscSide.request(refresh(conn), ctx());
    assert.deepEqual(k.calls.slice(before), [], "refresh: no kernel call, no new wireguard-go");
    assert.equal(wg1.live.size, 1);

    await nscSide.close(conn, ctx());
    assert.equal(wg1.live.size + wg2.live.size, 0, "wireguard-go stopped on both nodes");
    assert.deepEqual(await names(NSC), ["lo"]);
    assert.deepEqual(await names(NSE), ["lo"]);
  });

  it("dispose() stops the wireguard-go processes of live connections", async () => {
    const { nscSide, f1, f2 } = await pair();
    await nscSide.request(request("conn-1", Payload.IP), ctx());
    assert.equal(wg1.live.size + wg2.live.size, 2);
    await f1.dispose();
    await f2.dispose();
    await f1.dispose();
    assert.equal(wg1.live.size + wg2.live.size, 0);
  });

  it("a dead wireguard-go is rebuilt on the next refresh", async () => {
    const { nscSide } = await pair();
    const conn = await nscSide.request(request("conn-1", Payload.IP), ctx());
    const [dead] = [...wg1.live.values()];
    await wg1.runner.stop(dead!);
    await fake.deleteLink(NSC, "nsm-1"); // its TUN goes with it
    await nscSide.request(refresh(conn), ctx());
    assert.equal(wg1.live.size, 1);
    assert.notEqual([...wg1.live.keys()][0], dead!.name);
    assert.equal((await fake.getLink(NSC, "nsm-1")).kind, "tun");
  });

  it("payload rules: VXLAN only for ETHERNET, WireGuard only for IP (with neither offered, the remote side refuses)", async () => {
    const eth = await pair({ wireguard: false }, {});
    await eth.nscSide.request(request("conn-1", Payload.ETHERNET), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-1")).kind, "vxlan");
    await assert.rejects(eth.nscSide.request(request("conn-2", Payload.IP, "nsm-2"), ctx()), (e: NsmError) => {
      assert.equal(e.code, Code.InvalidArgument);
      assert.match(e.message, /cannot support any of the requested mechanisms/);
      return true;
    });
    const ip = await pair({ vxlanPort: false }, {});
    await ip.nscSide.request(request("conn-3", Payload.IP, "nsm-3"), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-3")).kind, "tun");
    await assert.rejects(ip.nscSide.request(request("conn-4", Payload.ETHERNET, "nsm-4"), ctx()), {
      code: Code.InvalidArgument,
    });
    assert.deepEqual(await names(NSC), ["lo", "nsm-1", "nsm-3"], "failed requests left nothing");
  });

  it("negotiation: a VXLAN-only client against a VXLAN+WireGuard server gets VXLAN; priority reorders", async () => {
    const both = [Payload.ETHERNET, Payload.IP];
    // IP payload with VXLAN allowed for IP on both sides: the server could do either.
    const vxOnly = await pair({ wireguard: false, vxlanPayloads: both }, { vxlanPayloads: both });
    await vxOnly.nscSide.request(request("conn-1", Payload.IP), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-1")).kind, "vxlan");

    const wgFirst = await pair({ vxlanPayloads: both }, { vxlanPayloads: both });
    await wgFirst.nscSide.request(request("conn-2", Payload.IP, "nsm-2"), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-2")).kind, "tun", "default order: WireGuard first for IP");

    const prio = await pair({ vxlanPayloads: both, mechanismPriority: ["vxlan"] }, { vxlanPayloads: both });
    await prio.nscSide.request(request("conn-3", Payload.IP, "nsm-3"), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-3")).kind, "vxlan", "NSM_MECHANISM_PRIORITY=VXLAN");

    // The client offers both, the server only knows VXLAN: the server skips what it cannot do.
    const srvVx = await pair({ vxlanPayloads: both }, { wireguard: false, vxlanPayloads: both });
    await srvVx.nscSide.request(request("conn-4", Payload.IP, "nsm-4"), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-4")).kind, "vxlan");
  });

  it("same node: a unix next hop gets the local KERNEL mechanism and a veth pair, no tunnel", async () => {
    const f1 = await kernelForwarderElements({
      netnsOwnership: uncheckedNetns,
      kernel: k.kernel,
      tunnelIp: "198.18.0.1",
      tunnelNetns: NODE1,
      wireguard: { runner: wg1.runner, privateKey: keys.f1 },
    });
    const local = forwarderChain(f1, "unix:///var/lib/networkservicemesh/nse.sock", nse.element);
    const conn = await local.request(request("conn-1", Payload.ETHERNET), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-1")).kind, "veth");
    assert.equal((await fake.listLinks(NSE)).find((l) => l.name !== "lo")?.kind, "veth");
    await local.close(conn, ctx());
    assert.deepEqual(await names(NSC), ["lo"]);
  });

  it("a kernel failure on the first Request closes downstream and leaves nothing (the VNI is free again)", async () => {
    const { nscSide } = await pair();
    k.failWhen((method, args) =>
      method === "createVxlan" && args[0] === NODE1 ? nsmErrorFromErrno(1, "create vxlan") : undefined,
    );
    await assert.rejects(nscSide.request(request("conn-1", Payload.ETHERNET), ctx()), { code: Code.PermissionDenied });
    assert.equal(nse.closes, 1);
    assert.deepEqual(await names(NSC), ["lo"]);
    assert.deepEqual(await names(NSE), ["lo"], "the NSE side's device was removed by the Close");
    k.failWhen(undefined);
    await nscSide.request(request("conn-1", Payload.ETHERNET), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-1")).kind, "vxlan");
  });

  it("a foreign interface with the requested name is AlreadyExists and is left alone", async () => {
    const { nscSide } = await pair();
    await fake.createTun(NSC, { name: "nsm-1" });
    await assert.rejects(nscSide.request(request("conn-1", Payload.ETHERNET), ctx()), { code: Code.AlreadyExists });
    assert.equal((await fake.getLink(NSC, "nsm-1")).kind, "tun");
    assert.deepEqual(await names(NSE), ["lo"]);
  });

  it("MTU follows the underlay: 9000 → 8950 for VXLAN", async () => {
    await fake.setLink(NODE1, "u0", { mtu: 9000 });
    await fake.setLink(NODE2, "u1", { mtu: 9000 });
    const { nscSide } = await pair();
    await nscSide.request(request("conn-1", Payload.ETHERNET), ctx());
    assert.equal((await fake.getLink(NSC, "nsm-1")).mtu, 8950);
  });

  it("checks its configuration: the tunnel IP must be on the node; wireguard-go must be able to run there", async () => {
    await assert.rejects(
      kernelForwarderElements({
        netnsOwnership: uncheckedNetns,
        kernel: fake,
        tunnelIp: "198.18.0.9",
        tunnelNetns: NODE1,
      }),
      {
        code: Code.FailedPrecondition,
      },
    );
    await assert.rejects(
      kernelForwarderElements({
        netnsOwnership: uncheckedNetns,
        kernel: fake,
        tunnelIp: "198.18.0.1",
        tunnelNetns: NODE1,
      }),
      {
        code: Code.InvalidArgument,
      },
    );
    const launched = await kernelForwarderElements({
      netnsOwnership: uncheckedNetns,
      kernel: fake,
      tunnelIp: "198.18.0.1",
      tunnelNetns: NODE1,
      wireguard: { launcher: ["nsenter", `--net=${NODE1}`] },
    });
    assert.deepEqual(Object.keys(launched.serverMechanisms).sort(), ["KERNEL", "VXLAN", "WIREGUARD"]);
    await launched.dispose();
    const localOnly = await kernelForwarderElements({ netnsOwnership: uncheckedNetns, kernel: fake });
    assert.deepEqual(Object.keys(localOnly.clientMechanisms), ["KERNEL"]);
  });
});
