// SPDX-License-Identifier: Apache-2.0
/**
 * Reconciliation after a forwarder restart, on the real kernel: veth, VXLAN and WireGuard
 * (wireguard-go). Needs root, the built addon, ping, and for WireGuard /usr/bin/wireguard-go.
 *
 * A "life" is one `kernelForwarderElements()` instance. kill -9 is simulated by dropping it
 * without Close or dispose: its links stay in the pods' namespaces and its wireguard-go
 * processes keep running (they are this test process's children, as they were the forwarder's).
 * A new life with the same owner then (a) re-adopts what a refreshed connection uses (same
 * ifindex, a ping running through the restart is still answered), (b) deletes after the grace
 * period what was not refreshed, (c) never touches what another owner tagged.
 *
 * Namespaces `nsmrc-<hex>-…` (two nodes joined by a veth underlay 198.18.0.1/24 ↔ .2/24, a client
 * pod, an endpoint pod, a bystander pod), deleted in `after`. Owners are unique per run, and the
 * reconciler lists every namespace of the machine but only touches links tagged with its owner.
 * `ip`/`ping` only check what the kernel does.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
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
} from "../../src/api/index.js";
import { createNetlinkKernel, type KernelApi } from "../../src/kernel/index.js";
import {
  connectionInterfaceName,
  createWireguardGoRunner,
  insecureNetnsOwnership,
  type KernelForwarderElements,
  type KernelForwarderElementsOptions,
  kernelForwarderElements,
  type WireguardDevice,
} from "../../src/kernel/networkservice/index.js";
import { forwarderChain, hop, p2pEndpoint, recordingRunner } from "../../src/kernel/networkservice/testing.js";
import type { NetworkServiceHandler } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { havePing, ipJson, kernelSkipReason, linkNames, NetnsSet, nsPath, ping } from "../helpers/netns.js";

const WIREGUARD_GO = "/usr/bin/wireguard-go";
const skip = kernelSkipReason() ?? (havePing ? undefined : "needs ping (iputils-ping)");
const skipWireguard = skip ?? (existsSync(WIREGUARD_GO) ? undefined : `needs ${WIREGUARD_GO}`);

const namespaces = new NetnsSet("nsmrc");
const ctx = () => CallContext.create();
const LOCAL_NSE = "unix:///var/lib/networkservicemesh/nse.sock";
const REMOTE_NSMGR = "tcp://198.18.0.2:5001";

/** The endpoint's interface of connection `id` (at the NSE-side forwarder), as the forwarder names it. */
const nseIf = (id: string) => connectionInterfaceName("icmp-responder", id);

/** Every wireguard-go started, for the last-resort cleanup. */
const started: WireguardDevice[] = [];

