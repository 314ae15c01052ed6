// SPDX-License-Identifier: Apache-2.0
/**
 * The rtnetlink KernelApi against the real kernel. Needs root and the built addon
 * (`npm run build:native`). Every test works only inside throwaway namespaces `nsmt-<hex>`,
 * which are deleted in `after` hooks (and, as a last resort, on process exit); nothing is
 * added to the root netns and no traffic leaves the namespaces. `ip` is used only to check
 * what the kernel reports.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { createNetlinkKernel, type KernelApi } from "../../src/kernel/index.js";
import { Code } from "../../src/sdk/core/errors.js";
import { havePing, ipJson, kernelSkipReason, NetnsSet, nsPath, ping } from "../helpers/netns.js";
import { kernelContract, rejectsWith } from "./contract.js";

const skip = kernelSkipReason();
const namespaces = new NetnsSet("nsmt");
const addNetns = () => namespaces.add();
const delNetns = (name: string) => namespaces.delete(name);

kernelContract(
  "linux rtnetlink",
  async () => {
    const kernel = createNetlinkKernel();
    const mine: string[] = [];
    return {
      kernel,
      async newNetns() {
        const name = addNetns();
        mine.push(name);
        return nsPath(name);
      },
      async cleanup() {
        await kernel.close();
        for (const n of mine) delNetns(n);
      },
    };
  },
  { skip },
);

describe("linux rtnetlink, checked with ip -j", { skip }, () => {
  let k: KernelApi;
  const mine: string[] = [];
  const netns = () => {
    const n = addNetns();
    mine.push(n);
    return n;
  };
  before(() => {
    k = createNetlinkKernel();
  });
  after(async () => {
    await k?.close();
    for (const n of mine) delNetns(n);
  });

  it("builds a local connection: veth moved into two pods, addresses, routes, neighbour; ping answered", async () => {
    const [fwd, nsc, nse] = [netns(), netns(), netns()];
    await k.createVeth(nsPath(fwd), { name: "tmp-c", peer: { name: "tmp-e" } });
    await k.setLink(nsPath(fwd), "tmp-c", {
      netns: nsPath(nsc),
      name: "nsm-1",
      alias: "client-c1",
      mtu: 1400,
      up: true,
    });
    await k.setLink(nsPath(fwd), "tmp-e", {
      netns: nsPath(nse),
      name: "nsm-1",
      alias: "server-c1",
      mtu: 1400,
      up: true,
    });
    assert.deepEqual(
      ipJson(fwd, "link").map((l) => l.ifname),
      ["lo"],
    );
    for (const [ns, mineV4, mineV6] of [
      [nsc, "172.16.1.2/32", "fd16::2/128"],
      [nse, "172.16.1.1/32", "fd16::1/128"],
    ] as const) {
      await k.writeSysctl(nsPath(ns), "net/ipv6/conf/nsm-1/disable_ipv6", "0");
      await k.replaceAddress(nsPath(ns), "nsm-1", mineV4);
      await k.replaceAddress(nsPath(ns), "nsm-1", mineV6);
    }
    await k.replaceRoute(nsPath(nsc), { dst: "172.16.1.1/32", link: "nsm-1" });
    await k.replaceRoute(nsPath(nsc), { dst: "fd16::1/128", link: "nsm-1" });
    await k.replaceRoute(nsPath(nse), { dst: "172.16.1.2/32", link: "nsm-1" });
    await k.replaceRoute(nsPath(nse), { dst: "fd16::2/128", link: "nsm-1" });
    await k.replaceRoute(nsPath(nsc), { dst: "10.60.0.0/16", gateway: "172.16.1.1", link: "nsm-1", onlink: true });
    const nseMac = (await k.getLink(nsPath(nse), "nsm-1")).mac!;
    await k.replaceNeighbor(nsPath(nsc), { link: "nsm-1", address: "172.16.1.1", mac: nseMac });

    const [link] = ipJson(nsc, "link", "show", "nsm-1");
    assert.equal(link.mtu, 1400);
    assert.equal(link.ifalias, "client-c1");
    assert.ok(link.flags.includes("UP"), JSON.stringify(link.flags));
    const addrs = ipJson(nsc, "addr", "show", "dev", "nsm-1")[0].addr_info;
    assert.ok(
      addrs.some((a: any) => a.local === "172.16.1.2" && a.prefixlen === 32),
      JSON.stringify(addrs),
    );
    assert.ok(
      addrs.some((a: any) => a.local === "fd16::2" && a.prefixlen === 128 && a.nodad === true),
      JSON.stringify(addrs),
    );
    const routes = ipJson(nsc, "route");
    assert.ok(
      routes.some((r) => r.dst === "172.16.1.1" && r.dev === "nsm-1" && r.scope === "link"),
      JSON.stringify(routes),
    );
    assert.ok(
      routes.some((r) => r.dst === "10.60.0.0/16" && r.gateway === "172.16.1.1" && r.flags.includes("onlink")),
      JSON.stringify(routes),
    );
    const neigh = ipJson(nsc, "neigh", "show", "dev", "nsm-1");
    assert.ok(
      neigh.some((n) => n.dst === "172.16.1.1" && n.lladdr === nseMac && n.state.includes("PERMANENT")),
      JSON.stringify(neigh),
    );

    if (havePing) {
      assert.ok(ping(nsc, "172.16.1.1"), "IPv4 ping nsc → nse answered");
      assert.ok(ping(nse, "172.16.1.2"), "IPv4 ping nse → nsc answered");
      assert.ok(ping(nsc, "fd16::1"), "IPv6 ping nsc → nse answered");
    }

    await k.deleteLink(nsPath(nsc), "nsm-1");
    assert.deepEqual(
      ipJson(nse, "link").map((l) => l.ifname),
      ["lo"],
      "deleting one end removed the other",
    );
  });

  it("vxlan created in one netns and moved into another keeps VNI and port", async () => {
    const [node, pod] = [netns(), netns()];
    await k.createVxlan(nsPath(node), {
      name: "vx-1",
      vni: 1001,
      local: "198.18.0.1",
      remote: "198.18.0.2",
      port: 4789,
    });
    await k.setLink(nsPath(node), "vx-1", { netns: nsPath(pod), name: "nsm-vx", up: true });
    const [l] = ipJson(pod, "-d", "link", "show", "nsm-vx");
    assert.equal(l.linkinfo.info_kind, "vxlan");
    assert.equal(l.linkinfo.info_data.id, 1001);
    assert.equal(l.linkinfo.info_data.port, 4789);
    assert.equal(l.linkinfo.info_data.remote, "198.18.0.2");
    assert.equal(ipJson(node, "link").length, 1, "only lo is left in the node netns");
  });

  it("writes sysctls in the target netns only", async () => {
    const a = netns();
    const rootBefore = readFileSync("/proc/sys/net/ipv4/ping_group_range", "utf8");
    await k.writeSysctl(nsPath(a), "net.ipv4.ping_group_range", "0 2147483647");
    const inside = execFileSync("ip", ["netns", "exec", a, "cat", "/proc/sys/net/ipv4/ping_group_range"], {
      encoding: "utf8",
    });
    assert.deepEqual(inside.trim().split(/\s+/), ["0", "2147483647"]);
    assert.equal(readFileSync("/proc/sys/net/ipv4/ping_group_range", "utf8"), rootBefore);
  });

  it("reports the kernel's extended ack text and errno", async () => {
    const a = netns();
    await k.createVeth(nsPath(a), { name: "ex0", peer: { name: "ex1" } });
    await assert.rejects(
      k.replaceRoute(nsPath(a), { dst: "10.70.0.0/16", gateway: "10.71.0.1", link: "ex0" }),
      (e: any) => {
        assert.match(e.message, /ENETUNREACH \(errno 101\): Nexthop has invalid gateway/);
        return true;
      },
    );
    await assert.rejects(k.createVeth(nsPath(a), { name: "ex0", peer: { name: "ex2" } }), (e: any) => {
      assert.equal(e.code, Code.AlreadyExists);
      assert.match(e.message, /EEXIST \(errno 17\)/);
      return true;
    });
  });

  it("reopens the socket when a netns path is recreated", async () => {
    const name = netns();
    await k.createVeth(nsPath(name), { name: "old0", peer: { name: "old1" } });
    delNetns(name);
    await assert.rejects(k.listLinks(nsPath(name)), rejectsWith(Code.NotFound));
    namespaces.addNamed(name);
    assert.deepEqual(
      (await k.listLinks(nsPath(name))).map((l) => l.name),
      ["lo"],
    );
  });

  it("serves concurrent requests to one netns", async () => {
    const a = netns();
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => k.createVeth(nsPath(a), { name: `par${i}a`, peer: { name: `par${i}b` } })),
    );
    const names = await Promise.all([
      k.listLinks(nsPath(a)),
      ...Array.from({ length: 4 }, () => k.getLink(nsPath(a), "par3b")),
    ]);
    assert.equal(names[0].length, 33);
    assert.equal(ipJson(a, "link").length, 33);
  });

  it("reads the own netns without changing it", async () => {
    const links = await k.listLinks(undefined);
    assert.ok(links.some((l) => l.name === "lo"));
    assert.deepEqual(await k.netnsId(""), await k.netnsId(undefined));
  });

  it("times a connection: veth with both ends in two netns + 2 addresses + 2 ups", async () => {
    const [a, b] = [netns(), netns()];
    const one = async (i: number) => {
      const t0 = performance.now();
      await k.createVeth(nsPath(a), { name: `t${i}`, peer: { name: `t${i}`, netns: nsPath(b) } });
      await Promise.all([
        k.replaceAddress(nsPath(a), `t${i}`, `10.90.${i}.0/31`).then(() => k.setLink(nsPath(a), `t${i}`, { up: true })),
        k.replaceAddress(nsPath(b), `t${i}`, `10.90.${i}.1/31`).then(() => k.setLink(nsPath(b), `t${i}`, { up: true })),
      ]);
      return performance.now() - t0;
    };
    const cold = await one(0); // includes opening both netns sockets
    const warm: number[] = [];
    for (let i = 1; i <= 10; i++) warm.push(await one(i));
    warm.sort((x, y) => x - y);
    console.log(
      `[timing] veth pair into 2 netns + 2 addrs + 2 ups: cold ${cold.toFixed(2)} ms, warm median ${warm[5]!.toFixed(2)} ms (min ${warm[0]!.toFixed(2)}, max ${warm[9]!.toFixed(2)}; n=10)`,
    );
    const l = ipJson(b, "addr", "show", "t10")[0];
    assert.ok(l.flags.includes("UP"));
    assert.equal(l.addr_info[0].local, "10.90.10.1");
  });
});
