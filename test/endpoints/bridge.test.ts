// SPDX-License-Identifier: Apache-2.0
/**
 * examples/bridge on the local runtime: two clients of one bridge service get addresses from one
 * subnet, their interfaces are ports of the endpoint's bridge, they ping each other and the
 * endpoint; delete and down leave nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ipJson, ipv4Of, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-bridge";
const EXAMPLE = join(REPO, "examples", "bridge");
const skip = skipReason();

describe("endpoints: examples/bridge (L2 bridge service)", { skip }, () => {
  let rt: TestRuntime;
  let nsePod: string;
  const addr: Record<string, string> = {};

  before(async () => {
    rt = testRuntime("bridge");
    await rt.ok("up");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(out, /pod ns-bridge\/alpine-a running on node-1, connected kernel:\/\/bridge\/nsm-1/);
    assert.match(out, /pod ns-bridge\/alpine-b running on node-1, connected kernel:\/\/bridge\/nsm-1/);
    nsePod = rows(await rt.ok("get", "pods", "-n", NS)).find((r) => r[1]!.startsWith("nse-bridge-"))![1]!;
    for (const c of ["alpine-a", "alpine-b"]) addr[c] = ipv4Of(podNetns(rt, NS, c), "nsm-1")[0]!;
  });
  after(() => rt?.cleanup());

  it("both clients get an address from the subnet 172.16.2.0/24, the endpoint keeps .1 on its bridge", () => {
    assert.deepEqual(Object.values(addr).sort(), ["172.16.2.2/24", "172.16.2.3/24"]);
    const nse = podNetns(rt, NS, nsePod);
    assert.deepEqual(ipv4Of(nse, "nsm-br0"), ["172.16.2.1/24"]);
    const links = ipJson(nse, "link", "show");
    const bridge = links.find((l) => l.ifname === "nsm-br0");
    const ports = links.filter((l) => l.master === "nsm-br0").map((l) => l.ifname);
    assert.ok(bridge);
    assert.equal(ports.length, 2, JSON.stringify(links.map((l) => [l.ifname, l.master])));
    for (const p of ports) assert.deepEqual(ipv4Of(nse, p), [], `port ${p} carries no address`);
  });

  it("client A pings client B through the bridge, and B pings A", async () => {
    for (const [from, to] of [
      ["alpine-a", "alpine-b"],
      ["alpine-b", "alpine-a"],
    ] as const) {
      const ip = addr[to]!.split("/")[0]!;
      const r = await rt.nsm("exec", from, "-n", NS, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", ip);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
    }
  });

  it("the clients reach the endpoint at 172.16.2.1 and the endpoint reaches them", async () => {
    const r = await rt.nsm("exec", "alpine-a", "-n", NS, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "172.16.2.1");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const b = addr["alpine-b"]!.split("/")[0]!;
    const back = await rt.nsm("exec", nsePod, "-n", NS, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", b);
    assert.equal(back.code, 0, back.stdout + back.stderr);
  });

  it("delete removes the pods and their namespaces; down leaves nothing", async () => {
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    assert.deepEqual(
      rt.netns().filter((n) => n.includes("ns-bridge")),
      [],
    );
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