const alive = (pid: number) => {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

const PING_INTERVAL_MS = 5;

/**
 * Pings `address` from `ns` every 5 ms while `during` runs, from 200 ms before until 200 ms
 * after it (or, if replies had stopped, until they are back: at most 5 s more). Resolves with the
 * echo requests up to the last one answered (`sent`; later ones were still in flight when ping
 * was stopped), how many of those were answered, and the longest run of unanswered ones (ms).
 */
async function pingThrough(ns: string, address: string, during: () => Promise<void>) {
  const p = spawn(
    "ip",
    ["netns", "exec", ns, "ping", "-n", "-i", String(PING_INTERVAL_MS / 1000), "-W", "1", address],
    {
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  const answered = new Set<number>();
  p.stdout.on("data", (c: Buffer) => {
    for (const m of c.toString().matchAll(/icmp_seq=(\d+)/g)) answered.add(Number(m[1]));
  });
  const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    await sleep(200);
    await during();
    const seen = answered.size;
    await sleep(200);
    for (let waited = 0; answered.size <= seen + 3 && waited < 5000; waited += 20) await sleep(20);
  } finally {
    p.kill("SIGINT");
    await exited;
  }
  const last = Math.max(0, ...answered);
  let gap = 0;
  let run = 0;
  for (let seq = 1; seq <= last; seq++) {
    run = answered.has(seq) ? 0 : run + 1;
    gap = Math.max(gap, run);
  }
  return { sent: last, received: [...answered].filter((seq) => seq <= last).length, maxGapMs: gap * PING_INTERVAL_MS };
}

describe("reconciliation after a forwarder restart, on the real kernel", { skip }, () => {
  let kernel: KernelApi;
  let node1: string;
  let node2: string;
  let nsc: string;
  let nse: string;
  let bystander: string;
  const run = randomBytes(3).toString("hex");
  const owner1 = `test-fwd1-${run}`;
  const owner2 = `test-fwd2-${run}`;
  const lives: KernelForwarderElements[] = [];
  let nseSide: NetworkServiceHandler;

  const request = (n: number, payload: string): NetworkServiceRequest =>
    create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: `${run}-conn-${n}`, networkService: "icmp-responder", payload }),
      mechanismPreferences: [
        newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${nsPath(nsc)}`, name: `nsm-${n}` }),
      ],
    });
  const refresh = (conn: Connection) =>
    create(NetworkServiceRequestSchema, { connection: clone(ConnectionSchema, conn) });

  const wireguard = (node: string) =>
    skipWireguard
      ? (false as const)
      : {
          runner: recordingRunner(createWireguardGoRunner({ launcher: ["nsenter", `--net=${nsPath(node)}`] }), started),
        };

  /** One life of node 1's forwarder (the NSC side), tracked for `after`. */
  const life1 = async (o: Partial<KernelForwarderElementsOptions> = {}) => {
    const els = await kernelForwarderElements({
      netnsOwnership: insecureNetnsOwnership(),
      kernel,
      tunnelIp: "198.18.0.1",
      tunnelNetns: nsPath(node1),
      wireguard: wireguard(node1),
      owner: owner1,
      reconcileGraceMs: 3_600_000,
      ...o,
    });
    lives.push(els);
    return els;
  };
  /** One life of node 2's forwarder (the NSE side). */
  const life2 = async () => {
    const els = await kernelForwarderElements({
      netnsOwnership: insecureNetnsOwnership(),
      kernel,
      tunnelIp: "198.18.0.2",
      tunnelNetns: nsPath(node2),
      wireguard: wireguard(node2),
      owner: owner2,
      reconcileGraceMs: 3_600_000,
    });
    lives.push(els);
    return els;
  };
  const local = (els: KernelForwarderElements) => forwarderChain(els, LOCAL_NSE, p2pEndpoint(nsPath(nse)).element);
  const remote = (els: KernelForwarderElements) =>
    forwarderChain(
      els,
      REMOTE_NSMGR,
      hop(() => nseSide, "remote-"),
    );
  const ifindex = (ns: string, name: string) => ipJson(ns, "link", "show", name)[0]?.ifindex as number;

  before(async () => {
    kernel = createNetlinkKernel();
    node1 = namespaces.add("node1");
    node2 = namespaces.add("node2");
    nsc = namespaces.add("nsc");
    nse = namespaces.add("nse");
    bystander = namespaces.add("by");
    execFileSync("ip", ["-n", node1, "link", "add", "u0", "type", "veth", "peer", "name", "u1", "netns", node2]);
    execFileSync("ip", ["-n", node1, "addr", "add", "198.18.0.1/24", "dev", "u0"]);
    execFileSync("ip", ["-n", node2, "addr", "add", "198.18.0.2/24", "dev", "u1"]);
    execFileSync("ip", ["-n", node1, "link", "set", "u0", "up"]);
    execFileSync("ip", ["-n", node2, "link", "set", "u1", "up"]);
    nseSide = local(await life2());
  });

  after(async () => {
    for (const l of lives) await l.dispose().catch(() => undefined);
    // Last resort for processes of dropped lives: by PID, only if it is still that wireguard-go.
    for (const d of started) {
      const cmdline = existsSync(`/proc/${d.pid}/cmdline`) ? readFileSync(`/proc/${d.pid}/cmdline`, "utf8") : "";
      if (cmdline.includes(`-f\0${d.name}\0`)) process.kill(d.pid, "SIGKILL");
    }
    await kernel?.close();
    namespaces.deleteAll();
    spawnSync("sh", ["-c", `rm -f ${started.map((d) => `/var/run/wireguard/${d.name}.sock`).join(" ")}`]);
  });

  it("veth: a refreshed connection keeps its pair (same ifindex, no ping lost); an unrefreshed one is deleted after the grace period; another owner's pair is untouched", async (t) => {
    const first = local(await life1());
    const c1 = await first.request(request(1, Payload.ETHERNET), ctx());
    await first.request(request(2, Payload.ETHERNET), ctx());
    const before = [ifindex(nsc, "nsm-1"), ifindex(nse, nseIf(`${run}-conn-1`))];
    assert.ok(ping(nsc, "172.16.1.100"), "connection 1 works");
    // Another forwarder's pair, sharing the kernel.
    execFileSync("ip", [
      "-n",
      bystander,
      "link",
      "add",
      "nsm-9",
      "type",
      "veth",
      "peer",
      "name",
      "nse-9",
      "netns",
      nse,
    ]);
    execFileSync("ip", ["-n", bystander, "link", "set", "nsm-9", "alias", `nsm:client:${owner2}:${run}-conn-9`]);
    execFileSync("ip", ["-n", nse, "link", "set", "nse-9", "alias", `nsm:endpoint:${owner2}:${run}-conn-9`]);

    // kill -9: `first` is dropped.
    let second: KernelForwarderElements | undefined;
    let fwd: NetworkServiceHandler | undefined;
    let ms = 0;
    const { sent, received } = await pingThrough(nsc, "172.16.1.100", async () => {
      const t0 = performance.now();
      second = await life1({ reconcileGraceMs: 1500 });
      fwd = local(second);
      await fwd.request(refresh(c1), ctx());
      ms = performance.now() - t0;
    });
    t.diagnostic(`restart + adopting refresh: ${ms.toFixed(0)} ms; ping ${received}/${sent}`);
    assert.deepEqual(
      second!.reconciliation!.found.links.map((l) => `${l.connectionId}:${l.name}`).sort(),
      [
        `${run}-conn-1:${nseIf(`${run}-conn-1`)}`,
        `${run}-conn-1:nsm-1`,
        `${run}-conn-2:${nseIf(`${run}-conn-2`)}`,
        `${run}-conn-2:nsm-2`,
      ].sort(),
    );
    assert.deepEqual([ifindex(nsc, "nsm-1"), ifindex(nse, nseIf(`${run}-conn-1`))], before, "same links");
    assert.ok(sent > 20, `enough pings sent (${sent})`);
    assert.equal(received, sent, "no ping lost across the restart");
    assert.deepEqual(linkNames(nsc).sort(), ["lo", "nsm-1", "nsm-2"], "nothing deleted before the grace period");

    const keepAlive = setTimeout(() => {}, 10_000);
    const report = await second!.reconciliation!.swept;
    clearTimeout(keepAlive);
    assert.deepEqual([report.adopted, report.deleted], [[`${run}-conn-1`], [`${run}-conn-2`]]);
    assert.deepEqual(linkNames(nsc).sort(), ["lo", "nsm-1"], "conn-2's pair is gone");
    assert.deepEqual(linkNames(nse).sort(), ["lo", nseIf(`${run}-conn-1`), "nse-9"].sort());
    assert.deepEqual(linkNames(bystander).sort(), ["lo", "nsm-9"], "another owner's pair is untouched");
    assert.ok(ping(nsc, "172.16.1.100"), "connection 1 still works");

    // A connection of this life now: Close removes it.
    await fwd!.close(c1, ctx());
    assert.deepEqual(linkNames(nsc), ["lo"]);
    assert.deepEqual(linkNames(nse).sort(), ["lo", "nse-9"]);
    execFileSync("ip", ["-n", bystander, "link", "del", "nsm-9"]);
    await second!.dispose();
  });

  it("VXLAN: a refreshed connection keeps its device (same ifindex and VNI, no ping lost); an unrefreshed one is deleted", async (t) => {
    const first = remote(await life1());
    const c1 = await first.request(request(3, Payload.ETHERNET), ctx());
    const c2 = await first.request(request(4, Payload.ETHERNET), ctx());
    const [before] = ipJson(nsc, "link", "show", "nsm-3");
    assert.equal(before.linkinfo.info_kind, "vxlan");
    assert.ok(ping(nsc, "172.16.1.104"), "connection 1 works");

    let second: KernelForwarderElements | undefined;
    let ms = 0;
    let fwd: NetworkServiceHandler | undefined;
    const { sent, received } = await pingThrough(nsc, "172.16.1.104", async () => {
      const t0 = performance.now();
      second = await life1();
      fwd = remote(second);
      await fwd.request(refresh(c1), ctx());
      ms = performance.now() - t0;
    });
    t.diagnostic(`restart + adopting refresh: ${ms.toFixed(0)} ms; ping ${received}/${sent}`);
    const [now] = ipJson(nsc, "link", "show", "nsm-3");
    assert.deepEqual(
      [now.ifindex, now.linkinfo.info_data.id],
      [before.ifindex, before.linkinfo.info_data.id],
      "same device, same VNI",
    );
    assert.equal(received, sent, "no ping lost across the restart");

    const report = await second!.reconciliation!.sweep();
    assert.deepEqual([report.adopted, report.deleted], [[`${run}-conn-3`], [`${run}-conn-4`]]);
    assert.deepEqual(linkNames(nsc).sort(), ["lo", "nsm-3"]);
    assert.ok(ping(nsc, "172.16.1.104"), "connection 1 still works");
    // The other node's forwarder still has the swept connection: its Close goes through the restarted one.
    await fwd!.close(c2, ctx());
    await fwd!.close(c1, ctx());
    assert.deepEqual(linkNames(nsc), ["lo"]);
    assert.deepEqual(linkNames(nse), ["lo"]);
    await second!.dispose();
  });

  it("WireGuard: the running wireguard-go is adopted with the new key (same TUN, pings again); an orphan one is stopped by PID", {
    skip: skipWireguard,
  }, async (t) => {
    const firstLife = await life1();
    const first = remote(firstLife);
    const c1 = await first.request(request(5, Payload.IP), ctx());
    const c2 = await first.request(request(6, Payload.IP), ctx());
    assert.ok(ping(nsc, "172.16.1.108", 5), "connection 1 works");
    assert.ok(ping(nsc, "172.16.1.110", 5), "connection 2 works");
    const tun = ifindex(nsc, "nsm-5");
    const mine = started.slice(-4).filter((d) => d.name && alive(d.pid));
    const node1Pids = mine.filter((d) => readFileSync(`/proc/${d.pid}/environ`, "utf8").includes(owner1));
    assert.equal(node1Pids.length, 2, "one wireguard-go per connection on node 1");
    const startedBefore = started.length;

    let second: KernelForwarderElements | undefined;
    let ms = 0;
    let fwd: NetworkServiceHandler | undefined;
    const { sent, received, maxGapMs } = await pingThrough(nsc, "172.16.1.108", async () => {
      const t0 = performance.now();
      second = await life1();
      fwd = remote(second);
      await fwd.request(refresh(c1), ctx());
      ms = performance.now() - t0;
    });
    t.diagnostic(
      `restart + adopting refresh (new key): ${ms.toFixed(0)} ms; ping ${received}/${sent}, ` +
        `longest outage ${maxGapMs} ms (new keys: until the next handshake)`,
    );
    assert.notEqual(second!.wireguardPublicKey, firstLife.wireguardPublicKey, "a new key pair");
    assert.deepEqual(
      second!.reconciliation!.found.processes.map((p) => p.pid).sort(),
      node1Pids.map((d) => d.pid).sort(),
    );
    assert.equal(started.length, startedBefore, "no wireguard-go started on either node");
    assert.equal(ifindex(nsc, "nsm-5"), tun, "same TUN");
    assert.ok(ping(nsc, "172.16.1.108", 5), "connection 1 works with the new keys");
    assert.ok(received > 0, "answered after the handshake");

    const report = await second!.reconciliation!.sweep();
    assert.deepEqual([report.adopted, report.deleted], [[`${run}-conn-5`], [`${run}-conn-6`]]);
    const orphan = report.processes.map((p) => p.pid);
    assert.equal(orphan.length, 1);
    assert.ok(!alive(orphan[0]!), `wireguard-go ${orphan[0]} stopped`);
    const adopted = node1Pids.find((d) => d.pid !== orphan[0])!;
    assert.ok(alive(adopted.pid), "the adopted one still runs");
    assert.deepEqual(linkNames(nsc).sort(), ["lo", "nsm-5"], "the orphan's TUN went with it");
    assert.ok(!existsSync(`/var/run/wireguard/${report.processes[0]!.name}.sock`), "its UAPI socket is removed");

    await fwd!.close(c2, ctx());
    await fwd!.close(c1, ctx());
    assert.ok(!alive(adopted.pid), "Close stops the adopted wireguard-go by PID");
    assert.deepEqual(linkNames(nsc), ["lo"]);
    assert.deepEqual(linkNames(nse), ["lo"]);
    await second!.dispose();
  });

  it("the NSE-side forwarder restarts: its VXLAN device (no ping lost) and its wireguard-go are re-adopted", {
    skip: skipWireguard,
  }, async (t) => {
    const nscSide = remote(await life1());
    const vx = await nscSide.request(request(7, Payload.ETHERNET), ctx());
    const wg = await nscSide.request(request(8, Payload.IP), ctx());
    const [vxIf, wgIf] = [nseIf(`remote-${run}-conn-7`), nseIf(`remote-${run}-conn-8`)];
    const before = [ifindex(nse, vxIf), ifindex(nse, wgIf), ifindex(nsc, "nsm-7"), ifindex(nsc, "nsm-8")];
    assert.ok(ping(nsc, "172.16.1.112"), "VXLAN works");
    assert.ok(ping(nsc, "172.16.1.114", 5), "WireGuard works");
    const startedBefore = started.length;

    let restarted: KernelForwarderElements | undefined;
    const { sent, received } = await pingThrough(nsc, "172.16.1.112", async () => {
      restarted = await life2();
      nseSide = local(restarted);
      await nscSide.request(refresh(vx), ctx());
    });
    await nscSide.request(refresh(wg), ctx());
    t.diagnostic(`NSE side, VXLAN through the restart: ping ${received}/${sent}`);
    assert.equal(received, sent, "no ping lost across the restart");
    assert.deepEqual(
      [ifindex(nse, vxIf), ifindex(nse, wgIf), ifindex(nsc, "nsm-7"), ifindex(nsc, "nsm-8")],
      before,
      "every interface kept, on both sides",
    );
    assert.equal(started.length, startedBefore, "no wireguard-go started");
    assert.ok(ping(nsc, "172.16.1.114", 5), "WireGuard works with the NSE side's new key");
    const report = await restarted!.reconciliation!.sweep();
    assert.deepEqual([report.adopted.sort(), report.deleted], [[`remote-${run}-conn-7`, `remote-${run}-conn-8`], []]);
    await nscSide.close(vx, ctx());
    await nscSide.close(wg, ctx());
    assert.deepEqual(linkNames(nsc), ["lo"]);
    assert.deepEqual(linkNames(nse), ["lo"]);
  });
});
