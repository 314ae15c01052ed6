// SPDX-License-Identifier: Apache-2.0
/**
 * The NSC's liveness check without processes (src/kernel/icmp.ts, native/src/icmp.cc): ICMP and
 * ICMPv6 echoes sent from inside a netns through the addon, against a real veth pair between two
 * throwaway namespaces `nsmi-<hex>` (deleted in the after hook). Needs root and the built addon.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { after, describe, it } from "node:test";
import { ConnectionContextSchema, ConnectionSchema, create, IPContextSchema } from "../../src/api/index.js";
import { icmpEcho, icmpLivenessCheck } from "../../src/kernel/icmp.js";
import type { Logger } from "../../src/sdk/core/logger.js";
import { kernelSkipReason, NetnsSet, nsPath } from "../helpers/netns.js";

const skip = kernelSkipReason();
const namespaces = new NetnsSet("nsmi");
const TIMEOUT_MS = 400;

interface Pair {
  a: string;
  b: string;
  nsA: string;
}

/**
 * Two namespaces joined by a veth pair: a has 10.98.0.1/24 and fd98::1/64, b .2 and ::2. Waits
 * until IPv6 answers (iputils ping, too, goes unanswered while the fresh link-local address is
 * tentative).
 */
async function pair(pingGroups = "0 2147483647"): Promise<Pair> {
  const a = namespaces.add("a");
  const b = namespaces.add("b");
  const ip = (...args: string[]) => execFileSync("ip", args);
  ip("-n", a, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", b);
  for (const [ns, dev, n] of [
    [a, "v0", 1],
    [b, "v1", 2],
  ] as const) {
    ip("-n", ns, "addr", "add", `10.98.0.${n}/24`, "dev", dev);
    ip("-n", ns, "addr", "add", `fd98::${n}/64`, "dev", dev, "nodad");
    ip("-n", ns, "link", "set", dev, "up");
  }
  // Who may open ICMP datagram sockets in a (the forwarder allows everyone in pod netns).
  execFileSync("ip", ["netns", "exec", a, "sysctl", "-q", "-w", `net.ipv4.ping_group_range=${pingGroups}`]);
  const deadline = Date.now() + 5000;
  while (!(await icmpEcho("fd98::2", { nsPath: nsPath(a), timeoutMs: 100 })) && Date.now() < deadline);
  return { a, b, nsA: nsPath(a) };
}

function connection(src: string[], dst: string[]) {
  return create(ConnectionSchema, {
    id: "c",
    context: create(ConnectionContextSchema, {
      ipContext: create(IPContextSchema, { srcIpAddrs: src, dstIpAddrs: dst }),
    }),
  });
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await p;
  return { value, ms: performance.now() - t0 };
}

describe("ICMP echo from a netns (addon)", { skip }, () => {
  after(() => namespaces.deleteAll());

  it("an answered echo is alive, IPv4 and IPv6, through an ICMP datagram socket", async () => {
    const p = await pair();
    assert.equal(await icmpEcho("10.98.0.2", { src: "10.98.0.1", nsPath: p.nsA, timeoutMs: 1000 }), true);
    assert.equal(await icmpEcho("fd98::2", { src: "fd98::1", nsPath: p.nsA, timeoutMs: 1000 }), true);
    assert.equal(await icmpEcho("10.98.0.2", { nsPath: p.nsA, timeoutMs: 1000 }), true, "kernel-chosen source");
  });

  it("answers through a raw socket when ping_group_range refuses datagram sockets (root)", async () => {
    const p = await pair("1 0");
    assert.equal(await icmpEcho("10.98.0.2", { src: "10.98.0.1", nsPath: p.nsA, timeoutMs: 1000 }), true);
    assert.equal(await icmpEcho("fd98::2", { src: "fd98::1", nsPath: p.nsA, timeoutMs: 1000 }), true);
  });

  it("an address nobody answers is not alive, after the timeout and not much later", async () => {
    const p = await pair();
    for (const dst of ["10.98.0.77", "fd98::77"]) {
      const r = await timed(icmpEcho(dst, { nsPath: p.nsA, timeoutMs: TIMEOUT_MS }));
      assert.equal(r.value, false, dst);
      assert.ok(r.ms >= TIMEOUT_MS - 20 && r.ms < TIMEOUT_MS + 500, `${dst}: ${r.ms} ms`);
    }
  });

  it("a deleted peer is not alive within the timeout", async () => {
    const p = await pair();
    assert.equal(await icmpEcho("10.98.0.2", { src: "10.98.0.1", nsPath: p.nsA, timeoutMs: 1000 }), true);
    namespaces.delete(p.b); // takes v1 and with it v0, once the kernel has cleaned the netns up
    const gone = Date.now() + 10_000;
    while (spawnSync("ip", ["-n", p.a, "link", "show", "v0"], { stdio: "ignore" }).status === 0) {
      assert.ok(Date.now() < gone, "v0 still there 10 s after its peer's netns was deleted");
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const [src, dst] of [
      ["10.98.0.1", "10.98.0.2"],
      ["fd98::1", "fd98::2"],
    ]) {
      const r = await timed(icmpEcho(dst!, { src, nsPath: p.nsA, timeoutMs: TIMEOUT_MS }));
      assert.equal(r.value, false, dst);
      assert.ok(r.ms < TIMEOUT_MS + 500, `${dst}: ${r.ms} ms`);
    }
  });

  it("a link set down is not alive within the timeout, and alive again when up", async () => {
    const p = await pair();
    execFileSync("ip", ["-n", p.b, "link", "set", "v1", "down"]);
    for (const dst of ["10.98.0.2", "fd98::2"]) {
      const r = await timed(icmpEcho(dst, { nsPath: p.nsA, timeoutMs: TIMEOUT_MS }));
      assert.equal(r.value, false, dst);
      assert.ok(r.ms < TIMEOUT_MS + 500, `${dst}: ${r.ms} ms`);
    }
    execFileSync("ip", ["-n", p.b, "link", "set", "v1", "up"]);
    let back = false;
    for (let i = 0; i < 30 && !back; i++) back = await icmpEcho("10.98.0.2", { nsPath: p.nsA, timeoutMs: 200 });
    assert.equal(back, true);
  });

  it("bad input: a missing netns and a bad address reject with a code and change nothing", async () => {
    await assert.rejects(icmpEcho("10.98.0.2", { nsPath: "/nonexistent/ns" }), { code: "ENOENT" });
    const p = await pair();
    await assert.rejects(icmpEcho("not-an-ip", { nsPath: p.nsA }), { code: "EINVAL" });
    await assert.rejects(icmpEcho("10.98.0.2", { src: "fd98::1", nsPath: p.nsA }), { code: "EINVAL" });
    assert.equal(await icmpEcho("10.98.0.2", { nsPath: p.nsA }), true);
  });
});

describe("icmpLivenessCheck (the NSC's heal liveness check)", { skip }, () => {
  after(() => namespaces.deleteAll());

  it("alive iff every destination answers from the source of its family; aborted → not alive", async () => {
    const p = await pair();
    const check = icmpLivenessCheck({ timeoutMs: TIMEOUT_MS, nsPath: p.nsA });
    const signal = () => AbortSignal.timeout(5000);
    const both = connection(["10.98.0.1/24", "fd98::1/64"], ["10.98.0.2/32", "fd98::2/128"]);
    assert.equal(await check(both, signal()), true);
    const oneDead = connection(["10.98.0.1/24"], ["10.98.0.2/32", "10.98.0.99/32"]);
    assert.equal(await check(oneDead, signal()), false);
    assert.equal(await check(create(ConnectionSchema), signal()), true, "nothing to check counts as alive");
    const ac = new AbortController();
    const pending = timed(check(connection(["10.98.0.1/24"], ["10.98.0.99/32"]), ac.signal));
    setTimeout(() => ac.abort(), 50);
    const r = await pending;
    assert.equal(r.value, false);
    assert.ok(r.ms < TIMEOUT_MS, `aborted after ${r.ms} ms`);
  });

  it("a netns that cannot be opened is not alive (no exception), logged once", async () => {
    const warnings: unknown[] = [];
    const log = { warn: (obj: unknown) => warnings.push(obj) } as unknown as Logger;
    const check = icmpLivenessCheck({ nsPath: "/nonexistent/ns", timeoutMs: TIMEOUT_MS, log });
    const conn = connection(["10.98.0.1/24"], ["10.98.0.2/32"]);
    assert.equal(await check(conn, AbortSignal.timeout(5000)), false);
    assert.equal(await check(conn, AbortSignal.timeout(5000)), false);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal((warnings[0] as { code: string }).code, "ENOENT");
  });
});
