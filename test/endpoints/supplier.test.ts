// SPDX-License-Identifier: Apache-2.0
/**
 * examples/scale-from-zero on the local runtime (two nodes): a client asks for a service that has
 * no endpoint; the supplier (`cmd-nse-supplier-k8s` → `nsm nse supplier`) starts one from its
 * pod template on the client's node, and the client's requests succeed once it registered; ping
 * both ways. When the client goes, the endpoint stops after NSM_IDLE_TIMEOUT and the supplier
 * deletes its pod. A broken template stops the supplier at start naming the variable; delete and
 * down leave nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
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
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(
      out,
      /pod ns-scale-from-zero\/nse-supplier-k8s-\S+ running on node-\d, endpoint nse-supplier-k8s-\S+ registered/,
    );
  });
  after(async () => {
    await rt?.cleanup();
  });

  it("the client's request with no endpoint succeeds once the supplied endpoint registered", async () => {
    await until("the client's connection", 90_000, () =>
      log("alpine", "nsc").includes("connection established") ? true : undefined,
    );
    const nsc = log("alpine", "nsc");
    assert.match(nsc, /endpoint created as nse-icmp-responder-node-\d/, "the first request met the supplier");
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

  it("the inline template of supplier.yaml is pod-template.yaml", () => {
    const docs = parse(readFileSync(join(EXAMPLE, "supplier.yaml"), "utf8"));
    const env = docs.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    const inline = env.find((e) => e.name === "NSM_POD_DESCRIPTION")!.value;
    assert.equal(inline, readFileSync(join(EXAMPLE, "pod-template.yaml"), "utf8"));
  });

  it("delete removes the supplier; down leaves nothing", async () => {
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
