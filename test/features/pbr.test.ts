// SPDX-License-Identifier: Apache-2.0
/**
 * examples/policy-based-routing end to end on the local runtime, with the checks of upstream's
 * README: the two pings, then the five `ip route get` results in the client (tables 1-5, IPv4
 * and IPv6). The example is applied as written (`apply -k`): the endpoint reads its policies
 * from the ConfigMap `pbr-policies` mounted at upstream's default path.
 * Then upstream's local-forwarder-death with PBR: the forwarder is killed and restarted, the
 * connection heals, the five results hold and no rule is doubled.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { retrying } from "../../src/sdk/testing/async.js";
import {
  assertPings,
  ipJson,
  podNetns,
  REPO,
  rows,
  skipReason,
  type TestRuntime,
  testRuntime,
} from "../local/helpers.js";

const NS = "ns-policy-based-routing";
const EXAMPLE = join(REPO, "examples", "policy-based-routing");
const skip = skipReason();

/** The example with its client kept off the endpoint's node (the connection goes over VXLAN). */
function remoteCopy(dir: string): string {
  const out = join(dir, "pbr-example");
  cpSync(EXAMPLE, out, { recursive: true });
  const client = join(out, "client.yaml");
  writeFileSync(client, readFileSync(client, "utf8").replace("podAffinity:", "podAntiAffinity:"));
  return out;
}

const eventually = (fn: () => unknown, timeoutMs = 60_000) => retrying(fn, timeoutMs, 500);

describe("examples/policy-based-routing on the local runtime", { skip }, () => {
  let rt: TestRuntime;

  before(async () => {
    rt = testRuntime("pbr");
    await rt.ok("up");
    await rt.ok("apply", "-k", EXAMPLE);
  });
  after(() => rt?.cleanup());

  const exec = (pod: string, ...cmd: string[]) => rt.nsm("exec", pod, "-n", NS, "--", ...cmd);
  const routeGet = async (...args: string[]) => {
    const r = await exec("pods/nettools", "ip", ...args);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return r.stdout.replace(/\s+/g, " ");
  };

  it("pings both ways", async () => {
    const to = await exec("pods/nettools", "ping", "-c", "2", "-i", "0.2", "-W", "2", "172.16.1.100");
    assert.match(to.stdout, /2 received/, to.stdout + to.stderr);
    const back = await exec("deployments/nse-kernel", "ping", "-c", "2", "-i", "0.2", "-W", "2", "172.16.1.101");
    assert.match(back.stdout, /2 received/, back.stdout + back.stderr);
  });

  const routesByPolicy = async () => {
    assert.match(
      await routeGet("r", "get", "172.16.3.1", "from", "172.16.2.201", "ipproto", "tcp", "dport", "6666"),
      /172\.16\.3\.1 from 172\.16\.2\.201 via 172\.16\.2\.200 dev nsm-1 table 1/,
    );
    assert.match(
      await routeGet("r", "get", "172.16.3.1", "from", "172.16.2.201", "ipproto", "tcp", "sport", "5555"),
      /172\.16\.3\.1 from 172\.16\.2\.201 dev nsm-1 table 2/,
    );
    assert.match(
      await routeGet("r", "get", "172.16.4.1", "ipproto", "udp", "dport", "6666"),
      /172\.16\.4\.1 dev nsm-1 table 3 src 172\.16\.1\.101/,
    );
    assert.match(
      await routeGet("r", "get", "172.16.4.1", "ipproto", "udp", "dport", "6668"),
      /172\.16\.4\.1 dev nsm-1 table 4 src 172\.16\.1\.101/,
    );
    assert.match(
      await routeGet("-6", "route", "get", "2004::5", "from", "2004::3", "ipproto", "udp", "dport", "5555"),
      /via 2004::6 dev nsm-1 table 5 src 2004::3/,
    );
  };

  it("routes by policy as upstream's README checks (tables 1-5)", routesByPolicy);

  it("local-forwarder-death: the restarted forwarder re-adopts the tables, nothing doubled", async () => {
    const log = join(rt.dir, "logs", "node-1-forwarder.log");
    await rt.ok("delete", "pod", "forwarder-node-1", "-n", "nsm-system");
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "forwarder-node-1", "-n", "nsm-system");
    await eventually(() =>
      assert.ok(existsSync(log) && readFileSync(log, "utf8").includes("re-adopted"), "the connection healed"),
    );
    await routesByPolicy();
    const client = podNetns(rt, NS, "nettools");
    assert.equal(ipJson(client, "rule").length, 7, "3 default + 4 policy rules, none doubled");
    assert.equal(ipJson(client, "-6", "rule").length, 3, "2 default + 1 policy rule");
  });

  it("deleting the namespace removes the connection and its policies", async () => {
    const client = podNetns(rt, NS, "nettools");
    assert.equal(ipJson(client, "rule").length, 7, "3 default + 4 policy rules");
    await rt.ok("delete", "ns", NS);
    const left = rt.netns().filter((n) => n === client);
    assert.deepEqual(left, [], "the client's netns is gone");
  });
});

describe("examples/policy-based-routing across two nodes (VXLAN)", { skip }, () => {
  let rt: TestRuntime;

  before(async () => {
    rt = testRuntime("pbr-remote");
    await rt.ok("up", "--nodes", "2");
    await rt.ok("apply", "-k", remoteCopy(join(rt.dir, "..")));
  });
  after(() => rt?.cleanup());

  it("the client's node forwarder programs the policies: tables 1 and 5 answer through nsm-1", async () => {
    const nodes = rows(await rt.ok("get", "pods", "-n", NS, "-o", "wide")).map((p) => p[6]);
    assert.equal(new Set(nodes).size, 2, `client and endpoint on different nodes: ${nodes}`);
    const get = async (...args: string[]) =>
      (await rt.ok("exec", "pods/nettools", "-n", NS, "--", "ip", ...args)).replace(/\s+/g, " ");
    assert.match(
      await get("r", "get", "172.16.3.1", "from", "172.16.2.201", "ipproto", "tcp", "dport", "6666"),
      /via 172\.16\.2\.200 dev nsm-1 table 1/,
    );
    assert.match(
      await get("-6", "route", "get", "2004::5", "from", "2004::3", "ipproto", "udp", "dport", "5555"),
      /via 2004::6 dev nsm-1 table 5 src 2004::3/,
    );
    await assertPings(rt, "pods/nettools", NS, "172.16.1.100");
  });
});
