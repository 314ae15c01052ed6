// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { imageName, loadManifests, strategicMerge, type WorkloadManifest } from "./manifest.js";

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "kernel2kernel");

describe("manifests", () => {
  const dir = mkdtempSync(join(tmpdir(), "nsm-manifest-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, text);
    return p;
  };

  it("reads examples/kernel2kernel as a kustomization: namespace set, patch merged by container and env name", () => {
    const ms = loadManifests([EXAMPLE]);
    assert.deepEqual(
      ms.map((m) => `${m.kind}/${m.name}`),
      ["Namespace/ns-kernel2kernel", "NetworkService/kernel2kernel", "Deployment/nse-kernel", "Pod/alpine"],
    );
    const nse = ms[2] as WorkloadManifest;
    assert.equal(nse.namespace, "ns-kernel2kernel");
    assert.equal(nse.replicas, 1);
    assert.deepEqual(
      nse.spec.containers[0]!.env.map((e) => [e.name, e.value ?? `field:${e.fieldPath}`]),
      [
        ["SPIFFE_ENDPOINT_SOCKET", "unix:///run/spire/sockets/agent.sock"],
        ["NSM_NAME", "field:metadata.name"],
        ["NSM_CONNECT_TO", "unix:///var/lib/networkservicemesh/nsm.io.sock"],
        ["NSM_CIDR_PREFIX", "172.16.1.100/31"],
        ["NSM_SERVICE_NAMES", "kernel2kernel"],
        ["NSM_REGISTER_SERVICE", "false"],
      ],
    );
    const alpine = ms[3] as WorkloadManifest;
    assert.equal(alpine.annotations["networkservicemesh.io"], "kernel://kernel2kernel/nsm-1");
    assert.equal(alpine.spec.affinity.podAffinity[0]!.labelSelector.matchExpressions[0]!.values[0], "nse-kernel");
    const ns = ms[1];
    assert.equal(ns?.kind === "NetworkService" && ns.record.payload, "ETHERNET");
  });

  it("reads NetworkService matches with the CR's snake_case field names", () => {
    const f = write(
      "ns.yaml",
      [
        "apiVersion: networkservicemesh.io/v1",
        "kind: NetworkService",
        "metadata: {name: svc}",
        "spec:",
        "  payload: IP",
        "  matches:",
        "    - source_selector: {app: a}",
        "      fallthrough: true",
        "      routes:",
        "        - destination_selector: {app: b}",
        "      metadata: {labels: {x: y}}",
      ].join("\n"),
    );
    const [m] = loadManifests([f]);
    assert.ok(m?.kind === "NetworkService");
    assert.deepEqual(m.record.matches[0]!.sourceSelector, { app: "a" });
    assert.deepEqual(m.record.matches[0]!.routes[0]!.destinationSelector, { app: "b" });
    assert.equal(m.record.matches[0]!.fallthrough, true);
    assert.deepEqual(m.record.matches[0]!.metadata?.labels, { x: "y" });
  });

  it("multi-document files, -n for objects without a namespace", () => {
    const f = write(
      "multi.yaml",
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: alpine}]}\n",
    );
    const ms = loadManifests([f], () => {}, "a");
    assert.deepEqual(
      ms.map((m) => [m.kind, m.kind === "Namespace" ? "" : m.namespace]),
      [
        ["Namespace", ""],
        ["Pod", "a"],
      ],
    );
  });

  it("refuses what it cannot run, naming the file and the object", () => {
    const bad: [string, string, RegExp][] = [
      [
        "kind.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: s}\n",
        /kind\.yaml: Gadget\/s: kind: no matches for kind "Gadget" in version "example\.com\/v1"/,
      ],
      ["yaml.yaml", "kind: Pod\n  metadata: [\n", /yaml\.yaml: malformed YAML at line/],
      [
        "name.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: x}]}\n",
        /"Bad_Name" is not a valid name/,
      ],
      [
        "noimg.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
        /container "c": `image` is required/,
      ],
      [
        "secret.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x, env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}]}]}\n",
        /Pod\/p: spec\.containers\[0\]\.env\[0\]\.valueFrom: supported here are fieldRef, configMapKeyRef and secretKeyRef/,
      ],
      [
        "sel.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {selector: {matchLabels: {app: x}}, template: {metadata: {labels: {app: y}}, spec: {containers: [{name: c, image: i}]}}}\n",
        /spec\.selector does not match the template labels/,
      ],
      [
        "nsv.yaml",
        "apiVersion: networkservicemesh.io/v1\nkind: NetworkService\nmetadata: {name: s}\nspec: {payload: ETHERNET, bogus: 1}\n",
        /NetworkService\/s: bad spec/,
      ],
    ];
    for (const [name, text, re] of bad) assert.throws(() => loadManifests([write(name, text)]), re, name);
    assert.throws(() => loadManifests([join(dir, "nope.yaml")]), /nope\.yaml: no such file or directory/);
  });

  it("kustomize: bases/resources from other directories, patches, commonLabels; remote resources refused", () => {
    write("base/kustomization.yaml", "resources: [pod.yaml]\n");
    write(
      "base/pod.yaml",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x, env: [{name: A, value: '1'}]}]}\n",
    );
    write(
      "overlay/kustomization.yaml",
      "namespace: ov\ncommonLabels: {team: t}\nbases: [../base]\npatches:\n  - patch: |\n      apiVersion: v1\n      kind: Pod\n      metadata: {name: p}\n      spec: {containers: [{name: c, env: [{name: A, value: '2'}, {name: B, value: '3'}]}]}\n",
    );
    const [p] = loadManifests([join(dir, "overlay")]) as WorkloadManifest[];
    assert.equal(p!.namespace, "ov");
    assert.deepEqual(p!.labels, { team: "t" });
    assert.deepEqual(
      p!.spec.containers[0]!.env.map((e) => `${e.name}=${e.value}`),
      ["A=2", "B=3"],
    );
    write(
      "remote/kustomization.yaml",
      "resources: [https://github.com/networkservicemesh/deployments-k8s/apps/nse-kernel?ref=main]\n",
    );
    assert.throws(() => loadManifests([join(dir, "remote")]), /remote resource .* is not supported/);
  });

  it("strategic merge replaces scalars and unnamed lists, merges named lists", () => {
    assert.deepEqual(
      strategicMerge(
        { a: 1, l: [1, 2], c: [{ name: "x", v: 1 }, { name: "y" }] },
        { a: 2, l: [3], c: [{ name: "x", v: 2 }, { name: "z" }] },
      ),
      { a: 2, l: [3], c: [{ name: "x", v: 2 }, { name: "y" }, { name: "z" }] },
    );
  });

  it("image names", () => {
    assert.equal(imageName("ghcr.io/networkservicemesh/ci/cmd-nse-icmp-responder:972d66a"), "cmd-nse-icmp-responder");
    assert.equal(imageName("alpine:3.15.0"), "alpine");
    assert.equal(imageName("localhost:5000/cmd-nsc@sha256:abc"), "cmd-nsc");
  });
});
