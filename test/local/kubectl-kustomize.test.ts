// SPDX-License-Identifier: Apache-2.0
/**
 * Kustomization fields of `nsm apply -k` beyond the basics: JSON 6902 patches (both spellings),
 * `namePrefix`/`nameSuffix` and `labels`; a patch that does not apply is one error naming it.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { nameHash } from "../../src/local/kustomize-generators.js";
import { loadManifests, type StoredManifest, type WorkloadManifest } from "../../src/local/manifest.js";

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nse-kernel
  labels:
    app: nse-kernel
spec:
  selector:
    matchLabels:
      app: nse-kernel
  template:
    metadata:
      labels:
        app: nse-kernel
    spec:
      containers:
        - name: nse
          image: ghcr.io/networkservicemesh/cmd-nse-icmp-responder:v1.14.0
          env:
            - name: NSM_CIDR_PREFIX
              value: 172.16.1.100/31
`;

const NS = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-k\n";

describe("kustomize: JSON 6902, name affixes, labels", () => {
  const dirs: string[] = [];
  const kustomization = (text: string, files: Record<string, string> = {}) => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-kust-"));
    dirs.push(dir);
    writeFileSync(join(dir, "nse.yaml"), DEPLOYMENT);
    writeFileSync(join(dir, "ns.yaml"), NS);
    for (const [f, t] of Object.entries(files)) writeFileSync(join(dir, f), t);
    writeFileSync(join(dir, "kustomization.yaml"), `resources:\n  - ns.yaml\n  - nse.yaml\n${text}`);
    return dir;
  };
  const deployment = (dir: string) => loadManifests([dir]).find((m) => m.kind === "Deployment") as WorkloadManifest;
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("patchesJson6902 from a file and patches with an inline operation list", () => {
    const dir = kustomization(
      `patchesJson6902:
  - target: {group: apps, version: v1, kind: Deployment, name: nse-kernel}
    path: cidr.yaml
patches:
  - target: {kind: Deployment, name: nse-kernel}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: NSM_SERVICE_NAMES, value: k2k}
      - op: add
        path: /spec/replicas
        value: 2
`,
      {
        "cidr.yaml": "- op: replace\n  path: /spec/template/spec/containers/0/env/0/value\n  value: 172.16.2.100/31\n",
      },
    );
    const d = deployment(dir);
    assert.deepEqual(d.spec.containers[0]!.env, [
      { name: "NSM_CIDR_PREFIX", value: "172.16.2.100/31" },
      { name: "NSM_SERVICE_NAMES", value: "k2k" },
    ]);
    assert.equal(d.replicas, 2);
  });

  it("namePrefix/nameSuffix rename everything but Namespaces; labels add pairs (and selectors when asked)", () => {
    const dir = kustomization(
      "namePrefix: blue-\nnameSuffix: -v2\nlabels:\n  - pairs: {version: v2}\n    includeSelectors: true\n  - pairs: {team: nsm}\n",
    );
    const all = loadManifests([dir]);
    assert.deepEqual(all.map((m) => m.name).sort(), ["blue-nse-kernel-v2", "ns-k"]);
    const d = deployment(dir);
    assert.deepEqual(d.labels, { app: "nse-kernel", version: "v2" });
  });

  it("a JSON 6902 patch that does not apply, or has no target, is one error naming it", () => {
    const bad = kustomization(
      "patches:\n  - target: {kind: Deployment, name: nse-kernel}\n    patch: '[{op: remove, path: /spec/nothing/here}]'\n",
    );
    assert.throws(() => loadManifests([bad]), /inline patch\): cannot patch Deployment\/nse-kernel: /);
    const untargeted = kustomization("patches:\n  - patch: '[{op: remove, path: /spec/replicas}]'\n");
    assert.throws(() => loadManifests([untargeted]), /a JSON 6902 patch needs a `target`/);
    const missing = kustomization(
      "patchesJson6902:\n  - target: {kind: Deployment, name: other}\n    patch: '[{op: remove, path: /spec}]'\n",
    );
    assert.throws(() => loadManifests([missing]), /targets Deployment\/other, which is not among the resources/);
  });

  it("configMapGenerator/secretGenerator: literals, files, envs; names hashed as kubectl kustomize (v5.5) does", () => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-kust-gen-"));
    dirs.push(dir);
    mkdirSync(join(dir, "base"));
    mkdirSync(join(dir, "overlay"));
    writeFileSync(join(dir, "base", "app.env"), 'A=1\n# comment\n\nB="two"\n');
    writeFileSync(join(dir, "base", "f.txt"), "hello");
    writeFileSync(
      join(dir, "base", "kustomization.yaml"),
      `resources: [pod.yaml]
configMapGenerator:
  - name: cfg
    literals: [a=1, b=<x&y>]
  - name: app
    envs: [app.env]
    files: [f.txt, k2=f.txt]
    literals: [x="quoted v", y=a=b]
secretGenerator:
  - name: sec
    literals: [pw=s3cret]
`,
    );
    writeFileSync(
      join(dir, "base", "pod.yaml"),
      `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes: [{name: v, configMap: {name: cfg}}, {name: s, secret: {secretName: sec}}]
  containers:
    - name: c
      image: alpine
      env: [{name: A, valueFrom: {configMapKeyRef: {name: cfg, key: a}}}]
      envFrom: [{secretRef: {name: sec}}, {configMapRef: {name: app}}]
`,
    );
    writeFileSync(
      join(dir, "overlay", "kustomization.yaml"),
      "namePrefix: pre-\nnameSuffix: -suf\nresources: [../base]\n",
    );
    const base = loadManifests([join(dir, "base")]);
    const names = (ms: typeof base) => ms.map((m) => m.name).sort();
    // The names `kubectl kustomize` (kustomize v5.5.0) prints for these generators.
    assert.deepEqual(names(base), ["app-c76mt2862g", "cfg-cchh4fmt2g", "p", "sec-c6mc6k7dmf"]);
    const app = base.find((m) => m.name.startsWith("app-")) as StoredManifest;
    assert.deepEqual(app.body.data, { A: "1", B: '"two"', "f.txt": "hello", k2: "hello", x: "quoted v", y: "a=b" });
    const overlay = loadManifests([join(dir, "overlay")]);
    assert.deepEqual(names(overlay), [
      "pre-app-suf-c76mt2862g",
      "pre-cfg-suf-cchh4fmt2g",
      "pre-p-suf",
      "pre-sec-suf-c6mc6k7dmf",
    ]);
    const pod = overlay.find((m) => m.kind === "Pod") as WorkloadManifest;
    const c = pod.spec.containers[0]!;
    assert.equal(c.env[0]!.keyRef?.name, "pre-cfg-suf-cchh4fmt2g");
    assert.deepEqual(
      c.envFrom.map((e) => e.name),
      ["pre-sec-suf-c6mc6k7dmf", "pre-app-suf-c76mt2862g"],
    );
    assert.deepEqual(
      pod.spec.volumes.map((v) => (v.source.type === "configMap" || v.source.type === "secret" ? v.source.name : "")),
      ["pre-cfg-suf-cchh4fmt2g", "pre-sec-suf-c6mc6k7dmf"],
    );
  });

  it("generatorOptions.disableNameSuffixHash and labels; behavior: merge; a bad generator is one error", () => {
    const dir = kustomization(
      "generatorOptions:\n  disableNameSuffixHash: true\n  labels: {gen: yes}\nconfigMapGenerator:\n  - name: plain\n    literals: [a=1]\n  - name: plain\n    behavior: merge\n    literals: [b=2]\n",
    );
    const cm = loadManifests([dir]).find((m) => m.kind === "Object") as StoredManifest;
    assert.equal(cm.name, "plain");
    assert.deepEqual(cm.body.data, { a: "1", b: "2" });
    assert.deepEqual((cm.body.metadata as { labels: unknown }).labels, { gen: "yes" });
    assert.equal(nameHash({ kind: "ConfigMap", data: { a: "1" } }), "h29d89cmmt");
    const bad = kustomization("configMapGenerator:\n  - name: x\n    literals: [novalue]\n");
    assert.throws(() => loadManifests([bad]), /configMapGenerator\[0\]\.literals: "novalue" is not KEY=VALUE/);
    const missing = kustomization("configMapGenerator:\n  - name: x\n    files: [nothere.txt]\n");
    assert.throws(() => loadManifests([missing]), /configMapGenerator\[0\]\.files: nothere\.txt: no such file/);
  });

  it("commonLabels reach a DaemonSet's selector and pod template too", () => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-kust-ds-"));
    dirs.push(dir);
    writeFileSync(
      join(dir, "ds.yaml"),
      "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec: {containers: [{name: c, image: busybox, command: [sleep, infinity]}]}\n",
    );
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [ds.yaml]\ncommonLabels: {team: nsm}\n");
    const [ds] = loadManifests([dir]) as WorkloadManifest[];
    assert.equal(ds!.kind, "DaemonSet");
    assert.deepEqual(ds!.labels, { app: "agent", team: "nsm" });
  });
});
