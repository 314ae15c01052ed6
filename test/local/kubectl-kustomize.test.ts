// SPDX-License-Identifier: Apache-2.0
/**
 * Kustomization fields of `nsm apply -k` beyond the basics: JSON 6902 patches (both spellings),
 * `namePrefix`/`nameSuffix` and `labels`; a patch that does not apply is one error naming it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadManifests, type WorkloadManifest } from "../../src/local/manifest.js";

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
});
