// SPDX-License-Identifier: Apache-2.0
/**
 * Reconciliation after a forwarder restart, against the fake KernelApi (the real-kernel
 * counterpart is test/kernel/reconcile.test.ts).
 *
 * A "life" is one `kernelForwarderElements()` instance; a restart drops it without Close or
 * dispose (what SIGKILL does) and builds a new one with the same owner on the same fake machine
 * (kernel and wireguard-go processes survive). The chains are forwarder-shaped, as in
 * remote.test.ts: NSC-side forwarder → hop (the other node's forwarder, its own connection id)
 * → NSE-side forwarder → fake NSE; a unix next hop makes a local (veth) connection.
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
import type { Logger } from "../../../sdk/core/logger.js";
import { createPortPool } from "../../../sdk/networkservice/common/wireguard/index.js";
import { createFakeKernel, type FakeKernel } from "../../fake.js";
import {
  connectionInterfaceName,
  type KernelForwarderElementsOptions,
  kernelForwarderElements,
  wireguardPublicKey,
} from "../index.js";
import { fakeWireguardRunner, forwarderChain, hop, instrumentKernel, p2pEndpoint, uncheckedNetns } from "../testing.js";

const NODE1 = "/var/run/netns/node1";
const NODE2 = "/var/run/netns/node2";
const NSC = "/var/run/netns/nsc";
const NSE = "/var/run/netns/nse";
const OTHER = "/var/run/netns/other-pod";
const ctx = () => CallContext.create();
const LOCAL_NSE = "unix:///var/lib/networkservicemesh/nse.sock";
const REMOTE_NSMGR = "tcp://198.18.0.2:5001";

/** The endpoint's interface of connection `id` (at the NSE-side forwarder), as the forwarder names it. */
const nseIf = (id: string) => connectionInterfaceName("icmp-responder", id);

