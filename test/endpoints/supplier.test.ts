// SPDX-License-Identifier: Apache-2.0
/**
 * examples/scale-from-zero on the local runtime (two nodes), applied as written (`apply -k`): an
 * annotated client asks for a service that has no endpoint; the supplier (`cmd-nse-supplier-k8s`
 * → `nsm nse supplier`, its template in a ConfigMap volume) starts one from its pod template on
 * the client's node, while the `nsm apply` that waits for the client's `cmd-nsc-init` lends it
 * the runtime's lock; the client's requests succeed once the endpoint registered; ping both ways. When the client goes, the endpoint stops after NSM_IDLE_TIMEOUT and the supplier
 * deletes its pod. A broken template stops the supplier at start naming the variable; delete and
 * down leave nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-scale-from-zero";
const EXAMPLE = join(REPO, "examples", "scale-from-zero");
const skip = skipReason();

interface PodJson {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { nodeName: string };
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe("endpoints: examples/scale-from-zero (nsm nse supplier)", { skip }, () => {
  let rt: TestRuntime;
  const pods = async (selector: string): Promise<PodJson[]> =>
    JSON.parse(await rt.ok("get", "pods", "-n", NS, "-l", selector, "-o", "json")).items;
  const log = (pod: string, container: string) => {
    try {
      return readFileSync(join(rt.dir, "logs", `${NS}_${pod}_${container}.log`), "utf8");
    } catch {
      return "";
    }
  };

  before(async () => {
    rt = testRuntime("supplier");
    await rt.ok("up", "--nodes", "2");
    const out = await rt.ok("apply", "-k", EXAMPLE);
    assert.match(
      out,
      /pod ns-scale-from-zero\/nse-supplier-k8s-\S+ running on node-\d, endpoint nse-supplier-k8s-\S+ registered/,
    );
    // The apply returns once the injected client connected, through the endpoint the supplier made.
    assert.match(out, /pod ns-scale-from-zero\/alpine running on node-\d, connected kernel:\/\/scale-from-zero\/nsm-1/);
  });
  after(async () => {
    await rt?.cleanup();
  });

  it("the client's request with no endpoint succeeds once the supplied endpoint registered", async () => {
    await until("the client's connection", 90_000, () =>
      log("alpine", "cmd-nsc").includes("connection established") ? true : undefined,
    );
    const init = log("alpine", "cmd-nsc-init");
    assert.match(init, /endpoint created as nse-icmp-responder-node-\d/, "the first request met the supplier");
    assert.match(init, /connection established/);
    const supplier = (await pods("app=nse-supplier-k8s"))[0]!;
    assert.match(log(supplier.metadata.name, "nse-supplier"), /creating an endpoint pod/);
  });

  it("the endpoint was started on the client's node (not the supplier's), labelled createdBy", async () => {
    const [client] = await pods("app=alpine");
    const [supplier] = await pods("app=nse-supplier-k8s");
    const nses = await pods("app=nse-icmp-responder");
    assert.equal(nses.length, 1, JSON.stringify(nses));
    const nse = nses[0]!;
    assert.equal(nse.metadata.name, `nse-icmp-responder-${client!.spec.nodeName}`);
    assert.equal(nse.spec.nodeName, client!.spec.nodeName);
    assert.notEqual(nse.spec.nodeName, supplier!.spec.nodeName);
    assert.equal(nse.metadata.labels?.createdBy, supplier!.metadata.name);
  });

  it("ping works both ways over the new connection", async () => {
    const r = await rt.nsm(
      "exec",
      "alpine",
      "-n",
      NS,
      "-c",
      "alpine",
      "--",
      "ping",
      "-c",
      "3",
      "-i",
      "0.2",
      "-W",
      "2",
      "169.254.0.0",
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 packets transmitted, 3 received/);
    const [nse] = await pods("app=nse-icmp-responder");
    const back = await rt.nsm(
      "exec",
      nse!.metadata.name,
      "-n",
      NS,
      "--",
      "ping",
      "-c",
      "3",
      "-i",
      "0.2",
      "-W",
      "2",
      "169.254.0.1",
    );
    assert.equal(back.code, 0, back.stdout + back.stderr);
  });

  it("without clients the endpoint stops after NSM_IDLE_TIMEOUT and the supplier deletes its pod", async () => {
    const [nse] = await pods("app=nse-icmp-responder");
    const netnsBefore = rt.netns().length;
    await rt.ok("delete", "pod", "alpine", "-n", NS);
    const t = Date.now();
    await rt.ok("wait", "-n", NS, "--for=delete", "--timeout=90s", "pod", "-l", "app=nse-icmp-responder");
    const waited = Date.now() - t;
    assert.ok(waited >= 14_000, `the endpoint went after ${waited} ms, before its 15 s idle timeout`);
    assert.match(log(nse!.metadata.name, "nse-icmp-responder"), /no connection for NSM_IDLE_TIMEOUT: stopping/);
    assert.equal(rt.netns().length, netnsBefore - 2, `the client's and the endpoint's netns are gone: ${rt.netns()}`);
    const registered = rows(await rt.ok("get", "networkserviceendpoints"));
    assert.ok(!registered.some((r) => r.some((c) => c.startsWith("nse-icmp-responder"))), JSON.stringify(registered));
  });

  it("a template that does not render stops the supplier at start, naming the variable", async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(REPO, "bin", "nsm.js"), "nse", "supplier"], {
        env: { PATH: process.env.PATH, NSM_POD_DESCRIPTION: "kind: Pod\nmetadata:\n  name: {{ .Labels | x }}\n" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (d) => {
        stderr += d;
      });
      child.on("close", (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'nsm: NSM_POD_DESCRIPTION="(inline)": unsupported template action "{{.Labels | x}}" (supported: .Field.Path, index .Map "key", uuid)\n',
    );
  });

  it("the supplier reads pod-template.yaml from its ConfigMap volume", () => {
    const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8")) as {
      pods: { name: string; containers: { name: string; env: Record<string, string> }[] }[];
    };
    const supplier = state.pods.find((p) => p.name.startsWith("nse-supplier-k8s-"))!;
    const file = supplier.containers.find((c) => c.name === "nse-supplier")!.env.NSM_POD_DESCRIPTION_FILE!;
    assert.notEqual(file, "/run/supplier/pod-template.yaml", "the volume's file on the host");
    assert.equal(readFileSync(file, "utf8"), readFileSync(join(EXAMPLE, "pod-template.yaml"), "utf8"));
  });

  it("delete removes the supplier; down leaves nothing", async () => {
    await rt.ok("delete", "-k", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
