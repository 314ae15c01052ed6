// SPDX-License-Identifier: Apache-2.0
/**
 * Deleting through the local runtime, on two nodes: a deleted client's connection is closed, so
 * both veth ends disappear (the endpoint loses its interface too) and the client can come back;
 * deleting the whole example removes its pods, namespaces and NetworkService. Also: placement
 * (podAffinity co-locates, podAntiAffinity spreads, an impossible one is refused and changes
 * nothing), `apply` before `up`, and `down` of a runtime that never came up.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXAMPLE, ipv4Of, linksOf, podNetns, rows, skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const NS = "ns-kernel2kernel";
const skip = skipReason();

function spread(replicas: number): string {
  return [
    "apiVersion: apps/v1",
    "kind: Deployment",
    "metadata: {name: spread}",
    "spec:",
    `  replicas: ${replicas}`,
    "  selector: {matchLabels: {app: spread}}",
    "  template:",
    "    metadata: {labels: {app: spread}}",
    "    spec:",
    "      containers: [{name: idle, image: busybox, command: [sleep, '3600']}]",
    "      affinity:",
    "        podAntiAffinity:",
    "          requiredDuringSchedulingIgnoredDuringExecution:",
    "            - topologyKey: kubernetes.io/hostname",
    "              labelSelector: {matchLabels: {app: spread}}",
  ].join("\n");
}

describe("local runtime: delete and placement on two nodes", { skip }, () => {
  let rt: TestRuntime;
  let dir: string;

  before(async () => {
    rt = testRuntime("delete");
    dir = join(rt.dir, "..", "manifests");
    mkdirSync(dir, { recursive: true });
    const up = await rt.ok("up", "--nodes", "2");
    assert.match(up, /node-1: netns .*-node-1/);
    assert.match(up, /node-2: netns .*-node-2/);
    await rt.ok("apply", "-f", EXAMPLE);
  });
  after(() => rt?.cleanup());

  it("podAffinity puts the client on the endpoint's node", async () => {
    const pods = rows(await rt.ok("get", "pods", "-n", NS));
    const nodes = new Set(pods.map((p) => p[4]));
    assert.equal(nodes.size, 1, JSON.stringify(pods));
  });

  it("deleting the client closes its connection: both veth ends go, and it can come back", async () => {
    const nse = rows(await rt.ok("get", "pods", "-n", NS)).find((p) => p[1]!.startsWith("nse-kernel-"))![1]!;
    const nseNetns = podNetns(rt, NS, nse);
    const clientNetns = podNetns(rt, NS, "alpine");
    assert.deepEqual(ipv4Of(clientNetns, "nsm-1"), ["172.16.1.101/32"]);
    const [endpointEnd] = linksOf(nseNetns);
    assert.ok(endpointEnd, "the endpoint has no interface");

    const out = await rt.ok("delete", "-f", join(EXAMPLE, "client.yaml"), "-n", NS);
    assert.match(out, /pod "alpine" deleted/);
    assert.ok(!rt.netns().includes(clientNetns), "the client netns is still there");
    assert.deepEqual(linksOf(nseNetns), [], "the endpoint still has the other veth end");
    assert.deepEqual(rows(await rt.ok("get", "connections")), []);
    const logs = readFileSync(join(rt.dir, "logs", `${NS}_alpine_cmd-nsc.log`), "utf8");
    assert.match(logs, /connection closed/);

    // Apply again: the same address comes back (the endpoint freed it).
    await rt.ok("apply", "-f", EXAMPLE);
    assert.deepEqual(ipv4Of(podNetns(rt, NS, "alpine"), "nsm-1"), ["172.16.1.101/32"]);
    const ping = await rt.nsm("exec", "alpine", "-n", NS, "--", "ping", "-c", "1", "-W", "2", "172.16.1.100");
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  });

  it("a client whose sidecar was killed (no Close) still loses both veth ends when deleted", async () => {
    const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
    const alpine = state.pods.find((p: { name: string }) => p.name === "alpine");
    const sidecar = alpine.containers.find((c: { name: string }) => c.name === "cmd-nsc");
    process.kill(sidecar.proc.pid, "SIGKILL");
    const nse = rows(await rt.ok("get", "pods", "-n", NS)).find((p) => p[1]!.startsWith("nse-kernel-"))![1]!;
    assert.equal(linksOf(podNetns(rt, NS, nse)).length, 1);
    const out = await rt.ok("delete", "-f", join(EXAMPLE, "client.yaml"), "-n", NS);
    assert.match(out, /removed interface\(s\) left open: nsm-1/);
    assert.deepEqual(linksOf(podNetns(rt, NS, nse)), []);
  });

  it("podAntiAffinity spreads replicas over the nodes; a third replica cannot be placed and changes nothing", async () => {
    const two = join(dir, "spread2.yaml");
    writeFileSync(two, spread(2));
    await rt.ok("apply", "-f", two);
    const pods = rows(await rt.ok("get", "pods", "-n", "default"));
    assert.deepEqual(pods.map((p) => p[4]).sort(), ["node-1", "node-2"]);

    const three = join(dir, "spread3.yaml");
    writeFileSync(three, spread(3));
    const before = rt.netns().sort();
    const r = await rt.nsm("apply", "-f", three);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot be scheduled: podAntiAffinity excludes every node/);
    assert.deepEqual(rt.netns().sort(), before);
    assert.equal(rows(await rt.ok("get", "pods", "-n", "default")).length, 2);

    const out = await rt.ok("delete", "-f", two);
    assert.match(out, /deployment\.apps "spread" deleted/);
    assert.match(await rt.nsm("get", "pods", "-n", "default").then((x) => x.stdout), /No resources found/);
  });

  it("deleting the whole example removes its pods, namespace and NetworkService", async () => {
    const podNs = rt.netns().filter((n) => !/-(node-\d+|fabric)$/.test(n));
    assert.equal(podNs.length, 1, JSON.stringify(podNs));
    const out = await rt.ok("delete", "-f", EXAMPLE);
    assert.match(out, /namespace "ns-kernel2kernel" deleted/);
    assert.match(out, /networkservice "kernel2kernel" unregistered/);
    assert.deepEqual(rt.netns().sort(), [`${rt.prefix}-fabric`, `${rt.prefix}-node-1`, `${rt.prefix}-node-2`]);
    assert.ok(!rows(await rt.ok("get", "networkservices")).some((r) => r[0] === "kernel2kernel"));
    assert.match((await rt.nsm("get", "namespaces")).stdout, /No resources found/);
  });

  it("nsm down leaves nothing", async () => {
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});

describe("local runtime: commands without a runtime", { skip }, () => {
  let rt: TestRuntime;
  before(() => {
    rt = testRuntime("none");
  });
  after(() => rt?.cleanup());

  it("apply before up is a readable error and creates nothing", async () => {
    const r = await rt.nsm("apply", "-f", EXAMPLE);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the local runtime is not up .*: run `nsm up` first/);
    assert.deepEqual(rt.netns(), []);
  });

  it("down without up succeeds and has nothing to do", async () => {
    const r = await rt.nsm("down");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no runtime state/);
  });
});