function request(id: string, payload: string, name = "nsm-1"): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id, networkService: "icmp-responder", payload }),
    mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${NSC}`, name })],
  });
}

/** The NSC's heal after the control plane broke: the same connection, on the same path. */
const refresh = (conn: Connection) =>
  create(NetworkServiceRequestSchema, { connection: clone(ConnectionSchema, conn) });

/** A logger that keeps every entry. */
function recordingLog() {
  const entries: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (a: unknown, b?: unknown): void => {
      const [fields, msg] = typeof a === "string" ? [{}, a] : [a as Record<string, unknown>, String(b)];
      entries.push({ level, msg, fields });
    };
  const log = {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => log,
    isLevelEnabled: () => true,
  } as unknown as Logger;
  return { log, entries };
}

describe("reconciliation after a restart (fake kernel)", () => {
  let fake: FakeKernel;
  let k: ReturnType<typeof instrumentKernel>;
  let wg1: ReturnType<typeof fakeWireguardRunner>;
  let wg2: ReturnType<typeof fakeWireguardRunner>;

  beforeEach(async () => {
    fake = createFakeKernel();
    for (const ns of [NODE1, NODE2, NSC, NSE, OTHER]) fake.addNetns(ns);
    await fake.createVeth(NODE1, { name: "u0", peer: { name: "u1", netns: NODE2 } });
    await fake.replaceAddress(NODE1, "u0", "198.18.0.1/24");
    await fake.replaceAddress(NODE2, "u1", "198.18.0.2/24");
    k = instrumentKernel(fake);
    wg1 = fakeWireguardRunner(fake, NODE1);
    wg2 = fakeWireguardRunner(fake, NODE2);
  });

  /** One life of the NSC-side forwarder (node 1). */
  const life1 = (o: Partial<KernelForwarderElementsOptions> = {}) =>
    kernelForwarderElements({
      netnsOwnership: uncheckedNetns,
      kernel: k.kernel,
      tunnelIp: "198.18.0.1",
      tunnelNetns: NODE1,
      wireguard: { runner: wg1.runner, privateKey: randomBytes(32) },
      owner: "fwd-1",
      reconcileGraceMs: 3_600_000,
      ...o,
    });

  /** The NSE-side forwarder (node 2), which does not restart. */
  const node2 = async () => {
    const f2 = await kernelForwarderElements({
      netnsOwnership: uncheckedNetns,
      kernel: k.kernel,
      tunnelIp: "198.18.0.2",
      tunnelNetns: NODE2,
      wireguard: { runner: wg2.runner, privateKey: randomBytes(32) },
      owner: "fwd-2",
    });
    return forwarderChain(f2, LOCAL_NSE, p2pEndpoint(NSE).element);
  };

  const link = (ns: string, name: string) => fake.findLink(ns, name);
  const names = async (ns: string) => (await fake.listLinks(ns)).map((l) => l.name).sort();

  it("local: the refreshed connection's pair is re-adopted (same ifindex, no delete/create); the other is swept", async () => {
    const first = await life1();
    const fwd = forwarderChain(first, LOCAL_NSE, p2pEndpoint(NSE).element);
    const c1 = await fwd.request(request("conn-1", Payload.ETHERNET, "nsm-1"), ctx());
    await fwd.request(request("conn-2", Payload.ETHERNET, "nsm-2"), ctx());
    const before = { c: (await link(NSC, "nsm-1"))!.index, e: (await link(NSE, nseIf("conn-1")))!.index };
    // A pair of another forwarder sharing the kernel, and an untagged interface.
    await fake.createVeth(OTHER, { name: "nsm-9", peer: { name: "peer-9", netns: NSE } });
    await fake.setLink(OTHER, "nsm-9", { alias: "nsm:client:fwd-3:conn-9" });
    await fake.setLink(NSE, "peer-9", { alias: "nsm:endpoint:fwd-3:conn-9" });
    await fake.createBridge(OTHER, { name: "br0" });

    // kill -9: `first` is dropped, nothing closed.
    const { log, entries } = recordingLog();
    const second = await life1({ log });
    assert.deepEqual(
      second.reconciliation!.found.links.map((l) => `${l.connectionId}:${l.side}:${l.name}`).sort(),
      [
        "conn-1:client:nsm-1",
        `conn-1:endpoint:${nseIf("conn-1")}`,
        "conn-2:client:nsm-2",
        `conn-2:endpoint:${nseIf("conn-2")}`,
      ].sort(),
      "only its own links are candidates",
    );
    const fwd2 = forwarderChain(second, LOCAL_NSE, p2pEndpoint(NSE).element);
    const from = k.calls.length;
    await fwd2.request(refresh(c1), CallContext.create({ log }));
    const mutations = k.calls.slice(from);
    assert.ok(!mutations.includes("createVeth") && !mutations.includes("deleteLink"), mutations.join(","));
    assert.deepEqual({ c: (await link(NSC, "nsm-1"))!.index, e: (await link(NSE, nseIf("conn-1")))!.index }, before);
    assert.ok(
      entries.some((e) => e.msg.includes("re-adopted") && e.fields.connId === "conn-1"),
      "the adoption is logged with the connection id",
    );

    const report = await second.reconciliation!.sweep();
    assert.deepEqual(report.adopted, ["conn-1"]);
    assert.deepEqual(report.deleted, ["conn-2"]);
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"], "conn-2's pair is gone, conn-1's kept");
    assert.deepEqual(await names(NSE), ["lo", nseIf("conn-1"), "peer-9"].sort());
    assert.deepEqual(await names(OTHER), ["br0", "lo", "nsm-9"], "another owner's links are untouched");
    assert.equal((await link(NSC, "nsm-1"))!.index, before.c);
    assert.ok(entries.some((e) => e.msg === "deleted an orphan interface" && e.fields.connId === "conn-2"));
    assert.ok(entries.some((e) => e.msg === "reconciliation done"));
    assert.equal(await second.reconciliation!.swept, report);

    // The adopted connection is a connection of this life: Close removes it.
    await fwd2.close(c1, ctx());
    assert.deepEqual(await names(NSC), ["lo"]);
    await second.dispose();
  });

  it("the sweep runs by itself when the grace period ends; dispose before it deletes nothing", async () => {
    const fwd = forwarderChain(await life1(), LOCAL_NSE, p2pEndpoint(NSE).element);
    await fwd.request(request("conn-1", Payload.ETHERNET), ctx());

    const early = await life1({ reconcileGraceMs: 20 });
    await early.dispose();
    assert.equal((await early.reconciliation!.swept).cancelled, true);
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);

    const t0 = Date.now();
    const later = await life1({ reconcileGraceMs: 30 });
    // The sweep's timer does not keep a process alive (the forwarder's server does): this does.
    const keepAlive = setTimeout(() => {}, 5000);
    const report = await later.reconciliation!.swept;
    clearTimeout(keepAlive);
    assert.ok(Date.now() - t0 >= 25, "not before the grace period");
    assert.deepEqual([report.deleted, report.cancelled], [["conn-1"], false]);
    assert.deepEqual(await names(NSC), ["lo"]);
    assert.deepEqual(await names(NSE), ["lo"]);
    await later.dispose();
  });

  it("without candidates there is nothing to wait for; without reconcileGraceMs nothing is swept", async () => {
    const none = await life1();
    assert.deepEqual(none.reconciliation!.found, { links: [], processes: [] });
    assert.equal((await none.reconciliation!.swept).deleted.length, 0);
    const fwd = forwarderChain(none, LOCAL_NSE, p2pEndpoint(NSE).element);
    await fwd.request(request("conn-1", Payload.ETHERNET), ctx());
    const off = await life1({ reconcileGraceMs: undefined });
    assert.equal(off.reconciliation, undefined);
  });

  it("a Request arriving while the sweep deletes its links waits, then builds anew", async () => {
    const fwd = forwarderChain(await life1(), LOCAL_NSE, p2pEndpoint(NSE).element);
    const c1 = await fwd.request(request("conn-1", Payload.ETHERNET), ctx());
    const old = (await link(NSC, "nsm-1"))!.index;
    const second = await life1();
    const sweeping = second.reconciliation!.sweep();
    // The sweep has not claimed conn-1 yet when this arrives; whichever comes first, the result
    // is one working pair and no error.
    const fwd2 = forwarderChain(second, LOCAL_NSE, p2pEndpoint(NSE).element);
    await new Promise((r) => setImmediate(r));
    await fwd2.request(refresh(c1), ctx());
    const report = await sweeping;
    const now = await link(NSC, "nsm-1");
    assert.ok(now, "the connection has its interface");
    assert.equal(now.alias, "nsm:client:fwd-1:conn-1");
    if (report.deleted.includes("conn-1")) assert.notEqual(now.index, old, "deleted, then built anew");
    else assert.equal(now.index, old, "adopted before the sweep reached it");
    assert.deepEqual(await names(NSE), ["lo", nseIf("conn-1")].sort());
  });

  it("VXLAN: re-adopted with the same VNI, no new device; the VNI of an orphan is held until it is swept", async () => {
    const nseSide = await node2();
    const first = await life1();
    const c1 = await forwarderChain(
      first,
      REMOTE_NSMGR,
      hop(() => nseSide),
    ).request(request("conn-1", Payload.ETHERNET, "nsm-1"), ctx());
    await forwarderChain(
      first,
      REMOTE_NSMGR,
      hop(() => nseSide),
    ).request(request("conn-2", Payload.ETHERNET, "nsm-2"), ctx());
    const before = (await link(NSC, "nsm-1"))!;
    const vni2 = (await link(NSC, "nsm-2"))!.vxlan!.vni;

    const second = await life1();
    assert.deepEqual(second.reconciliation!.found.links.map((l) => [l.connectionId, l.vni]).sort(), [
      ["conn-1", before.vxlan!.vni],
      ["conn-2", vni2],
    ]);
    const nscSide = forwarderChain(
      second,
      REMOTE_NSMGR,
      hop(() => nseSide),
    );
    const from = k.calls.length;
    await nscSide.request(refresh(c1), ctx());
    const mutations = k.calls.slice(from);
    assert.ok(!mutations.includes("createVxlan") && !mutations.includes("deleteLink"), mutations.join(","));
    const after = (await link(NSC, "nsm-1"))!;
    assert.deepEqual([after.index, after.vxlan!.vni, after.mtu], [before.index, before.vxlan!.vni, before.mtu]);

    const report = await second.reconciliation!.sweep();
    assert.deepEqual([report.adopted, report.deleted], [["conn-1"], ["conn-2"]]);
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);
    assert.equal(
      (await link(NSE, nseIf("f2-conn-2")))?.kind,
      "vxlan",
      "the other node's forwarder is not ours to sweep",
    );
  });

  it("WireGuard: the running wireguard-go is adopted (re-configured with the new key, same port, same TUN); an orphan one is stopped by the sweep", async () => {
    const nseSide = await node2();
    const first = await life1();
    const c1 = await forwarderChain(
      first,
      REMOTE_NSMGR,
      hop(() => nseSide),
    ).request(request("conn-1", Payload.IP, "nsm-1"), ctx());
    const c2 = await forwarderChain(
      first,
      REMOTE_NSMGR,
      hop(() => nseSide),
    ).request(request("conn-2", Payload.IP, "nsm-2"), ctx());
    const tun = (await link(NSC, "nsm-1"))!;
    const [p1, p2] = [...wg1.live.values()];
    const port1 = wg1.configs.get(p1!.name)!.listenPort;
    const port2 = wg1.configs.get(p2!.name)!.listenPort;
    const startedOn2 = wg2.started.length;

    const key = randomBytes(32);
    const second = await life1({ wireguard: { runner: wg1.runner, privateKey: key } });
    assert.deepEqual(
      second.reconciliation!.found.processes.map((p) => [p.connectionId, p.pid, p.listenPort]),
      [
        ["conn-1", p1!.pid, port1],
        ["conn-2", p2!.pid, port2],
      ],
    );
    const nscSide = forwarderChain(
      second,
      REMOTE_NSMGR,
      hop(() => nseSide),
    );
    // conn-2 is refreshed first: it must get its own port back, not the lowest free one.
    await nscSide.request(refresh(c2), ctx());
    await nscSide.request(refresh(c1), ctx());
    assert.equal(wg1.started.length, 2, "no new wireguard-go on the restarted node");
    assert.equal(wg2.started.length, startedOn2, "the peer re-configured its wireguard-go in place");
    const cfg = wg1.configs.get(p1!.name)!;
    assert.deepEqual(cfg.privateKey, key, "re-configured with the new private key");
    assert.equal(cfg.listenPort, port1);
    assert.equal(wg1.configs.get(p2!.name)!.listenPort, port2);
    const peerCfg = [...wg2.configs.values()].find((c) => c.endpoint.port === port1)!;
    assert.deepEqual(peerCfg.peerPublicKey, wireguardPublicKey(key), "the peer got the new public key");
    assert.equal((await link(NSC, "nsm-1"))!.index, tun.index, "same TUN");

    // Now conn-1 only: conn-2's orphan goes at the sweep.
    const third = await life1();
    await forwarderChain(
      third,
      REMOTE_NSMGR,
      hop(() => nseSide),
    ).request(refresh(c1), ctx());
    const report = await third.reconciliation!.sweep();
    assert.deepEqual([report.adopted, report.deleted], [["conn-1"], ["conn-2"]]);
    assert.deepEqual(
      report.processes.map((p) => p.pid),
      [p2!.pid],
    );
    assert.deepEqual(wg1.stopped, [p2!.pid], "stopped by PID; conn-1's still runs");
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);
    await third.dispose();
    assert.deepEqual(wg1.stopped.sort(), [p1!.pid, p2!.pid].sort(), "dispose stops the adopted one too");
  });

  it("the NSE-side forwarder restarts: its VXLAN device and its wireguard-go are re-adopted the same way", async () => {
    const node2Life = (key = randomBytes(32)) =>
      kernelForwarderElements({
        netnsOwnership: uncheckedNetns,
        kernel: k.kernel,
        tunnelIp: "198.18.0.2",
        tunnelNetns: NODE2,
        wireguard: { runner: wg2.runner, privateKey: key },
        owner: "fwd-2",
        reconcileGraceMs: 3_600_000,
      });
    let nseSide = forwarderChain(await node2Life(), LOCAL_NSE, p2pEndpoint(NSE).element);
    const nscSide = forwarderChain(
      await life1(),
      REMOTE_NSMGR,
      hop(() => nseSide),
    );
    const vx = await nscSide.request(request("conn-1", Payload.ETHERNET, "nsm-1"), ctx());
    const wg = await nscSide.request(request("conn-2", Payload.IP, "nsm-2"), ctx());
    const before = {
      vx: (await link(NSE, nseIf("f2-conn-1")))!,
      wg: (await link(NSE, nseIf("f2-conn-2")))!,
      started: wg2.started.length,
    };

    const key = randomBytes(32);
    const restarted = await node2Life(key);
    nseSide = forwarderChain(restarted, LOCAL_NSE, p2pEndpoint(NSE).element);
    await nscSide.request(refresh(vx), ctx());
    await nscSide.request(refresh(wg), ctx());
    const now = { vx: (await link(NSE, nseIf("f2-conn-1")))!, wg: (await link(NSE, nseIf("f2-conn-2")))! };
    assert.deepEqual([now.vx.index, now.vx.vxlan!.vni], [before.vx.index, before.vx.vxlan!.vni]);
    assert.equal(now.wg.index, before.wg.index);
    assert.equal(wg2.started.length, before.started, "no new wireguard-go on node 2");
    assert.deepEqual([...wg2.configs.values()].at(-1)!.privateKey, key);
    const report = await restarted.reconciliation!.sweep();
    assert.deepEqual([report.adopted.sort(), report.deleted], [["f2-conn-1", "f2-conn-2"], []]);
  });

  it("a wireguard-go or link of another owner is never a candidate", async () => {
    await wg1.runner.start("nsmwgforeign", "nsm:client:fwd-3:conn-7");
    await fake.createVxlan(NODE1, { name: "nsm-7", vni: 70, netns: NSC, local: "198.18.0.1", remote: "198.18.0.2" });
    await fake.setLink(NSC, "nsm-7", { alias: "nsm:client:fwd-3:conn-7" });
    const life = await life1();
    assert.deepEqual(life.reconciliation!.found, { links: [], processes: [] });
    await life.reconciliation!.sweep();
    assert.deepEqual(wg1.stopped, []);
    assert.ok(await link(NSC, "nsm-7"));
  });
});

describe("reservable port pool", () => {
  it("reserve() gives an owner a chosen port; acquire() skips reserved ones", () => {
    const pool = createPortPool(100, 3);
    assert.equal(pool.reserve("a", 100), true);
    assert.equal(pool.reserve("b", 100), false, "held by another");
    assert.equal(pool.reserve("b", 103), false, "outside the range");
    assert.equal(pool.acquire("c"), 101);
    assert.equal(pool.acquire("a"), 100, "what it holds");
    assert.equal(pool.reserve("a", 102), true, "moves");
    assert.equal(pool.acquire("d"), 100);
    assert.equal(pool.size, 3);
    assert.throws(() => pool.acquire("e"), /in use/);
    pool.release("a");
    assert.equal(pool.heldBy("a"), undefined);
    assert.equal(pool.acquire("e"), 102);
  });
});
