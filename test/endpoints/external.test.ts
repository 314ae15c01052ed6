// SPDX-License-Identifier: Apache-2.0
/**
 * examples/external-network on the local runtime with two nodes: the external endpoint on node-1
 * creates the namespace standing for the outside network (the example's address plan on its
 * lan0, the uplink veth to the endpoint); a client on node-2 (VXLAN to the endpoint) gets routes
 * to the outside's prefixes, pings both outside addresses, and a TCP server in the outside sees
 * the endpoint's uplink address as the source (NAT). Delete removes the outside namespace, the
 * uplink and the NAT table with the endpoint; down leaves nothing.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ipJson,
  ipv4Of,
  listNetns,
  podNetns,
  REPO,
  rows,
  skipReason,
  type TestRuntime,
  testRuntime,
} from "../local/helpers.js";

const NS = "ns-external-network";
const EXAMPLE = join(REPO, "examples", "external-network");
const skip = skipReason();
const SERVER = "require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(8080, '203.0.113.1')";
const CLIENT =
  "const s = require('net').connect(8080, '203.0.113.1'); s.setTimeout(5000, () => process.exit(3)); s.on('data', (d) => process.stdout.write(d))";

describe("endpoints: examples/external-network (a network outside the mesh)", { skip }, () => {
  let rt: TestRuntime;
  let nsePod: string;
  let outside: string;
  let server: ChildProcess | undefined;

  before(async () => {
    rt = testRuntime("external");
    await rt.ok("up", "--nodes", "2");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(
      out,
      /pod ns-external-network\/alpine running on node-2, connected kernel:\/\/external-network\/nsm-1/,
    );
    nsePod = rows(await rt.ok("get", "pods", "-n", NS)).find((r) => r[1]!.startsWith("nse-external-"))![1]!;
    outside = `${podNetns(rt, NS, nsePod)}-outside`;
  });
  after(() => {
    if (server?.exitCode === null && !server.killed) server.kill();
    return rt?.cleanup();
  });

  it("the outside namespace has the address plan on lan0 and the router's end of the uplink", () => {
    assert.ok(listNetns().includes(outside), `${outside} exists`);
    assert.deepEqual(ipv4Of(outside, "lan0"), ["203.0.113.1/24", "198.51.100.7/24"]);
    assert.deepEqual(ipv4Of(outside, "ext0"), ["192.0.2.2/30"]);
    assert.deepEqual(ipv4Of(podNetns(rt, NS, nsePod), "ext0"), ["192.0.2.1/30"]);
  });

  it("the client gets an address on the endpoint's segment and routes to the outside through it", () => {
    const client = podNetns(rt, NS, "alpine");
    assert.deepEqual(ipv4Of(client, "nsm-1"), ["172.16.5.2/24"]);
    const routes = ipJson(client, "-4", "route", "show", "dev", "nsm-1")
      .filter((r) => r.gateway)
      .map((r) => `${r.dst} via ${r.gateway}`)
      .sort();
    assert.deepEqual(routes, ["198.51.100.0/24 via 172.16.5.1", "203.0.113.0/24 via 172.16.5.1"]);
  });

  it("the client (node-2) pings both outside addresses", async () => {
    for (const to of ["203.0.113.1", "198.51.100.7"]) {
      const r = await rt.nsm("exec", "alpine", "-n", NS, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", to);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
    }
  });

  it("TCP from the client reaches a server in the outside, which sees the endpoint's uplink address (NAT)", async () => {
    server = spawn("ip", ["netns", "exec", outside, process.execPath, "-e", SERVER], { stdio: "ignore" });
    let r = await rt.nsm("exec", "alpine", "-n", NS, "--", process.execPath, "-e", CLIENT);
    for (let i = 0; i < 20 && r.stdout.trim() === ""; i++) {
      await sleep(250);
      r = await rt.nsm("exec", "alpine", "-n", NS, "--", process.execPath, "-e", CLIENT);
    }
    assert.equal(r.stdout.trim(), "192.0.2.1", r.stdout + r.stderr);
    server.kill();
  });

  it("delete removes the outside, the uplink and the NAT with the endpoint; down leaves nothing", async () => {
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    assert.ok(!listNetns().includes(outside), `${outside} is gone`);
    assert.deepEqual(
      rt.netns().filter((n) => n.includes(NS)),
      [],
    );
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
