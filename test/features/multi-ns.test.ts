// SPDX-License-Identifier: Apache-2.0
/**
 * examples/multi-ns end to end on the local runtime: one client pod annotated with two NSURLs
 * (NSM_NETWORK_SERVICES with two entries) gets two interfaces, nsm-1 and nsm-2, each with the
 * address of its own service's endpoint, and both endpoints answer pings; deleting the example
 * closes both connections.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ipv4Of, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-multi-ns";
const EXAMPLE = join(REPO, "examples", "multi-ns");
const PING = ["ping", "-c", "3", "-i", "0.2", "-W", "2"];

describe("features: examples/multi-ns", { skip: skipReason() }, () => {
  let rt: TestRuntime;

  before(async () => {
    rt = testRuntime("multins");
    await rt.ok("up");
    await rt.ok("apply", "-k", EXAMPLE);
  });
  after(() => rt?.cleanup());

  it("the client has nsm-1 (172.16.1.101) and nsm-2 (172.16.2.101)", () => {
    const client = podNetns(rt, NS, "alpine");
    assert.deepEqual(ipv4Of(client, "nsm-1"), ["172.16.1.101/32"]);
    assert.deepEqual(ipv4Of(client, "nsm-2"), ["172.16.2.101/32"]);
  });

  it("both endpoints answer through their own interface, and ping back", async () => {
    for (const [target, address] of [
      ["pods/alpine", "172.16.1.100"],
      ["pods/alpine", "172.16.2.100"],
      ["deployments/nse-kernel-1", "172.16.1.101"],
      ["deployments/nse-kernel-2", "172.16.2.101"],
    ] as const) {
      const r = await rt.nsm("exec", target, "-n", NS, "--", ...PING, address);
      assert.equal(r.code, 0, `${target} -> ${address}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /3 packets transmitted, 3 received/);
    }
  });

  it("two connections, alpine-0 and alpine-1, one per service; deleting the example closes both", async () => {
    const conns = rows(await rt.ok("get", "connections"));
    assert.deepEqual(conns.map((r) => [r[1], r[2]]).sort(), [
      ["alpine-0", "multi-ns-1"],
      ["alpine-1", "multi-ns-2"],
    ]);
    await rt.ok("delete", "-k", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "connections")), []);
  });
});
