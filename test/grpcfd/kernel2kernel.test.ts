// SPDX-License-Identifier: Apache-2.0
/**
 * Netns passing by descriptor through the local runtime (root, real network namespaces):
 * examples/kernel2kernel with our NSC, nsmgr, forwarder and NSE on unix sockets that pass
 * descriptors (NSC → nsmgr → forwarder, NSE → forwarder). The forwarder gets both namespaces as descriptors (its log says so for each
 * side), both pings answer, neither nsmgr nor the forwarder holds a namespace descriptor once
 * the Request is done (counted in /proc/<pid>/fd), and deleting the client still removes the
 * interfaces (the forwarder finds the namespaces by their identity).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXAMPLE, linksOf, podNetns, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-kernel2kernel";
const skip = skipReason();
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pid of the runtime process whose command line has the word `role` (nsmgr, forwarder). */
function pidOf(rt: TestRuntime, role: string): number {
  const found = rt.processes().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(role);
    } catch {
      return false;
    }
  });
  assert.equal(found.length, 1, `one ${role} process expected, found ${JSON.stringify(found)}`);
  return found[0]!;
}

/** How many descriptors of a process name a network namespace. */
function netnsFds(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("net:[")) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

async function ping(rt: TestRuntime, target: string, address: string): Promise<void> {
  const r = await rt.nsm("exec", target, "-n", NS, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", address);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
}

describe("grpcfd: kernel2kernel with namespaces passed as descriptors", { skip }, () => {
  let rt: TestRuntime;
  let nsmgr: number;
  let forwarder: number;
  const baseline = { nsmgr: 0, forwarder: 0 };

  before(async () => {
    rt = testRuntime("grpcfd", { NSM_PASS_FDS: "true" });
    await rt.ok("up");
    nsmgr = pidOf(rt, "nsmgr");
    forwarder = pidOf(rt, "forwarder");
    baseline.nsmgr = netnsFds(nsmgr);
    baseline.forwarder = netnsFds(forwarder);
    await rt.ok("apply", "-f", EXAMPLE);
  });
  after(() => rt?.cleanup());

  it("pings both ways", async () => {
    await ping(rt, "alpine", "172.16.1.100");
    await ping(rt, "deployments/nse-kernel", "172.16.1.101");
  });

  it("the forwarder proved both namespaces by received descriptors", () => {
    const log = readFileSync(join(rt.dir, "logs", "node-1-forwarder.log"), "utf8");
    const proofs = log.split("\n").filter((l) => l.includes("netns ownership proven by a received descriptor"));
    for (const side of ["client", "endpoint"]) {
      const line = proofs.find((l) => l.includes(`"side":"${side}"`));
      assert.ok(line, `no proof for the ${side} side in the forwarder's log:\n${proofs.join("\n")}`);
      assert.match(line, new RegExp(`"netns":"file:///proc/${forwarder}/fd/\\d+"`));
    }
  });

  it("nsmgr and the forwarder hold no namespace descriptor once the Request is done", async () => {
    // Sampled for a while: refreshes (every third of the token lifetime) hold them only during their call.
    for (let i = 0; i < 10; i++) {
      assert.deepEqual({ nsmgr: netnsFds(nsmgr), forwarder: netnsFds(forwarder) }, baseline);
      await settle(100);
    }
  });

  it("deleting the client removes both ends of the pair, and nothing is held after", async () => {
    const nsePod = rows(await rt.ok("get", "pods", "-n", NS)).find((r) => r[1]!.startsWith("nse-kernel-"))![1]!;
    const endpointNetns = podNetns(rt, NS, nsePod);
    assert.equal(linksOf(endpointNetns).filter((l) => l.ifalias?.startsWith("nsm:")).length, 1);
    await rt.ok("delete", "-f", join(EXAMPLE, "client.yaml"), "-n", NS);
    let leftLinks = linksOf(endpointNetns).filter((l) => l.ifalias?.startsWith("nsm:"));
    for (let i = 0; i < 50 && leftLinks.length > 0; i++) {
      await settle(200);
      leftLinks = linksOf(endpointNetns).filter((l) => l.ifalias?.startsWith("nsm:"));
    }
    assert.deepEqual(leftLinks, [], "the endpoint's interface was removed (its netns found by identity)");
    assert.deepEqual({ nsmgr: netnsFds(nsmgr), forwarder: netnsFds(forwarder) }, baseline);
  });
});
