// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind } from "../../../core/chain.js";
import { CallContext, sleep } from "../../../core/context.js";
import { Code, type NsmError } from "../../../core/errors.js";
import {
  compileTemplate,
  createPodServer,
  type PodLauncher,
  type PodManifest,
  reapCompletedPods,
  renderPod,
  type SuppliedPod,
} from "./index.js";

const TEMPLATE = `---
apiVersion: apps/v1
kind: Pod
metadata:
  name: nse-icmp-responder-{{ index .Labels "nodeName" }}
  labels:
    app: nse-icmp-responder
spec:
  restartPolicy: Never
  containers:
    - name: nse
      image: ghcr.io/networkservicemesh/cmd-nse-icmp-responder:v1.14.0
      env:
        - name: NSM_SERVICE_NAMES
          value: {{ .NetworkService }}
`;

class FakeLauncher implements PodLauncher {
  readonly created: { pod: PodManifest; namespace: string }[] = [];
  readonly deleted: string[] = [];
  pods: SuppliedPod[] = [];
  delayMs = 0;
  /** createPod never resolves (a pod that never comes up). */
  hang = false;
  async nodeExists(name: string) {
    return name === "node-1" || name === "node-2";
  }
  async createPod(pod: PodManifest, namespace: string) {
    this.created.push({ pod, namespace });
    if (this.hang) await new Promise(() => {});
    await sleep(this.delayMs);
    return pod.metadata.name;
  }
  async listPods() {
    return this.pods;
  }
  async deletePod(_ns: string, name: string) {
    this.deleted.push(name);
    this.pods = this.pods.filter((p) => p.name !== name);
  }
}

const request = (labels: Record<string, string>) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id: "c1", networkService: "autoscale", labels }),
  });

describe("compileTemplate", () => {
  it("renders fields, index on maps, uuid and trim markers over a connection", () => {
    const conn = create(ConnectionSchema, { id: "x1", networkService: "svc", labels: { nodeName: "n1" } });
    const t = compileTemplate(
      'a-{{ index .Labels "nodeName" }}-{{.Labels.nodeName}}-{{ .Id }}  {{- .NetworkService -}}  !{{ index .Labels "none" }}',
    );
    assert.equal(t(conn), "a-n1-n1-x1svc!");
    assert.match(compileTemplate("{{ uuid }}")(conn), /^[0-9a-f-]{36}$/);
  });
  it("refuses actions it cannot render, naming them", () => {
    assert.throws(
      () => compileTemplate("{{ if .Labels }}x{{ end }}"),
      /unsupported template action "\{\{if \.Labels\}\}"/,
    );
    assert.throws(() => compileTemplate("a {{ .Labels"), /unclosed action/);
  });
});

describe("renderPod", () => {
  it("makes a Pod manifest and refuses what is not one", () => {
    const conn = create(ConnectionSchema, { networkService: "svc", labels: { nodeName: "node-1" } });
    const pod = renderPod(TEMPLATE, conn);
    assert.equal(pod.metadata.name, "nse-icmp-responder-node-1");
    assert.deepEqual((pod.spec.containers as { env: unknown[] }[])[0]!.env, [
      { name: "NSM_SERVICE_NAMES", value: "svc" },
    ]);
    assert.throws(() => renderPod("kind: Deployment\nmetadata: {name: x}\nspec: {}", conn), /a Deployment, not a Pod/);
    assert.throws(() => renderPod("kind: Pod\nspec: {}", conn), /no metadata.name/);
  });
});

describe("createPodServer", () => {
  it("creates the pod on the client's node, labelled createdBy, then asks the client to retry", async () => {
    const launcher = new FakeLauncher();
    const h = bind(createPodServer({ launcher, template: TEMPLATE, namespace: "ns-a", owner: "supplier-1" }));
    await assert.rejects(h.request(request({ nodeName: "node-2" }), CallContext.create()), (e: NsmError) => {
      assert.equal(e.code, Code.Unavailable);
      assert.match(e.message, /endpoint created as nse-icmp-responder-node-2/);
      return true;
    });
    assert.equal(launcher.created.length, 1);
    const [{ pod, namespace }] = launcher.created as [{ pod: PodManifest; namespace: string }];
    assert.equal(namespace, "ns-a");
    assert.equal(pod.spec.nodeName, "node-2");
    assert.deepEqual(pod.metadata.labels, { app: "nse-icmp-responder", createdBy: "supplier-1" });
  });

  it("an unknown node leaves the placement to the scheduler; concurrent requests share one creation", async () => {
    const launcher = new FakeLauncher();
    launcher.delayMs = 50;
    const h = bind(createPodServer({ launcher, template: TEMPLATE, owner: "s" }));
    const results = await Promise.allSettled([
      h.request(request({ nodeName: "elsewhere" }), CallContext.create()),
      h.request(request({ nodeName: "elsewhere" }), CallContext.create()),
    ]);
    assert.ok(results.every((r) => r.status === "rejected" && (r.reason as NsmError).code === Code.Unavailable));
    assert.equal(launcher.created.length, 1);
    assert.equal(launcher.created[0]!.pod.spec.nodeName, undefined);
    assert.equal(launcher.created[0]!.namespace, "default");
  });

  it("a call that ends before the pod is up says so; a broken template is Internal", async () => {
    const launcher = new FakeLauncher();
    launcher.hang = true;
    const h = bind(createPodServer({ launcher, template: TEMPLATE, owner: "s" }));
    // A deadline's timer (AbortSignal.timeout) does not keep the process alive, and the hanging
    // launcher holds nothing either: this timer does, until the call has ended.
    const keepAlive = setTimeout(() => {}, 10_000);
    await assert.rejects(
      h.request(request({ nodeName: "node-1" }), CallContext.create({ deadline: Date.now() + 50 })),
      /still starting; try again/,
    );
    clearTimeout(keepAlive);
    const broken = bind(createPodServer({ launcher, template: "metadata: [", owner: "s" }));
    await assert.rejects(broken.request(request({}), CallContext.create()), (e: NsmError) => e.code === Code.Internal);
  });
});

describe("reapCompletedPods", () => {
  it("deletes the completed pods of its owner, and stops with its signal", async () => {
    const launcher = new FakeLauncher();
    launcher.pods = [
      { name: "done", completed: true },
      { name: "busy", completed: false },
    ];
    const stop = new AbortController();
    const reaping = reapCompletedPods({
      launcher,
      namespace: "ns",
      owner: "s",
      intervalMs: 10,
      signal: stop.signal,
      log: CallContext.create().log,
    });
    await sleep(100);
    const listeners = getEventListeners(stop.signal, "abort").length;
    stop.abort();
    await reaping;
    assert.ok(listeners <= 1, `no listener left behind per round (${listeners})`);
    assert.deepEqual(launcher.deleted, ["done"]);
    assert.deepEqual(
      launcher.pods.map((p) => p.name),
      ["busy"],
    );
  });
});
