// SPDX-License-Identifier: Apache-2.0
/**
 * examples/kernel2kernel end to end through the CLI, as its README runs it: `nsm up`,
 * `nsm apply -f examples/kernel2kernel`, the two pings, the address and routes of nsm-1, the
 * tables of `nsm get`, `nsm logs`; bad input changes nothing; `nsm down` leaves nothing behind.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  EXAMPLE,
  ipJson,
  ipv4Of,
  linksOf,
  listNetns,
  podNetns,
  rows,
  skipReason,
  type TestRuntime,
  testRuntime,
} from "./helpers.js";

const NS = "ns-kernel2kernel";
const skip = skipReason();

describe("local runtime: examples/kernel2kernel", { skip }, () => {
  let rt: TestRuntime;
  let nsePod: string;

  before(async () => {
    rt = testRuntime("k2k");
    await rt.ok("up");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(out, /namespace\/ns-kernel2kernel created/);
    assert.match(out, /networkservice\/kernel2kernel registered \(payload ETHERNET\)/);
    assert.match(out, /pod ns-kernel2kernel\/alpine running on node-1, connected kernel:\/\/kernel2kernel\/nsm-1/);
    const pods = rows(await rt.ok("get", "pods", "-n", NS));
    nsePod = pods.find((r) => r[1]!.startsWith("nse-kernel-"))![1]!;
  });
  after(() => rt?.cleanup());

  it("runs the endpoint deployment and the client pod, both Running on node-1", async () => {
    const pods = rows(await rt.ok("get", "pods"));
    assert.equal(pods.length, 2, JSON.stringify(pods));
    for (const p of pods) {
      assert.equal(p[0], NS);
      assert.equal(p[3], "Running", JSON.stringify(p));
      assert.equal(p[4], "node-1");
    }
    assert.match(nsePod, /^nse-kernel-[0-9a-f]{10}-[a-z0-9]{5}$/);
    assert.deepEqual(
      pods.map((p) => p[2]),
      pods.map((p) => (p[1] === "alpine" ? "2/2" : "1/1")),
    );
  });

  it("the client pings the endpoint: nsm exec alpine -n ns-kernel2kernel -- ping -c 4 172.16.1.100", async () => {
    const r = await rt.nsm("exec", "alpine", "-n", NS, "--", "ping", "-c", "4", "-i", "0.2", "-W", "2", "172.16.1.100");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /4 packets transmitted, 4 received, 0% packet loss/);
  });

  it("the endpoint pings the client: nsm exec deployments/nse-kernel -n ns-kernel2kernel -- ping -c 4 172.16.1.101", async () => {
    const r = await rt.nsm(
      "exec",
      "deployments/nse-kernel",
      "-n",
      NS,
      "--",
      "ping",
      "-c",
      "4",
      "-i",
      "0.2",
      "-W",
      "2",
      "172.16.1.101",
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /4 packets transmitted, 4 received, 0% packet loss/);
  });

  it("nsm-1 in the client has 172.16.1.101/32 and a route to 172.16.1.100; the endpoint side mirrors it", async () => {
    const shown = await rt.ok("exec", "pods/alpine", "-n", NS, "--", "ip", "addr", "show", "nsm-1");
    assert.match(shown, /inet 172\.16\.1\.101\/32/);

    const client = podNetns(rt, NS, "alpine");
    assert.deepEqual(ipv4Of(client, "nsm-1"), ["172.16.1.101/32"]);
    const routes = ipJson(client, "route", "show");
    assert.ok(
      routes.some((r) => r.dst === "172.16.1.100" && r.dev === "nsm-1"),
      `no route to 172.16.1.100 via nsm-1: ${JSON.stringify(routes)}`,
    );

    const endpoint = podNetns(rt, NS, nsePod);
    const [link] = linksOf(endpoint);
    assert.ok(link, "the endpoint has no interface");
    assert.match(link.ifalias ?? "", /^nsm:endpoint:/);
    assert.deepEqual(ipv4Of(endpoint, link.ifname), ["172.16.1.100/32"]);
    const back = ipJson(endpoint, "route", "show");
    assert.ok(
      back.some((r) => r.dst === "172.16.1.101" && r.dev === link.ifname),
      `no route back to 172.16.1.101: ${JSON.stringify(back)}`,
    );
    // The root namespace got nothing.
    assert.ok(!ipJsonRoot().some((l) => l.ifalias?.startsWith("nsm:")));
  });

  it("nsm get shows the service, the endpoint and the 4-hop connection", async () => {
    const services = rows(await rt.ok("get", "networkservices"));
    assert.deepEqual(services.find((r) => r[0] === "kernel2kernel")?.slice(0, 2), ["kernel2kernel", "ETHERNET"]);
    const nses = rows(await rt.ok("get", "networkserviceendpoints"));
    const nse = nses.find((r) => r[0] === nsePod);
    assert.ok(nse, JSON.stringify(nses));
    assert.equal(nse[1], "kernel2kernel");
    assert.match(nse[3]!, /^in \d+s$/);
    const conns = rows(await rt.ok("get", "connections"));
    assert.equal(conns.length, 1, JSON.stringify(conns));
    const [node, id, svc, endpoint, src, dst, state, path] = conns[0]!;
    assert.deepEqual(
      [node, id, svc, endpoint, src, dst, state],
      ["node-1", "alpine-0", "kernel2kernel", nsePod, "172.16.1.101/32", "172.16.1.100/32", "UP"],
    );
    assert.equal(path, `alpine > nsmgr-node-1 > forwarder-node-1 > ${nsePod}`);
  });

  it("nsm logs prints every container, the injected client's included", async () => {
    const logs = await rt.ok("logs", "alpine", "-n", NS);
    assert.match(logs, /^\[cmd-nsc-init\] .*INFO +connection established .*endpoint=nse-kernel-/m);
    assert.match(logs, /^\[cmd-nsc\] .*connection established/m);
    const nse = await rt.ok("logs", "deployments/nse-kernel", "-n", NS);
    assert.match(nse, /^\[nse\] .*endpoint serving and registered/m);
  });

  it("nsm exec passes the exit code through", async () => {
    const r = await rt.nsm("exec", "alpine", "-n", NS, "--", "sh", "-c", "exit 3");
    assert.equal(r.code, 3);
  });

  it("bad input is one readable error line, exit code 1, and changes nothing", async () => {
    const dir = join(rt.dir, "..", "bad");
    mkdirSync(dir, { recursive: true });
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const cases: [string[], RegExp][] = [
      [
        ["apply", "-f", file("gadget.yaml", "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: web\n")],
        /Gadget\/web: kind: no matches for kind "Gadget" in version "example\.com\/v1"/,
      ],
      [
        ["apply", "-f", file("broken.yaml", "kind: Pod\nmetadata:\n  name: x\n spec: [\n")],
        /malformed YAML at line \d+/,
      ],
      [
        [
          "apply",
          "-f",
          file(
            "lonely.yaml",
            [
              "apiVersion: v1",
              "kind: Pod",
              "metadata: {name: lonely, labels: {app: lonely}}",
              "spec:",
              "  containers: [{name: c, image: alpine}]",
              "  affinity:",
              "    podAffinity:",
              "      requiredDuringSchedulingIgnoredDuringExecution:",
              "        - topologyKey: kubernetes.io/hostname",
              "          labelSelector: {matchLabels: {app: nobody}}",
            ].join("\n"),
          ),
        ],
        /pod default\/lonely cannot be scheduled: podAffinity requires a node running a pod with app=nobody/,
      ],
      [["exec", "nosuch", "--", "true"], /pod "nosuch" not found in namespace "default"/],
      [["logs", "alpine"], /pod "alpine" not found in namespace "default" \(it exists in namespace ns-kernel2kernel/],
      [["get", "widgets"], /doesn't have a resource type "widgets"/],
    ];
    const stateBefore = readFileSync(join(rt.dir, "state.json"), "utf8");
    const netnsBefore = rt.netns().sort();
    for (const [args, message] of cases) {
      const r = await rt.nsm(...args);
      assert.equal(r.code, 1, `nsm ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    assert.equal(readFileSync(join(rt.dir, "state.json"), "utf8"), stateBefore);
    assert.deepEqual(rt.netns().sort(), netnsBefore);
  });

  it("the forwarder runs with NSM_PROCESS_ENV: 16 libuv threads (started), two malloc arenas", () => {
    const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const [forwarder] = rt.processes().filter((pid) => argv(pid).includes("forwarder"));
    assert.ok(forwarder, "no forwarder process");
    const environ = readFileSync(`/proc/${forwarder}/environ`, "utf8").split("\0");
    assert.ok(environ.includes("UV_THREADPOOL_SIZE=16"), "UV_THREADPOOL_SIZE is not 16");
    assert.ok(environ.includes("MALLOC_ARENA_MAX=2"), "MALLOC_ARENA_MAX is not 2");
    // The pool started with its netlink work: 16 threads beside the main one and V8's (4 with the default).
    const threads = readdirSync(`/proc/${forwarder}/task`).length;
    assert.ok(threads >= 20, `the forwarder has ${threads} threads`);
  });

  it("nsm down removes every netns, process and file; a second down is a no-op", async () => {
    assert.ok(rt.netns().length >= 3);
    assert.ok(rt.processes().length >= 6, `processes: ${rt.processes()}`);
    const out = await rt.ok("down");
    assert.match(out, /down: nothing left/);
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
    assert.ok(!listNetns().some((n) => n.startsWith(`${rt.prefix}-`)));
    assert.ok(!existsSync(rt.dir), "the state dir is still there");
    assert.ok(!ipJsonRoot().some((l) => l.ifalias?.startsWith("nsm:") || l.ifname.startsWith("nsm-")));
    const again = await rt.nsm("down");
    assert.equal(again.code, 0, again.stderr);
    const get = await rt.nsm("get", "pods");
    assert.equal(get.code, 1);
    assert.match(get.stderr, /not up/);
  });
});

function ipJsonRoot(): { ifname: string; ifalias?: string }[] {
  return JSON.parse(execFileSync("ip", ["-j", "link", "show"], { encoding: "utf8" }));
}
