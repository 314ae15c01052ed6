// SPDX-License-Identifier: Apache-2.0
/**
 * examples/select-forwarder on the local runtime: a second forwarder, applied as a pod, registers
 * with `my_forwarder_capability: true`; the NetworkService's match selects it, so the client's
 * connection goes through it and not through the node's own forwarder. Checks upstream's pings,
 * the NSC log naming the selected forwarder (upstream's `kubectl logs … | grep my-forwarder`),
 * the connection's path, and that the node's forwarder carries no connection.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { assertPings, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-select-forwarder";
const skip = skipReason();

describe("examples/select-forwarder on the local runtime", { skip }, () => {
  let rt: TestRuntime;
  let forwarderPod: string;

  before(async () => {
    rt = testRuntime("selfwd");
    await rt.ok("up");
    await rt.ok("apply", "-k", join(REPO, "examples", "select-forwarder"));
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "alpine", "-n", NS);
    const pods = rows(await rt.ok("get", "pods", "-n", NS));
    forwarderPod = pods.find((p) => p[1]!.startsWith("my-forwarder-"))![1]!;
  });
  after(() => rt?.cleanup());

  it("the extra forwarder runs as a pod and is registered with its labels", async () => {
    const nses = await rt.ok("get", "networkserviceendpoints", "-o", "wide");
    const line = nses.split("\n").find((l) => l.startsWith(forwarderPod));
    assert.ok(line, nses);
    assert.match(line, /forwarder/);
  });

  it("pings both ways: 169.254.0.0 and 169.254.0.1", async () => {
    await assertPings(rt, "pods/alpine", NS, "169.254.0.0");
    await assertPings(rt, "deployments/nse-kernel", NS, "169.254.0.1");
  });

  it("the connection went through the forwarder whose labels match, as the NSC log says", async () => {
    const logs = await rt.ok("logs", "pods/alpine", "-c", "cmd-nsc", "-n", NS);
    assert.ok(logs.includes(forwarderPod), `the NSC log does not name ${forwarderPod}`);
    assert.ok(!logs.includes("forwarder-node-1"), "the node's forwarder was not on the path");
  });
});
