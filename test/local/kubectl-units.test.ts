// SPDX-License-Identifier: Apache-2.0
/**
 * The pure parts of the kubectl-compatible CLI: label and field selectors, the Go template and
 * JSONPath subsets upstream READMEs use, the output forms, and the system components as pods.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LocalError } from "../../src/local/errors.js";
import { describeObjects } from "../../src/local/kubectl/describe.js";
import { goTemplate } from "../../src/local/kubectl/gotemplate.js";
import { jsonPath } from "../../src/local/kubectl/jsonpath.js";
import { objectsOf, systemPodList } from "../../src/local/kubectl/objects.js";
import { render } from "../../src/local/kubectl/output.js";
import { parseTargets, selectObjects } from "../../src/local/kubectl/query.js";
import { parseFieldSelector, parseLabelSelector } from "../../src/local/kubectl/select.js";
import { parseDuration, parseWaitFor } from "../../src/local/kubectl/wait.js";
import type { PodState, State } from "../../src/local/state.js";

const LIST = {
  apiVersion: "v1",
  kind: "List",
  items: [
    {
      metadata: { name: "alpine", labels: { app: "alpine" } },
      spec: { nodeName: "node-1" },
      status: { podIP: "10.0.0.5" },
    },
    { metadata: { name: "nse-kernel-abc", labels: { app: "nse-kernel" } }, spec: { nodeName: "node-2" }, status: {} },
  ],
};

function proc(pid: number) {
  return { pid, start: 0, log: "/dev/null", argv: ["nsm"] };
}

function fakeState(): State {
  const pod: PodState = {
    namespace: "ns-a",
    name: "alpine",
    uid: "u1",
    node: "node-1",
    netns: "x",
    labels: { app: "alpine" },
    annotations: {},
    specHash: "",
    containers: [
      { name: "alpine", type: "app", injected: false, image: "alpine", argv: [], env: {}, log: "", proc: proc(10) },
    ],
    phase: "Running",
    createdAt: new Date().toISOString(),
  };
  const node = (i: number) => ({
    name: `node-${i}`,
    netns: `n${i}`,
    dir: "",
    nsmgrSocket: "",
    forwarderSocket: "",
    address: `198.18.0.${i}`,
    nsmgr: proc(100 + i),
    forwarder: proc(200 + i),
    createdAt: new Date().toISOString(),
  });
  return {
    version: 1,
    dir: "/tmp/x",
    prefix: "nsm-x",
    phase: "up",
    createdAt: new Date().toISOString(),
    registry: proc(2),
    nodes: [node(1), node(2)],
    namespaces: [{ name: "ns-a", annotations: {}, createdAt: new Date().toISOString() }],
    networkServices: [],
    deployments: [],
    pods: [pod],
  };
}

const everyoneAlive = () => true;

describe("label selectors", () => {
  it("matches =, ==, !=, in, notin, exists and !exists, comma-joined", () => {
    const l = { app: "nsmgr", tier: "system" };
    assert.equal(parseLabelSelector("app=nsmgr")(l), true);
    assert.equal(parseLabelSelector("app==nsmgr,tier=system")(l), true);
    assert.equal(parseLabelSelector("app!=nsmgr")(l), false);
    assert.equal(parseLabelSelector("app in (forwarder-vpp, nsmgr)")(l), true);
    assert.equal(parseLabelSelector("app notin (nsmgr)")(l), false);
    assert.equal(parseLabelSelector("tier")(l), true);
    assert.equal(parseLabelSelector("!tier")(l), false);
    assert.equal(parseLabelSelector("app=registry")(l), false);
    assert.equal(parseLabelSelector(undefined)(l), true);
  });

  it("refuses a bad selector with one error naming the requirement", () => {
    for (const bad of ["app in (a", "=x", "app=a b", "app=,", "-bad=1"])
      assert.throws(
        () => parseLabelSelector(bad),
        (e: Error) => e instanceof LocalError && /unable to parse requirement/.test(e.message),
        bad,
      );
  });
});

describe("field selectors", () => {
  it("selects on spec.nodeName== and != and refuses unknown fields", () => {
    const fields = (p: string) => ({ "spec.nodeName": "node-1", "metadata.name": "x" })[p];
    assert.equal(parseFieldSelector("spec.nodeName==node-1", ["spec.nodeName"])(fields), true);
    assert.equal(parseFieldSelector("spec.nodeName=node-2", ["spec.nodeName"])(fields), false);
    assert.equal(parseFieldSelector("spec.nodeName!=node-2", ["spec.nodeName"])(fields), true);
    assert.throws(() => parseFieldSelector("spec.foo==1", ["spec.nodeName"]), /field label not supported: spec.foo/);
    assert.throws(() => parseFieldSelector("nonsense", ["spec.nodeName"]), /invalid field selector "nonsense"/);
  });
});

describe("go templates (the forms upstream READMEs use)", () => {
  it("range over items with a newline literal", () => {
    assert.equal(goTemplate('{{range .items}}{{.metadata.name}}{{"\\n"}}{{end}}', LIST), "alpine\nnse-kernel-abc\n");
    assert.equal(goTemplate('{{range .items}}{{.spec.nodeName}}{{"\\n"}}{{end}}', LIST), "node-1\nnode-2\n");
  });

  it("(index .items 0).metadata.name, index on maps, if/else, len, printf, missing fields", () => {
    assert.equal(goTemplate("{{ (index .items 0).metadata.name }}", LIST), "alpine");
    assert.equal(goTemplate('{{ index (index .items 1).metadata.labels "app" }}', LIST), "nse-kernel");
    assert.equal(goTemplate("{{len .items}}", LIST), "2");
    assert.equal(
      goTemplate("{{range .items}}{{if .status.podIP}}{{.status.podIP}}{{else}}none{{end}} {{end}}", LIST),
      "10.0.0.5 none ",
    );
    assert.equal(goTemplate('{{printf "%s/%s" .kind .apiVersion}}', LIST), "List/v1");
    assert.equal(goTemplate("{{.nothing.here}}", LIST), "<no value>");
    assert.equal(goTemplate("a {{- .kind -}} b", LIST), "aListb");
  });

  it("errors are one line naming the problem", () => {
    assert.throws(() => goTemplate("{{range .items}}", LIST), /missing \{\{end\}\}/);
    assert.throws(() => goTemplate("{{frob .items}}", LIST), /function "frob" not defined/);
    assert.throws(() => goTemplate("{{ (index .items 5).metadata.name }}", LIST), /index of out of range/);
  });
});

describe("jsonpath", () => {
  it("{.items[0].status.podIP}, [*], range/end, quoted text, ['key'], negative index", () => {
    assert.equal(jsonPath("{.items[0].status.podIP}", LIST), "10.0.0.5");
    assert.equal(jsonPath("{.items[*].metadata.name}", LIST), "alpine nse-kernel-abc");
    assert.equal(
      jsonPath('{range .items[*]}{.metadata.name}{"\\t"}{.spec.nodeName}{"\\n"}{end}', LIST),
      "alpine\tnode-1\nnse-kernel-abc\tnode-2\n",
    );
    assert.equal(jsonPath("{.items[-1].metadata.labels['app']}", LIST), "nse-kernel");
    assert.equal(jsonPath("name: {.items[0].metadata.name}", LIST), "name: alpine");
  });

  it("refuses what it cannot parse", () => {
    assert.throws(() => jsonPath("{.items[0}", LIST), /jsonpath: cannot parse/);
    assert.throws(() => jsonPath("{range .items[*]}{.x}", LIST), /without \{end\}/);
    assert.throws(() => jsonPath("{.items[7]}", LIST), /out of bounds/);
  });
});

describe("the runtime as Kubernetes objects", () => {
  it("components are pods of nsm-system with app labels and spec.nodeName", () => {
    const state = fakeState();
    assert.deepEqual(
      systemPodList(state).map((s) => `${s.name}:${s.app}:${s.target}`),
      [
        "registry:registry:registry",
        "nsmgr-node-1:nsmgr:nsmgr/node-1",
        "forwarder-node-1:forwarder-vpp:forwarder/node-1",
        "nsmgr-node-2:nsmgr:nsmgr/node-2",
        "forwarder-node-2:forwarder-vpp:forwarder/node-2",
      ],
    );
    const q = {
      kind: "pods" as const,
      names: [],
      namespace: "nsm-system",
      selector: "app=nsmgr",
      fieldSelector: "spec.nodeName==node-2",
    };
    const picked = selectObjects(state, q, everyoneAlive);
    assert.equal(render("pods", picked, { output: "name", single: false, allNamespaces: false }), "pod/nsmgr-node-2\n");
    const nsmgr = picked[0] as { status: { podIP: string; hostIP: string } };
    assert.equal(nsmgr.status.podIP, "198.18.0.2");
    assert.equal(nsmgr.status.hostIP, "198.18.0.2");
  });

  it("a pod whose process is gone is not Ready", () => {
    const state = fakeState();
    const [obj] = objectsOf(state, "pods", (p) => p?.pid !== 10);
    const ready = (obj!.status as { conditions: { type: string; status: string }[] }).conditions.find(
      (c) => c.type === "Ready",
    );
    assert.equal(ready?.status, "False");
  });

  it("output: one named object prints itself, several a List; tables are kubectl's", () => {
    const state = fakeState();
    const one = selectObjects(state, { kind: "pods", names: ["alpine"], namespace: "ns-a" }, everyoneAlive);
    assert.equal(JSON.parse(render("pods", one, { output: "json", single: true, allNamespaces: false })).kind, "Pod");
    assert.equal(JSON.parse(render("pods", one, { output: "json", single: false, allNamespaces: false })).kind, "List");
    assert.match(
      render("pods", one, { output: "yaml", single: true, allNamespaces: false }),
      /^apiVersion: v1\nkind: Pod\n/,
    );
    const tableText = render("pods", one, { single: false, allNamespaces: false });
    assert.match(tableText, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nalpine\s+1\/1\s+Running\s+0\s+\d+s\n$/);
    assert.match(render("pods", one, { output: "wide", single: false, allNamespaces: false }), /NODE.*\n.*node-1/);
    assert.equal(
      render("pods", one, { output: "jsonpath={.spec.nodeName}", single: true, allNamespaces: false }),
      "node-1",
    );
    assert.equal(render("pods", one, { template: "{{.metadata.name}}", single: true, allNamespaces: false }), "alpine");
    assert.throws(
      () => render("pods", one, { output: "xml", single: true, allNamespaces: false }),
      /output format "xml"/,
    );
  });

  it("names that do not exist and unknown kinds are errors", () => {
    const state = fakeState();
    assert.throws(
      () => selectObjects(state, { kind: "pods", names: ["nope"], namespace: "ns-a" }, everyoneAlive),
      /pods "nope" not found in namespace "ns-a"/,
    );
    assert.throws(() => parseTargets(["widgets"]), /doesn't have a resource type "widgets"/);
    assert.deepEqual(parseTargets(["pods/a", "pod/b"]), { kind: "pods", names: ["a", "b"] });
    assert.deepEqual(parseTargets(["deployments", "nse-kernel"]), { kind: "deployments", names: ["nse-kernel"] });
  });
});

describe("wait arguments", () => {
  it("parses --for and Go durations", () => {
    assert.deepEqual(parseWaitFor("condition=ready"), { kind: "ready" });
    assert.deepEqual(parseWaitFor("delete"), { kind: "delete" });
    assert.throws(() => parseWaitFor("condition=available"), /unsupported --for/);
    assert.equal(parseDuration("1m"), 60_000);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("500ms"), 500);
    assert.throws(() => parseDuration("soon"), /invalid duration "soon"/);
  });

  it("stored kinds: cm/secret words, kubectl's table columns, -o name with the API group, describe hides secret values", () => {
    assert.deepEqual(parseTargets(["cm", "a.b"]), { kind: "configmaps", names: ["a.b"] });
    assert.deepEqual(parseTargets(["rolebinding.rbac.authorization.k8s.io/x"]), { kind: "rolebindings", names: ["x"] });
    const secret = {
      kind: "Secret",
      type: "Opaque",
      metadata: { name: "s", namespace: "n", creationTimestamp: new Date().toISOString() },
      data: { pw: Buffer.from("s3cret").toString("base64") },
    };
    const opts = { single: false, allNamespaces: false };
    assert.match(render("secrets", [secret], opts), /^NAME\s+TYPE\s+DATA\s+AGE\ns\s+Opaque\s+1\s+\d+s\n$/);
    assert.equal(
      render("roles", [{ metadata: { name: "r" } }], { ...opts, output: "name" }),
      "role.rbac.authorization.k8s.io/r\n",
    );
    const text = describeObjects("secrets", [secret]);
    assert.match(text, /^pw: {2}6 bytes$/m);
    assert.doesNotMatch(text, /s3cret|czNjcmV0/);
  });
});
