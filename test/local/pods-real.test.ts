// SPDX-License-Identifier: Apache-2.0
/**
 * Pods closer to real ones, through the kubectl-compatible CLI on two nodes: the kinds upstream
 * manifests carry without meaning here (ServiceAccount, RBAC, Service, StatefulSet, a CRD and a
 * custom resource of its kind) are stored and shown, not refused; a DaemonSet runs one pod per
 * node and makes a deleted one again; names with dots; `status.podIP`/`status.hostIP` in
 * `get -o wide|json`; the READY column counts the containers that run.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { rows, skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const skip = skipReason();
const NS = "ns-real";

const MANIFESTS = `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nse-sa, namespace: ${NS}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: ${NS}}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: ${NS}}
subjects: [{kind: ServiceAccount, name: nse-sa}]
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: nsm-real-test-role}
rules: []
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${NS}}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: ${NS}}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wdg]}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: blue.widget, namespace: ${NS}}
spec: {color: blue}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web.v1, namespace: ${NS}, labels: {app: web}}
spec:
  containers:
    - {name: main, image: alpine, command: [sleep, infinity]}
    - {name: once, image: alpine, command: [sh, -c, "sleep 1"]}
`;

describe("pods closer to real ones: stored kinds, DaemonSet, dotted names, pod IPs, READY", { skip }, () => {
  let rt: TestRuntime;
  let dir: string;
  let file: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "nsm-pods-real-"));
    file = join(dir, "all.yaml");
    writeFileSync(file, MANIFESTS);
    rt = testRuntime("pods-real");
    await rt.ok("up", "--nodes", "2");
  });
  after(async () => {
    await rt?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("apply reports every kind as kubectl does", async () => {
    const out = await rt.ok("apply", "-f", file);
    for (const line of [
      "serviceaccount/nse-sa created",
      "role.rbac.authorization.k8s.io/pod-reader created",
      "rolebinding.rbac.authorization.k8s.io/read-pods created",
      "clusterrole.rbac.authorization.k8s.io/nsm-real-test-role created",
      "service/web created",
      "statefulset.apps/db created",
      "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created",
      "widget.example.com/blue.widget created",
      "daemonset.apps/agent created (2 nodes)",
      "pod/web.v1 created",
    ])
      assert.ok(out.includes(line), `missing "${line}" in:\n${out}`);
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", "app=agent", "-n", NS);
  });

  it("get shows the stored kinds, by plural, short name and kind/name", async () => {
    assert.equal(await rt.ok("get", "sa", "-n", NS, "-o", "name"), "serviceaccount/nse-sa\n");
    assert.equal(await rt.ok("get", "roles", "-n", NS, "-o", "name"), "role.rbac.authorization.k8s.io/pod-reader\n");
    assert.equal(await rt.ok("get", "svc/web", "-n", NS, "-o", "jsonpath={.spec.ports[0].port}"), "80");
    assert.equal(await rt.ok("get", "statefulsets", "-n", NS, "-o", "name"), "statefulset.apps/db\n");
    const crds = await rt.ok("get", "crd", "-o", "name");
    assert.equal(crds, "customresourcedefinition.apiextensions.k8s.io/widgets.example.com\n");
    assert.equal(await rt.ok("get", "wdg", "blue.widget", "-n", NS, "-o", "jsonpath={.spec.color}"), "blue");
    const cr = await rt.ok("get", "clusterroles");
    assert.match(cr, /^NAME\s+AGE\nnsm-real-test-role\s+\S+\n$/);
    const unknown = await rt.nsm("get", "gadgets");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /the server doesn't have a resource type "gadgets"/);
  });

  it("a DaemonSet runs one pod per node and makes a deleted one again on its node", async () => {
    const table = rows(await rt.ok("get", "ds", "-n", NS));
    assert.deepEqual(table[0]!.slice(0, 6), ["agent", "2", "2", "2", "2", "2"]);
    const nodesOf = async () =>
      (await rt.ok("get", "pods", "-l", "app=agent", "-n", NS, "-o", "jsonpath={.items[*].spec.nodeName}"))
        .split(" ")
        .sort();
    assert.deepEqual(await nodesOf(), ["node-1", "node-2"]);
    const [first] = (await rt.ok("get", "pods", "-l", "app=agent", "-n", NS, "-o", "name")).trim().split("\n");
    await rt.ok("delete", first!, "-n", NS);
    const names = (await rt.ok("get", "pods", "-l", "app=agent", "-n", NS, "-o", "name")).trim().split("\n");
    assert.equal(names.length, 2);
    assert.ok(!names.includes(first!), "the deleted pod is gone");
    assert.deepEqual(await nodesOf(), ["node-1", "node-2"]);
    assert.equal(await rt.ok("exec", "daemonset/agent", "-n", NS, "--", "echo", "in-agent"), "in-agent\n");
  });

  it("a pod named with dots runs; its podIP and hostIP are in -o wide and -o json", async () => {
    const json = JSON.parse(await rt.ok("get", "pod", "web.v1", "-n", NS, "-o", "json"));
    const { podIP, hostIP, podIPs } = json.status;
    assert.match(podIP, /^10\.244\.[12]\.\d+$/);
    assert.match(hostIP, /^198\.18\.0\.[12]$/);
    assert.deepEqual(podIPs, [{ ip: podIP }]);
    const node = json.spec.nodeName;
    assert.equal(hostIP, `198.18.0.${node.slice(-1)}`);
    assert.equal(podIP.split(".")[2], node.slice(-1), "the pod IP is from its node's range");
    const wide = rows(await rt.ok("get", "pods", "web.v1", "-n", NS, "-o", "wide"));
    assert.deepEqual([wide[0]![0], wide[0]![5], wide[0]![6]], ["web.v1", podIP, node]);
    const ips = JSON.parse(await rt.ok("get", "pods", "-n", NS, "-o", "json")).items.map(
      (p: { status: { podIP: string } }) => p.status.podIP,
    );
    assert.equal(new Set(ips).size, ips.length, `pod IPs are unique: ${ips}`);
  });

  it("READY counts the running containers: a container that finished leaves the pod 1/2", async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const [row] = rows(await rt.ok("get", "pod", "web.v1", "-n", NS));
    assert.equal(row![1], "1/2");
    assert.equal(row![2], "NotReady");
    const ready = await rt.ok("get", "pod", "web.v1", "-n", NS, "-o", "jsonpath={.status.containerStatuses[*].ready}");
    assert.equal(ready, "true false");
  });

  it("delete -f forgets every object, the cluster-scoped ones too", async () => {
    const out = await rt.ok("delete", "-f", file);
    assert.match(out, /clusterrole "nsm-real-test-role" deleted/);
    assert.match(out, /widget "blue\.widget" deleted/);
    assert.match((await rt.nsm("get", "clusterroles")).stderr, /No resources found/);
    assert.match((await rt.nsm("get", "crd")).stderr, /No resources found/);
    assert.match((await rt.nsm("get", "ns", NS)).stderr, /not found/);
  });
});
