// SPDX-License-Identifier: Apache-2.0
/**
 * Scale-out of examples/kernel2kernel (test/local/scale): two endpoint replicas sharing
 * 172.16.1.96/28 and a client Deployment of four annotated replicas. Every client gets its own
 * nsm-1 and pings its own endpoint; round robin spreads the clients over both endpoints.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ipJson, ipv4Of, linksOf, podNetns, rows, skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const NS = "ns-kernel2kernel";
const skip = skipReason();

describe("local runtime: kernel2kernel scaled to 2 endpoints and 4 clients", { skip }, () => {
  let rt: TestRuntime;

  before(async () => {
    rt = testRuntime("scale");
    await rt.ok("up");
    const out = await rt.ok("apply", "-f", join(import.meta.dirname, "scale"));
    assert.match(out, /deployment\.apps\/nse-kernel created \(2 replicas\)/);
    assert.match(out, /deployment\.apps\/alpine created \(4 replicas\)/);
  });
  after(() => rt?.cleanup());

  it("runs 2 endpoints and 4 clients, each client with one connection", async () => {
    const pods = rows(await rt.ok("get", "pods", "-n", NS));
    const nses = pods.filter((p) => p[1]!.startsWith("nse-kernel-"));
    const clients = pods.filter((p) => p[1]!.startsWith("alpine-"));
    assert.equal(nses.length, 2, JSON.stringify(pods));
    assert.equal(clients.length, 4, JSON.stringify(pods));
    for (const p of pods) assert.equal(p[3], "Running", JSON.stringify(p));
    const deployments = rows(await rt.ok("get", "deployments", "-n", NS));
    assert.deepEqual(deployments.map((d) => [d[1], d[2]]).sort(), [
      ["alpine", "4/4"],
      ["nse-kernel", "2/2"],
    ]);

    const conns = rows(await rt.ok("get", "connections"));
    assert.equal(conns.length, 4, JSON.stringify(conns));
    const endpoints = new Set(conns.map((c) => c[3]));
    assert.deepEqual([...endpoints].sort(), nses.map((n) => n[1]).sort(), "round robin should use both endpoints");
    const ids = conns.map((c) => c[1]).sort();
    assert.deepEqual(ids, clients.map((c) => `${c[1]}-0`).sort());
  });

  it("every client pings its own endpoint over its own nsm-1", async () => {
    const conns = rows(await rt.ok("get", "connections"));
    await Promise.all(
      conns.map(async ([, id, , endpoint, src, dst]) => {
        const pod = id!.replace(/-0$/, "");
        const netns = podNetns(rt, NS, pod);
        assert.deepEqual(ipv4Of(netns, "nsm-1"), [src]);
        const peer = dst!.replace(/\/32$/, "");
        const routes = ipJson(netns, "route", "show");
        assert.ok(
          routes.some((r) => r.dst === peer && r.dev === "nsm-1"),
          JSON.stringify(routes),
        );
        const r = await rt.nsm("exec", pod, "-n", NS, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", peer);
        assert.equal(r.code, 0, `${pod} → ${endpoint} ${peer}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /2 received/);
        // The endpoint has the other end of this client's link, with the peer address.
        const nseNetns = podNetns(rt, NS, endpoint!);
        assert.ok(
          linksOf(nseNetns).some((l) => ipv4Of(nseNetns, l.ifname).includes(dst!)),
          `${endpoint} has no interface with ${dst}`,
        );
      }),
    );
  });

  it("each endpoint has one interface per client it serves", async () => {
    const conns = rows(await rt.ok("get", "connections"));
    for (const nse of new Set(conns.map((c) => c[3]!))) {
      const served = conns.filter((c) => c[3] === nse).length;
      assert.equal(linksOf(podNetns(rt, NS, nse)).length, served, nse);
    }
  });

  it("nsm down leaves nothing", async () => {
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
