// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal READMEs local-nsmgr-restart and local-forwarder-death, command by command with
 * `kubectl` standing for `nsm`, on our examples/kernel2ethernet2kernel (client and endpoint on
 * different nodes, VXLAN between the forwarders), `nsm up --nodes 2`: apply -k, wait, both
 * pings, find the client's node and its nsmgr (then forwarder) pod in nsm-system by label and
 * field selector, `delete pod … -n nsm-system`, wait for it, both pings again (retried for up to
 * a minute, as upstream's test runner does), delete ns.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO, skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const EXAMPLE = join(REPO, "examples", "kernel2ethernet2kernel");
const NS = "ns-kernel2ethernet2kernel";
const NAMES = '{{range .items}}{{.metadata.name}}{{"\\n"}}{{end}}';
const NODES = '{{range .items}}{{.spec.nodeName}}{{"\\n"}}{{end}}';
const skip = skipReason();

async function eventually(fn: () => Promise<void>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** The pid of the nsmgr or forwarder of `node`, from the runtime's state. */
function componentPid(rt: TestRuntime, node: string, app: string): number {
  const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
  const n = state.nodes.find((x: { name: string }) => x.name === node);
  return (app === "nsmgr" ? n.nsmgr : n.forwarder).pid;
}

describe("heal READMEs through the kubectl-compatible CLI", { skip }, () => {
  let rt: TestRuntime;
  let nscNode: string;

  const ping = async (target: string, address: string) => {
    const r = await rt.nsm("exec", target, "-n", NS, "--", "ping", "-c", "4", "-i", "0.2", "-W", "2", address);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /4 packets transmitted, 4 received, 0% packet loss/);
  };
  const bothPings = async () => {
    await ping("pods/alpine", "172.16.1.100");
    await ping("deployments/nse-kernel", "172.16.1.101");
  };

  /** Deletes the component pod of `app` on the client's node as the README does, and waits for it. */
  const restartOnClientNode = async (app: string) => {
    const selector = ["-l", `app=${app}`, "--field-selector", `spec.nodeName==${nscNode}`, "-n", "nsm-system"];
    const pod = (await rt.ok("get", "pods", ...selector, "--template", NAMES)).trim();
    assert.equal(pod, `${app === "nsmgr" ? "nsmgr" : "forwarder"}-${nscNode}`);
    const pidBefore = componentPid(rt, nscNode, app);
    assert.match(await rt.ok("delete", "pod", pod, "-n", "nsm-system"), new RegExp(`pod "${pod}" deleted`));
    assert.equal(
      await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", ...selector),
      `pod/${pod} condition met\n`,
    );
    const pidAfter = componentPid(rt, nscNode, app);
    assert.notEqual(pidAfter, pidBefore, "a new process runs the component (as a DaemonSet's new pod)");
  };

  before(async () => {
    rt = testRuntime("heal-kubectl");
    await rt.ok("up", "--nodes", "2");
    await rt.ok("apply", "-k", EXAMPLE);
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", "app=alpine", "-n", NS);
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", "app=nse-kernel", "-n", NS);
    nscNode = (await rt.ok("get", "pods", "-l", "app=alpine", "-n", NS, "--template", NODES)).trim();
  });
  after(() => rt?.cleanup());

  it("the client and the endpoint are on different nodes and ping each other", async () => {
    const nseNode = (await rt.ok("get", "pods", "-l", "app=nse-kernel", "-n", NS, "--template", NODES)).trim();
    assert.match(nscNode, /^node-[12]$/);
    assert.match(nseNode, /^node-[12]$/);
    assert.notEqual(nscNode, nseNode);
    await bothPings();
  });

  it("local-nsmgr-restart: delete the nsmgr pod of the client's node, wait, ping again", async () => {
    const pidOf = () =>
      rt.ok(
        "get",
        "pods",
        "-l",
        "app=nsmgr",
        "--field-selector",
        `spec.nodeName==${nscNode}`,
        "-n",
        "nsm-system",
        "-o",
        "jsonpath={.items[0].spec.containers[0].command}",
      );
    const stateBefore = await pidOf();
    await restartOnClientNode("nsmgr");
    assert.ok(stateBefore.length > 0);
    await eventually(bothPings);
  });

  it("local-forwarder-death: delete the forwarder pod of the client's node, wait, ping again", async () => {
    await restartOnClientNode("forwarder-vpp");
    await eventually(bothPings);
  });

  it("cleanup: delete ns", async () => {
    assert.match(await rt.ok("delete", "ns", NS), /namespace "ns-kernel2ethernet2kernel" deleted/);
    assert.equal(await rt.ok("get", "pods", "-A", "-l", "app in (alpine, nse-kernel)", "-o", "name"), "");
  });
});
