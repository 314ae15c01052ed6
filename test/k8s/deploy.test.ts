// SPDX-License-Identifier: Apache-2.0
// deploy/k8s (kustomize) and deploy/helm/nsm against a real kube-apiserver + etcd (harness.ts):
// every object is accepted with strict server-side validation and stored, the CRDs become
// Established and serve NetworkServiceEndpoints, and each service account can do what its role
// needs and nothing else (`kubectl auth can-i`). No kubelet or controller-manager runs: the
// DaemonSets and Deployments are stored, never turned into running pods.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { peerPath } from "../helpers/peers.js";
import { type KubeCluster, missingK8sPeers, startCluster } from "./harness.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const skip = missingK8sPeers("helm");

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
}

function manifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === "object" && typeof m.kind === "string");
}

function helm(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    execFile(peerPath("helm"), args, { cwd: repo, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? fail(new Error(`helm ${args.join(" ")}: ${stderr || err.message}`)) : done(stdout),
    );
  });
}

/** Applies with server-side apply and strict field validation; asserts every object is stored. */
async function applyAndFind(cluster: KubeCluster, text: string, manager: string): Promise<void> {
  const applied = await cluster.kubectl(
    ["apply", "--server-side", "--force-conflicts", `--field-manager=${manager}`, "--validate=strict", "-f", "-"],
    { input: text },
  );
  assert.equal(applied.code, 0, applied.stderr);
  await findAll(cluster, text);
}

/** Asserts that every object of the manifests is stored. */
async function findAll(cluster: KubeCluster, text: string): Promise<void> {
  const found = await cluster.kubectl(["get", "-f", "-", "-o", "name"], { input: text });
  assert.equal(found.code, 0, found.stderr);
  assert.equal(found.stdout.trim().split("\n").length, manifests(text).length, found.stdout);
}

