// SPDX-License-Identifier: Apache-2.0
/**
 * Behaviour every KernelApi must show, checked through the KernelApi itself. Run against the
 * real kernel (netlink.test.ts) and the fake (fake.test.ts), so the fake stays honest.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type KernelApi, NUD, Scope } from "../../src/kernel/index.js";
import { Code, NsmError } from "../../src/sdk/core/errors.js";

export interface ContractEnv {
  kernel: KernelApi;
  /** A new empty netns (only `lo`) as a path; removed by `cleanup`. */
  newNetns(): Promise<string>;
  /** Removes every netns made by `newNetns`, whatever happened. */
  cleanup(): Promise<void>;
}

export function rejectsWith(code: Code) {
  return (err: unknown) => {
    assert.ok(err instanceof NsmError, `expected an NsmError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

export function kernelContract(label: string, makeEnv: () => Promise<ContractEnv>, options: { skip?: string } = {}) {
  describe(`KernelApi contract: ${label}`, { skip: options.skip }, () => {
    let env: ContractEnv;
    let k: KernelApi;
    before(async () => {
      env = await makeEnv();
      k = env.kernel;
    });
    after(async () => {
      await env?.cleanup();
    });

    it("creates a veth with its peer directly in another netns", async () => {
      const [a, b] = [await env.newNetns(), await env.newNetns()];
      await k.createVeth(a, { name: "c-a", mtu: 1400, peer: { name: "c-b", netns: b } });
      const la = await k.getLink(a, "c-a");
      const lb = await k.getLink(b, "c-b");
      assert.equal(la.kind, "veth");
      assert.equal(lb.kind, "veth");
      assert.equal(la.mtu, 1400);
      assert.equal(lb.mtu, 1400);
      assert.equal(la.linkIndex, lb.index);
      assert.equal(lb.linkIndex, la.index);
      assert.match(la.mac ?? "", /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.equal(await k.findLink(a, "c-b"), undefined);
      assert.deepEqual((await k.listLinks(b)).map((l) => l.name).sort(), ["c-b", "lo"]);
    });

    it("moves, renames, aliases, sets MTU and up in one setLink", async () => {
      const [fwd, pod] = [await env.newNetns(), await env.newNetns()];
      await k.createVeth(fwd, { name: "tmp0", peer: { name: "tmp1" } });
      await k.setLink(fwd, "tmp0", { netns: pod, name: "nsm-1", alias: "client-conn1", mtu: 1300, up: true });
      assert.equal(await k.findLink(fwd, "tmp0"), undefined);
      const l = await k.getLink(pod, "nsm-1");
      assert.equal(l.alias, "client-conn1");
      assert.equal(l.mtu, 1300);
      assert.equal(l.up, true);
      await k.setLink(pod, l.index, { up: false, alias: "" });
      const again = await k.getLink(pod, "nsm-1");
      assert.equal(again.up, false);
      assert.equal(again.alias, undefined);
    });

    it("refuses a taken name with AlreadyExists, in place and on a move", async () => {
      const [a, b] = [await env.newNetns(), await env.newNetns()];
      await k.createVeth(a, { name: "dup", peer: { name: "dup-p", netns: b } });
      await assert.rejects(k.createVeth(a, { name: "dup", peer: { name: "other" } }), rejectsWith(Code.AlreadyExists));
      await k.createVeth(a, { name: "mover", peer: { name: "mover-p" } });
      await assert.rejects(k.setLink(a, "mover", { netns: b, name: "dup-p" }), rejectsWith(Code.AlreadyExists));
      assert.ok(await k.findLink(a, "mover"), "a failed move leaves the link where it was");
      await assert.rejects(k.createBridge(a, { name: "dup" }), rejectsWith(Code.AlreadyExists));
    });

    it("answers NotFound for a missing link or netns", async () => {
      const a = await env.newNetns();
      await assert.rejects(k.getLink(a, "ghost"), rejectsWith(Code.NotFound));
      await assert.rejects(k.setLink(a, "ghost", { up: true }), rejectsWith(Code.NotFound));
      await assert.rejects(k.deleteLink(a, "ghost"), rejectsWith(Code.NotFound));
      await assert.rejects(k.replaceAddress(a, "ghost", "10.0.0.1/32"), rejectsWith(Code.NotFound));
      const missing = "/var/run/netns/nsmt-does-not-exist";
      await assert.rejects(k.listLinks(missing), rejectsWith(Code.NotFound));
      await assert.rejects(k.findLink(missing, "lo"), rejectsWith(Code.NotFound));
      await assert.rejects(
        k.createVeth(a, { name: "x0", peer: { name: "x1", netns: missing } }),
        rejectsWith(Code.NotFound),
      );
      await assert.rejects(k.writeSysctl(missing, "net.ipv4.ping_group_range", "0 0"), rejectsWith(Code.NotFound));
      assert.equal(await k.findLink(a, "x0"), undefined, "nothing created");
    });

    it("rejects bad input with InvalidArgument and changes nothing", async () => {
      const a = await env.newNetns();
      await assert.rejects(
        k.createVeth(a, { name: "this-name-is-too-long", peer: { name: "p" } }),
        rejectsWith(Code.InvalidArgument),
      );
      await assert.rejects(
        k.createVeth(a, { name: "ok0", peer: { name: "bad/name" } }),
        rejectsWith(Code.InvalidArgument),
      );
      await assert.rejects(k.createVxlan(a, { name: "vx", vni: 1 << 24 }), rejectsWith(Code.InvalidArgument));
      await k.createVeth(a, { name: "ok0", peer: { name: "ok1" } });
      await assert.rejects(k.replaceAddress(a, "ok0", "10.0.0.1/40"), rejectsWith(Code.InvalidArgument));
      await assert.rejects(
        k.replaceRoute(a, { dst: "10.0.0.0/8", gateway: "fd00::1" }),
        rejectsWith(Code.InvalidArgument),
      );
      await assert.rejects(k.setLink(a, "ok0", { alias: "x".repeat(256) }), rejectsWith(Code.InvalidArgument));
      await assert.rejects(k.writeSysctl(a, "net/../../etc/passwd", "x"), rejectsWith(Code.InvalidArgument));
      assert.deepEqual(await k.listAddresses(a, { link: "ok0" }), []);
      assert.equal((await k.getLink(a, "ok0")).alias, undefined);
    });

    it("replaces IPv4 and IPv6 (nodad) addresses idempotently and deletes them", async () => {
      const a = await env.newNetns();
      await k.createVeth(a, { name: "ad0", peer: { name: "ad1" } });
      for (let i = 0; i < 2; i++) {
        await k.replaceAddress(a, "ad0", "10.80.0.1/32");
        await k.replaceAddress(a, "ad0", "fd80::1/64");
      }
      const addrs = await k.listAddresses(a, { link: "ad0" });
      const global = addrs.filter((x) => x.scope === Scope.universe).map((x) => x.cidr);
      assert.deepEqual(global.sort(), ["10.80.0.1/32", "fd80::1/64"]);
      const v6 = addrs.find((x) => x.cidr === "fd80::1/64")!;
      assert.equal(v6.tentative, false, "nodad: usable at once");
      assert.deepEqual(
        (await k.listAddresses(a, { link: "ad0", family: 4 })).map((x) => x.cidr),
        ["10.80.0.1/32"],
      );
      await k.deleteAddress(a, "ad0", "10.80.0.1/32");
      assert.deepEqual(
        (await k.listAddresses(a, { family: 4 })).filter((x) => x.address === "10.80.0.1"),
        [],
      );
    });

    it("replaces link-scope and onlink gateway routes, lists and deletes them", async () => {
      const a = await env.newNetns();
      await k.createVeth(a, { name: "rt0", peer: { name: "rt1" } });
      await assert.rejects(k.replaceRoute(a, { dst: "10.81.0.2/32", link: "rt0" }), rejectsWith(Code.Internal)); // ENETDOWN
      await k.setLink(a, "rt0", { up: true });
      await k.replaceAddress(a, "rt0", "10.81.0.1/32"); // as NSM does: addresses first, then routes
      const link = await k.getLink(a, "rt0");
      await k.replaceRoute(a, { dst: "10.81.0.2/32", link: "rt0" });
      await k.replaceRoute(a, { dst: "10.82.7.7/16", gateway: "10.81.0.2", link: "rt0", onlink: true });
      await k.replaceRoute(a, { dst: "10.82.0.0/16", gateway: "10.81.0.2", link: "rt0", onlink: true }); // replace: no error
      await k.replaceRoute(a, { dst: "10.83.0.0/16", link: link.index, table: 100 });
      const main = (await k.listRoutes(a, { family: 4 })).filter((r) => r.linkIndex === link.index);
      const host = main.find((r) => r.dst === "10.81.0.2/32");
      assert.ok(host, JSON.stringify(main));
      assert.equal(host.scope, Scope.link);
      assert.equal(host.gateway, undefined);
      const via = main.filter((r) => r.dst === "10.82.0.0/16");
      assert.equal(via.length, 1, "replaced, not duplicated");
      assert.equal(via[0]!.gateway, "10.81.0.2");
      assert.equal(via[0]!.onlink, true);
      assert.equal(via[0]!.scope, Scope.universe);
      assert.equal(
        main.some((r) => r.dst === "10.83.0.0/16"),
        false,
        "table 100 is not main",
      );
      assert.ok((await k.listRoutes(a, { table: 100 })).some((r) => r.dst === "10.83.0.0/16"));
      await k.deleteRoute(a, { dst: "10.82.0.0/16", gateway: "10.81.0.2", link: "rt0" });
      assert.equal(
        (await k.listRoutes(a)).some((r) => r.dst === "10.82.0.0/16"),
        false,
      );
      await assert.rejects(k.deleteRoute(a, { dst: "10.82.0.0/16", link: "rt0" }), rejectsWith(Code.NotFound));
    });

    it("adds, lists and deletes IPv4 and IPv6 policy rules (source, ipproto, port ranges, table)", async () => {
      const a = await env.newNetns();
      const base = await k.listRules(a);
      assert.deepEqual(
        base.filter((r) => r.family === 4).map((r) => [r.priority, r.table]),
        [
          [0, 255],
          [32766, 254],
          [32767, 253],
        ],
      );
      const v4 = {
        family: 4,
        src: "172.16.2.201/24",
        ipProto: 6,
        dport: { start: 6666, end: 6666 },
        table: 1,
      } as const;
      const v6 = { family: 6, src: "2004::3/120", ipProto: 17, sport: { start: 5555, end: 5560 }, table: 5 } as const;
      await k.addRule(a, v4);
      await k.addRule(a, v6);
      // Identical down to the priority (without one, the kernel picks a new priority: no clash).
      await assert.rejects(k.addRule(a, { ...v4, priority: 32765 }), rejectsWith(Code.AlreadyExists));
      const rules = await k.listRules(a);
      const r4 = rules.find((r) => r.table === 1);
      assert.deepEqual(r4, {
        family: 4,
        src: "172.16.2.0/24",
        ipProto: 6,
        dport: { start: 6666, end: 6666 },
        table: 1,
        priority: 32765,
        action: 1,
      });
      const r6 = (await k.listRules(a, 6)).find((r) => r.table === 5);
      assert.deepEqual(r6, {
        family: 6,
        src: "2004::/120",
        ipProto: 17,
        sport: { start: 5555, end: 5560 },
        table: 5,
        priority: 32765,
        action: 1,
      });
      assert.equal(
        (await k.listRules(a, 4)).some((r) => r.family === 6),
        false,
      );
      await k.addRule(a, { family: 4, ipProto: 17, table: 3 });
      assert.equal((await k.listRules(a, 4)).find((r) => r.table === 3)?.priority, 32764, "the kernel's next priority");
      await assert.rejects(k.addRule(a, { family: 4, src: "fd00::/8", table: 7 }), rejectsWith(Code.InvalidArgument));
      await assert.rejects(
        k.addRule(a, { family: 4, dport: { start: 9, end: 1 }, table: 7 }),
        rejectsWith(Code.InvalidArgument),
      );
      await k.deleteRule(a, v4);
      await k.deleteRule(a, v6);
      await k.deleteRule(a, { family: 4, ipProto: 17, table: 3 });
      await assert.rejects(k.deleteRule(a, v4), rejectsWith(Code.NotFound));
      assert.deepEqual(await k.listRules(a), base);
    });

    it("refuses a gateway route whose gateway is not on the link unless onlink", async () => {
      const a = await env.newNetns();
      await k.createVeth(a, { name: "gw0", peer: { name: "gw1" } });
      await k.setLink(a, "gw0", { up: true });
      await k.replaceAddress(a, "gw0", "10.84.1.1/32");
      await assert.rejects(
        k.replaceRoute(a, { dst: "10.84.0.0/16", gateway: "10.85.0.1", link: "gw0" }),
        rejectsWith(Code.Internal), // ENETUNREACH "Nexthop has invalid gateway"
      );
      await k.replaceRoute(a, { dst: "10.84.0.0/16", gateway: "10.85.0.1", link: "gw0", onlink: true });
    });

    it("replaces permanent and reachable neighbours", async () => {
      const a = await env.newNetns();
      await k.createVeth(a, { name: "nb0", peer: { name: "nb1" } });
      await k.setLink(a, "nb0", { up: true });
      await k.replaceNeighbor(a, { link: "nb0", address: "10.86.0.2", mac: "02:00:00:00:86:02" });
      await k.replaceNeighbor(a, { link: "nb0", address: "fd86::2", mac: "02:00:00:00:86:03", state: "reachable" });
      const ns = await k.listNeighbors(a, { link: "nb0" });
      const v4 = ns.find((n) => n.address === "10.86.0.2");
      assert.equal(v4?.mac, "02:00:00:00:86:02");
      assert.equal(v4?.state, NUD.PERMANENT);
      assert.equal(ns.find((n) => n.address === "fd86::2")?.mac, "02:00:00:00:86:03");
      await k.deleteNeighbor(a, { link: "nb0", address: "10.86.0.2" });
      assert.equal(
        (await k.listNeighbors(a, { family: 4 })).some((n) => n.address === "10.86.0.2"),
        false,
      );
    });

    it("deleting one veth end removes the other, in its other netns", async () => {
      const [a, b] = [await env.newNetns(), await env.newNetns()];
      await k.createVeth(a, { name: "del-a", peer: { name: "del-b", netns: b } });
      await k.deleteLink(a, "del-a");
      assert.equal(await k.findLink(a, "del-a"), undefined);
      assert.equal(await k.findLink(b, "del-b"), undefined);
    });

    it("creates a vxlan and moves it into another netns, keeping VNI and port", async () => {
      const [node, pod] = [await env.newNetns(), await env.newNetns()];
      await k.createVxlan(node, { name: "vx-tmp", vni: 4242, local: "198.18.0.1", remote: "198.18.0.2", port: 4790 });
      await k.setLink(node, "vx-tmp", { netns: pod, name: "nsm-vx", mtu: 1400, up: true });
      const l = await k.getLink(pod, "nsm-vx");
      assert.equal(l.kind, "vxlan");
      assert.equal(l.vxlan?.vni, 4242);
      assert.equal(l.vxlan?.port, 4790);
      assert.equal(l.vxlan?.remote, "198.18.0.2");
      assert.equal(l.vxlan?.local, "198.18.0.1");
      assert.equal(l.mtu, 1400);
    });

    it("creates a vxlan directly in another netns; its VNI is exclusive per port among devices of one socket netns", async () => {
      const [node, pod1, pod2] = [await env.newNetns(), await env.newNetns(), await env.newNetns()];
      const spec = { vni: 77, local: "198.18.0.1", remote: "198.18.0.2", port: 4791 };
      await k.createVxlan(node, { ...spec, name: "vx-a", mtu: 1400, netns: pod1 });
      assert.equal(await k.findLink(node, "vx-a"), undefined, "not in the netns of the call");
      const l = await k.getLink(pod1, "vx-a");
      assert.equal(l.kind, "vxlan");
      assert.equal(l.vxlan?.vni, 77);
      assert.equal(l.vxlan?.port, 4791);
      assert.equal(l.vxlan?.local, "198.18.0.1");
      assert.equal(l.mtu, 1400);
      await assert.rejects(
        k.createVxlan(node, { ...spec, name: "vx-b", netns: pod2 }),
        rejectsWith(Code.AlreadyExists),
      );
      assert.equal(await k.findLink(pod2, "vx-b"), undefined);
      await k.createVxlan(node, { ...spec, name: "vx-b", port: 4792, netns: pod2 });
      await k.createVxlan(pod2, { ...spec, name: "vx-c" });
      await assert.rejects(
        k.createVxlan(node, { ...spec, name: "vx-a", vni: 78, netns: pod1 }),
        rejectsWith(Code.AlreadyExists),
      );
      await k.deleteLink(pod1, "vx-a");
      await k.createVxlan(node, { ...spec, name: "vx-d", netns: pod2 });
    });

    it("creates bridges and tun devices and enslaves a port", async () => {
      const a = await env.newNetns();
      await k.createBridge(a, { name: "br0" });
      await k.createVeth(a, { name: "port0", peer: { name: "port1" } });
      const br = await k.getLink(a, "br0");
      assert.equal(br.kind, "bridge");
      await k.setLink(a, "port0", { master: "br0" });
      assert.equal((await k.getLink(a, "port0")).masterIndex, br.index);
      await k.setLink(a, "port0", { master: null });
      assert.equal((await k.getLink(a, "port0")).masterIndex, undefined);
      await k.createTun(a, { name: "tun0", mtu: 1420 });
      const tun = await k.getLink(a, "tun0");
      assert.equal(tun.kind, "tun");
      assert.equal(tun.mtu, 1420);
      await assert.rejects(k.createTun(a, { name: "tun0" }), rejectsWith(Code.AlreadyExists));
    });

    it("writes per-netns sysctls; a missing interface is NotFound", async () => {
      const a = await env.newNetns();
      await k.createVeth(a, { name: "sy0", peer: { name: "sy1" } });
      await k.writeSysctl(a, "net/ipv6/conf/sy0/disable_ipv6", "0");
      await k.writeSysctl(a, "net.ipv4.ping_group_range", "0 2147483647");
      await assert.rejects(k.writeSysctl(a, "net/ipv6/conf/nope0/disable_ipv6", "0"), rejectsWith(Code.NotFound));
    });

    it("identifies namespaces", async () => {
      const [a, b] = [await env.newNetns(), await env.newNetns()];
      const [ia, ia2, ib] = [await k.netnsId(a), await k.netnsId(a), await k.netnsId(b)];
      assert.deepEqual(ia, ia2);
      assert.notDeepEqual(ia, ib);
      assert.notDeepEqual(await k.netnsId(undefined), ia);
    });

    it("lists every namespace once: its own first (undefined), then one path each", async () => {
      const [a, b] = [await env.newNetns(), await env.newNetns()];
      const listed = await k.listNetns();
      assert.equal(listed[0], undefined);
      assert.ok(listed.slice(1).every((p) => typeof p === "string" && p !== ""));
      const ids: string[] = [];
      for (const p of listed) {
        try {
          const id = await k.netnsId(p);
          ids.push(`${id.dev}:${id.ino}`);
        } catch {
          // a /proc path whose process has exited since
        }
      }
      assert.equal(new Set(ids).size, ids.length, "no namespace twice");
      for (const ns of [a, b]) {
        const id = await k.netnsId(ns);
        assert.ok(ids.includes(`${id.dev}:${id.ino}`), `${ns} is listed`);
      }
      assert.ok(listed.includes(a), "a named namespace by its /var/run/netns path");
    });
  });
}
