// SPDX-License-Identifier: Apache-2.0
// `nsm admission-webhook` against a real kube-apiserver (test/k8s/harness.ts): it registers its
// MutatingWebhookConfiguration with its caBundle (selfregister mode, at a loopback URL), and
// the apiserver calls it when kubectl creates an annotated pod, a pod in an annotated
// namespace and an annotated Deployment: the stored objects carry the injected containers.
// A malformed annotation is refused by the apiserver with the webhook's message. No kubelet
// runs: pods are stored, not started.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type KubeCluster, missingK8sPeers, startCluster } from "./harness.js";
import { type NsmProcess, spawnNsm } from "./registry-cmd.js";
import { freePort } from "./registry-etcd.js";

const WEBHOOK = "nsm-test-webhook";

interface Container {
  name: string;
  command?: string[];
  env?: { name: string; value?: string }[];
}
interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string }[];
}

describe("nsm admission-webhook with kube-apiserver", { skip: missingK8sPeers() }, () => {
  let cluster: KubeCluster;
  let webhook: NsmProcess;
  before(async () => {
    cluster = await startCluster();
    const port = await freePort();
    webhook = spawnNsm(["admission-webhook"], {
      KUBECONFIG: cluster.kubeconfigPath,
      NSM_NAME: WEBHOOK,
      NSM_WEBHOOK_MODE: "selfregister",
      NSM_LISTEN_ON: `tcp://127.0.0.1:${port}`,
      NSM_WEBHOOK_URL: `https://127.0.0.1:${port}/mutate`,
      // As deploy/k8s: our single image for both (run as `nsm nsc --init` and `nsm nsc`).
      NSM_INIT_CONTAINER_IMAGES: "nsm-ts/nsm:0.1.0",
      NSM_CONTAINER_IMAGES: "nsm-ts/nsm:0.1.0",
      NSM_LABELS: "spiffe.io/spiffe-id:true",
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const got = await cluster.kubectl(["get", "mutatingwebhookconfiguration", WEBHOOK, "-o", "json"]);
      if (got.code === 0 && JSON.parse(got.stdout).webhooks?.[0]?.clientConfig?.caBundle) break;
      if (webhook.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`webhook did not register: ${got.stderr} ${webhook.output()}`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    for (const ns of ["apps-a", "apps-b"]) assert.equal((await cluster.kubectl(["create", "namespace", ns])).code, 0);
  });
  after(async () => {
    await webhook?.stop();
    await cluster?.stop();
  });

  const createObject = async (obj: object) => cluster.kubectl(["create", "-f", "-"], { input: JSON.stringify(obj) });
  const getSpec = async (
    args: string[],
    path: (o: any) => PodSpec,
  ): Promise<PodSpec & { labels: Record<string, string> }> => {
    const r = await cluster.kubectl(["get", ...args, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    const labels = args[0] === "pod" ? o.metadata.labels : o.spec.template.metadata.labels;
    return { ...path(o), labels };
  };
  const assertInjected = (spec: PodSpec & { labels: Record<string, string> }, nsurl: string) => {
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ["app", "nsc"],
    );
    assert.deepEqual(
      spec.initContainers?.map((c) => c.name),
      ["nsc-init"],
    );
    assert.deepEqual(spec.containers[1]!.command, ["nsm", "nsc"]);
    assert.deepEqual(spec.initContainers?.[0]?.command, ["nsm", "nsc", "--init"]);
    const env = spec.containers[1]!.env ?? [];
    assert.equal(env.find((e) => e.name === "NSM_NETWORK_SERVICES")?.value, nsurl);
    assert.deepEqual(spec.volumes?.map((v) => v.name).sort(), ["nsm-socket", "spire-agent-socket"]);
    assert.equal(spec.labels["spiffe.io/spiffe-id"], "true");
  };
  const pod = (name: string, namespace: string, annotations: Record<string, string> = {}) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, annotations, labels: { app: name } },
    spec: { containers: [{ name: "app", image: "alpine:3.20", command: ["sleep", "1d"] }] },
  });

  it("injects into a pod annotated networkservicemesh.io", async () => {
    const nsurl = "kernel://icmp-responder/nsm-1";
    const r = await createObject(pod("alpine", "apps-a", { "networkservicemesh.io": nsurl }));
    assert.equal(r.code, 0, r.stderr);
    assertInjected(await getSpec(["pod", "alpine", "-n", "apps-a"], (o) => o.spec), nsurl);
    const plain = await createObject(pod("plain", "apps-a"));
    assert.equal(plain.code, 0, plain.stderr);
    const spec = await getSpec(["pod", "plain", "-n", "apps-a"], (o) => o.spec);
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ["app"],
    );
  });

  it("injects into a pod of an annotated namespace", async () => {
    const nsurl = "kernel://from-namespace/nsm-1";
    const annotated = await cluster.kubectl(["annotate", "namespace", "apps-b", `networkservicemesh.io=${nsurl}`]);
    assert.equal(annotated.code, 0, annotated.stderr);
    const r = await createObject(pod("in-b", "apps-b"));
    assert.equal(r.code, 0, r.stderr);
    assertInjected(await getSpec(["pod", "in-b", "-n", "apps-b"], (o) => o.spec), nsurl);
  });

  it("injects into the pod template of an annotated Deployment", async () => {
    const nsurl = "kernel://icmp-responder/nsm-1";
    const deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "apps-a", annotations: { "networkservicemesh.io": nsurl } },
      spec: {
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "app", image: "nginx:1.27" }] },
        },
      },
    };
    const r = await createObject(deployment);
    assert.equal(r.code, 0, r.stderr);
    assertInjected(await getSpec(["deployment", "web", "-n", "apps-a"], (o) => o.spec.template.spec), nsurl);
  });

  it("the apiserver refuses a pod whose annotation has a malformed NSURL, with the webhook's message", async () => {
    const r = await createObject(
      pod("bad", "apps-a", { "networkservicemesh.io": "kernel://ok/nsm-1,kernel:///nsm-2" }),
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /kernel:\/\/\/nsm-2/);
    const got = await cluster.kubectl(["get", "pod", "bad", "-n", "apps-a"]);
    assert.notEqual(got.code, 0);
  });
});