async function canI(cluster: KubeCluster, ns: string, sa: string, args: string[]): Promise<boolean> {
  const r = await cluster.kubectl(["auth", "can-i", ...args], { as: `system:serviceaccount:${ns}:${sa}` });
  assert.ok(r.stdout.trim() === "yes" || r.stdout.trim() === "no", `can-i ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return r.stdout.trim() === "yes";
}

const NSM_RESOURCES = ["networkserviceendpoints.networkservicemesh.io", "networkservices.networkservicemesh.io"];

/** Each account's rights in namespace ns: [account, kubectl auth can-i args, expected]. */
function rbacCases(ns: string): [string, string[], boolean][] {
  const registry: [string, string[], boolean][] = NSM_RESOURCES.flatMap((res) =>
    ["get", "list", "watch", "create", "update", "patch", "delete"].map((verb): [string, string[], boolean] => [
      "registry-k8s-sa",
      [verb, res, "-n", ns],
      true,
    ]),
  );
  const none = (sa: string): [string, string[], boolean][] => [
    [sa, ["get", "pods", "-n", ns], false],
    [sa, ["list", NSM_RESOURCES[0] as string, "-n", ns], false],
    [sa, ["get", "nodes"], false],
    [sa, ["get", "configmaps", "-n", ns], false],
  ];
  return [
    ...registry,
    ["registry-k8s-sa", ["list", NSM_RESOURCES[0] as string, "-n", "default"], false],
    ["registry-k8s-sa", ["deletecollection", NSM_RESOURCES[0] as string, "-n", ns], false],
    ["registry-k8s-sa", ["get", "secrets", "-n", ns], false],
    ["registry-k8s-sa", ["get", "pods", "-n", ns], false],
    ["registry-k8s-sa", ["create", "customresourcedefinitions.apiextensions.k8s.io"], false],
    ...none("nsmgr-sa"),
    ...none("forwarder-sa"),
    ["admission-webhook-sa", ["get", "namespaces/default"], true],
    ["admission-webhook-sa", ["list", "namespaces"], false],
    ["admission-webhook-sa", ["update", "namespaces/default"], false],
    ["admission-webhook-sa", ["create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"], false],
    ["admission-webhook-sa", ["get", "secrets", "-n", ns], false],
    ["admission-webhook-sa", ["patch", "pods", "-n", "default"], false],
  ];
}

async function assertRbac(cluster: KubeCluster, ns: string): Promise<void> {
  const wrong: string[] = [];
  for (const [sa, args, expected] of rbacCases(ns)) {
    if ((await canI(cluster, ns, sa, args)) !== expected) wrong.push(`${sa} ${args.join(" ")}: expected ${expected}`);
  }
  assert.deepEqual(wrong, []);
}

describe("deploy/k8s and deploy/helm/nsm on a real kube-apiserver", { skip }, () => {
  let cluster: KubeCluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  it("kubectl apply -k deploy/k8s: every object accepted with strict validation and stored", async () => {
    const built = await cluster.kubectl(["kustomize", join(repo, "deploy/k8s")]);
    assert.equal(built.code, 0, built.stderr);
    const kinds = new Set(manifests(built.stdout).map((m) => m.kind));
    for (const kind of ["Namespace", "CustomResourceDefinition", "DaemonSet", "Deployment", "Service", "Role"]) {
      assert.ok(kinds.has(kind), `no ${kind} in deploy/k8s`);
    }
    assert.ok(kinds.has("MutatingWebhookConfiguration") && kinds.has("ClusterRoleBinding"));
    const applied = await cluster.kubectl([
      "apply",
      "--server-side",
      "--validate=strict",
      "-k",
      join(repo, "deploy/k8s"),
    ]);
    assert.equal(applied.code, 0, applied.stderr);
    await findAll(cluster, built.stdout);
  });

  it("every stored workload runs `nsm <role>` from the one image, with SPIRE's socket at /run/spire/sockets", async () => {
    const spec = ".spec.template.spec";
    const r = await cluster.kubectl([
      ...["get", "daemonsets,deployments", "-n", "nsm-system", "-o"],
      `jsonpath={range .items[*]}{.metadata.name} {${spec}.containers[0].image} {${spec}.containers[0].command} {${spec}.volumes[?(@.name=='spire-agent-socket')].hostPath.path} {${spec}.hostNetwork} {${spec}.containers[0].securityContext.privileged}{"\\n"}{end}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((row) => row.trimEnd())
      .sort();
    const nsm = (role: string) => `nsm-ts/nsm:0.1.0 ["nsm","${role}"] /run/spire/sockets`;
    assert.deepEqual(rows, [
      `admission-webhook-k8s ${nsm("admission-webhook")}`,
      `forwarder ${nsm("forwarder")} true true`,
      `nsmgr ${nsm("nsmgr")}`,
      `registry-k8s ${nsm("registry")}`,
    ]);
  });

  it("the apiserver refuses a manifest strict validation finds wrong (the checks above can fail)", async () => {
    const built = await cluster.kubectl(["kustomize", join(repo, "deploy/k8s")]);
    const broken = built.stdout.replace(/^( *)privileged: true$/m, "$1privileged: true\n$1priviledged: true");
    assert.notEqual(broken, built.stdout);
    const r = await cluster.kubectl(["apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-"], {
      input: broken,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /priviledged/);
  });

  it("the CRDs become Established and serve NetworkServiceEndpoints (short name nse)", async () => {
    const crds = NSM_RESOURCES.map((r) => `crd/${r}`);
    const wait = await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", ...crds]);
    assert.equal(wait.code, 0, wait.stderr);
    const nse = [
      "apiVersion: networkservicemesh.io/v1",
      "kind: NetworkServiceEndpoint",
      "metadata: {name: nse-a, namespace: nsm-system}",
      "spec: {name: nse-a, network_service_names: [icmp-responder], url: 'tcp://10.0.0.9:5003'}",
    ].join("\n");
    const created = await cluster.kubectl(["create", "-f", "-"], { input: nse });
    assert.equal(created.code, 0, created.stderr);
    const listed = await cluster.kubectl(["get", "nse", "-A", "-o", "jsonpath={.items[*].spec.url}"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, "tcp://10.0.0.9:5003");
  });

  it("the webhook configuration sends workloads outside nsm-system to the (here unreachable) webhook", async () => {
    // failurePolicy Fail and no webhook running (no kubelet): the apiserver refuses, which shows
    // the configuration is registered and matches Deployments; nsm-system is excluded.
    const create = (ns: string) =>
      cluster.kubectl(["create", "deployment", "probe", "--image=busybox", "-n", ns, "--dry-run=server"]);
    const outside = await create("default");
    assert.notEqual(outside.code, 0);
    assert.match(outside.stderr, /nsm-mutating-webhook\.networkservicemesh\.io/);
    assert.match(outside.stderr, /no endpoints available for service "admission-webhook-svc"/);
    const inside = await create("nsm-system");
    assert.equal(inside.code, 0, inside.stderr);
  });

  it("the apiserver sends an annotated pod through deploy/k8s's webhook rules and stores the patch", async () => {
    const cert = await cluster.issueServingCertificate(["127.0.0.1"]);
    const seen: string[] = [];
    const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        const review = JSON.parse(body) as { request: { uid: string; kind: { kind: string }; namespace: string } };
        seen.push(`${req.method} ${req.url} ${review.request.kind.kind} ${review.request.namespace}`);
        const patch = [{ op: "add", path: "/metadata/labels", value: { "nsm-test/mutated": "true" } }];
        const response = { uid: review.request.uid, allowed: true, patchType: "JSONPatch" };
        const answer = { ...response, patch: Buffer.from(JSON.stringify(patch)).toString("base64") };
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: answer }));
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    try {
      const port = (server.address() as AddressInfo).port;
      // The shipped rules and selectors, with the Service swapped for this server's URL (no pod
      // can back the Service here: EndpointSlices may not point at loopback) and the caBundle
      // SPIRE's controller manager would set for a configuration labelled spiffe.io/webhook.
      const clientConfig = {
        url: `https://127.0.0.1:${port}/mutate`,
        caBundle: Buffer.from(cert.caPem).toString("base64"),
      };
      const patched = await cluster.kubectl([
        ...["patch", "mutatingwebhookconfiguration", "nsm-mutating-webhook", "--type=json", "-p"],
        JSON.stringify([{ op: "replace", path: "/webhooks/0/clientConfig", value: clientConfig }]),
      ]);
      assert.equal(patched.code, 0, patched.stderr);
      const pod = await cluster.kubectl([
        ...["run", "probe", "-n", "default", "--image=busybox", "--restart=Never"],
        "--annotations=networkservicemesh.io=kernel://icmp-responder/nsm-1",
      ]);
      assert.equal(pod.code, 0, pod.stderr);
      const labels = await cluster.kubectl([
        "get",
        "pod",
        "probe",
        "-n",
        "default",
        "-o",
        "jsonpath={.metadata.labels}",
      ]);
      assert.match(labels.stdout, /"nsm-test\/mutated":"true"/);
      assert.deepEqual(seen, ["POST /mutate?timeout=10s Pod default"]);
    } finally {
      await new Promise((done) => server.close(done));
    }
  });

  it("each service account of deploy/k8s can do what its role needs and nothing else", async () => {
    await assertRbac(cluster, "nsm-system");
  });

  it("the Helm chart lints clean and its rendered output is accepted and stored", async () => {
    const lint = await helm(["lint", "--strict", "deploy/helm/nsm"]);
    assert.match(lint, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    const rendered = await helm([
      ...["template", "nsm", "deploy/helm/nsm", "--namespace", "nsm-helm", "--include-crds"],
      ...["--set", "createNamespace=true", "--set", "forwarder.mechanisms={WIREGUARD,VXLAN}"],
    ]);
    const objects = manifests(rendered);
    assert.ok(objects.some((m) => m.kind === "MutatingWebhookConfiguration"));
    assert.ok(objects.filter((m) => m.metadata.namespace === "nsm-helm").length >= 10);
    // A second install next to deploy/k8s's: remove that one's webhook configuration first (as
    // upstream's cleanup does), or its failurePolicy would refuse the chart's workloads.
    const removed = await cluster.kubectl(["delete", "mutatingwebhookconfiguration", "nsm-mutating-webhook"]);
    assert.equal(removed.code, 0, removed.stderr);
    await applyAndFind(cluster, rendered, "helm-test");
    const env = await cluster.kubectl([
      ...["get", "daemonset/forwarder", "-n", "nsm-helm", "-o"],
      "jsonpath={.spec.template.spec.containers[0].env[?(@.name=='NSM_MECHANISM_PRIORITY')].value}",
    ]);
    assert.equal(env.stdout, "WIREGUARD,VXLAN", env.stderr);
    await assertRbac(cluster, "nsm-helm");
  });

  it("the chart on the etcd backend: accepted, and the registry gets no Kubernetes API rights", async () => {
    const rendered = await helm([
      ...["template", "nsm", "deploy/helm/nsm", "--namespace", "nsm-etcd", "--set", "createNamespace=true"],
      ...["--set", "registry.backend=etcd", "--set", "registry.etcd.endpoints={http://etcd-0:2379,http://etcd-1:2379}"],
      ...["--set", "registry.replicas=2", "--set", "admissionWebhook.enabled=false"],
    ]);
    assert.ok(!manifests(rendered).some((m) => m.kind === "Role" || m.kind === "MutatingWebhookConfiguration"));
    // The nsm-helm install's webhook (not running here) would refuse this install's workloads.
    const removed = await cluster.kubectl(["delete", "mutatingwebhookconfiguration", "nsm-mutating-webhook"]);
    assert.equal(removed.code, 0, removed.stderr);
    await applyAndFind(cluster, rendered, "helm-etcd");
    const env = await cluster.kubectl([
      ...["get", "deployment/registry-k8s", "-n", "nsm-etcd", "-o"],
      "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].env[?(@.name=='NSM_ETCD_ENDPOINTS')].value}",
    ]);
    assert.equal(env.stdout, "2 http://etcd-0:2379,http://etcd-1:2379", env.stderr);
    assert.equal(
      await canI(cluster, "nsm-etcd", "registry-k8s-sa", [
        "list",
        "networkserviceendpoints.networkservicemesh.io",
        "-n",
        "nsm-etcd",
      ]),
      false,
    );
    await assert.rejects(
      helm(["template", "nsm", "deploy/helm/nsm", "--set", "registry.backend=etcd"]),
      /endpoints is required/,
    );
  });

  it("the chart's selfregister mode lets the webhook manage its own configuration, only that one", async () => {
    const rendered = await helm([
      ...["template", "nsm", "deploy/helm/nsm", "--namespace", "nsm-helm"],
      ...["--set", "admissionWebhook.mode=selfregister", "--show-only", "templates/admission-webhook.yaml"],
    ]);
    assert.ok(!manifests(rendered).some((m) => m.kind === "MutatingWebhookConfiguration"));
    await applyAndFind(cluster, rendered, "helm-test");
    const can = (args: string[]) => canI(cluster, "nsm-helm", "admission-webhook-sa", args);
    const mwc = "mutatingwebhookconfigurations.admissionregistration.k8s.io";
    assert.equal(await can(["create", mwc]), true);
    assert.equal(await can(["delete", `${mwc}/nsm-mutating-webhook`]), true);
    assert.equal(await can(["delete", `${mwc}/someone-elses`]), false);
    assert.equal(await can(["list", mwc]), false);
    // The webhook names its configuration after NSM_NAME: the one name it was granted.
    const name = await cluster.kubectl([
      ...["get", "deployment/admission-webhook-k8s", "-n", "nsm-helm", "-o"],
      "jsonpath={.spec.template.spec.containers[0].env[?(@.name=='NSM_NAME')].value}",
    ]);
    assert.equal(name.stdout, "nsm-mutating-webhook", name.stderr);
  });
});

describe("deploy/helm/nsm and deploy/k8s stay in step", () => {
  it("the chart's CRDs are deploy/k8s's, byte for byte", () => {
    for (const file of ["networkservices.yaml", "networkserviceendpoints.yaml"]) {
      const kustomize = readFileSync(join(repo, "deploy/k8s/crds", file), "utf8");
      assert.equal(readFileSync(join(repo, "deploy/helm/nsm/crds", file), "utf8"), kustomize, file);
    }
  });
});
