// SPDX-License-Identifier: Apache-2.0
/**
 * Bad input to `nsm apply`: an unknown kind, a bad selector, a field of the wrong type, a
 * ConfigMap key (or ConfigMap) that does not exist. Each is one error line naming the file, the
 * object and the field, and the apply is all or nothing: the Namespace and ConfigMap listed
 * before the bad object are not created either.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const skip = skipReason();
const NS = "ns-errors";

/** A Namespace and a ConfigMap (both fine), then `bad`. */
function withGoodObjects(bad: string): string {
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ${NS}}
data: {mode: fast}
---
${bad}`;
}

const POD = (spec: string) => `apiVersion: v1
kind: Pod
metadata: {name: app, namespace: ${NS}}
spec:
${spec}`;

const CASES: { name: string; bad: string; error: RegExp }[] = [
  {
    name: "unknown kind",
    bad: "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1, namespace: ns-errors}\n",
    error:
      /^nsm apply: error: \S+ \(document 3\): Gadget\/g1: kind: no matches for kind "Gadget" in version "example\.com\/v1"/,
  },
  {
    name: "bad selector operator",
    bad: `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${NS}}
spec:
  selector:
    matchExpressions: [{key: app, operator: Near, values: [web]}]
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: alpine}]}
`,
    error: /Deployment\/web: spec\.selector\.matchExpressions\[0\]\.operator: "Near" is not a valid selector operator/,
  },
  {
    name: "field of the wrong type",
    bad: `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${NS}}
spec:
  replicas: two
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: alpine}]}
`,
    error: /Deployment\/web: spec\.replicas: expected an integer, got a string/,
  },
  {
    name: "env value of the wrong type",
    bad: POD("  containers: [{name: c, image: alpine, env: [{name: A, value: {nested: map}}]}]\n"),
    error: /Pod\/app: spec\.containers\[0\]\.env\[0\]\.value: expected a string, got a map/,
  },
  {
    name: "ConfigMap key that does not exist",
    bad: POD(
      "  containers: [{name: c, image: alpine, env: [{name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: speed}}}]}]\n",
    ),
    error:
      /pod\/app: spec\.containers\[0\]\.env\[0\]\.valueFrom\.configMapKeyRef\.key: key "speed" not found in ConfigMap "settings" \(it has: mode\)/,
  },
  {
    name: "ConfigMap volume that does not exist",
    bad: POD(
      "  volumes: [{name: v, configMap: {name: nothere}}]\n  containers: [{name: c, image: alpine, volumeMounts: [{name: v, mountPath: /cfg}]}]\n",
    ),
    error: /pod\/app: spec\.volumes\[0\]\.configMap\.name: ConfigMap "nothere" not found in namespace "ns-errors"/,
  },
  {
    name: "volumeMount of no volume",
    bad: POD("  containers: [{name: c, image: alpine, volumeMounts: [{name: v, mountPath: /cfg}]}]\n"),
    error: /Pod\/app: spec\.containers\[0\]\.volumeMounts\[0\]\.name: no volume named "v" in spec\.volumes/,
  },
];

describe("nsm apply: bad input is one error line and nothing is created", { skip }, () => {
  let rt: TestRuntime;
  let dir: string;
  const state = () => JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "nsm-apply-errors-"));
    rt = testRuntime("apply-errors");
    await rt.ok("up", "--nodes", "1");
  });
  after(async () => {
    await rt?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const file = join(dir, `${c.name.replace(/\W+/g, "-")}.yaml`);
      writeFileSync(file, withGoodObjects(c.bad));
      const before = state();
      const r = await rt.nsm("apply", "-f", file);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, `one line: ${r.stderr}`);
      assert.match(r.stderr, c.error);
      assert.equal(r.stdout, "", "nothing reported as created");
      const now = state();
      assert.deepEqual(now.namespaces, before.namespaces);
      assert.deepEqual(now.objects ?? [], before.objects ?? []);
      assert.deepEqual(now.pods, before.pods);
      const ns = await rt.nsm("get", "ns", NS);
      assert.match(ns.stderr, /namespaces "ns-errors" not found/);
    });
  }

  it("the same objects without the bad one apply, and an optional missing key is no error", async () => {
    const file = join(dir, "good.yaml");
    writeFileSync(
      file,
      withGoodObjects(
        POD(
          "  containers: [{name: c, image: alpine, env: [{name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: speed, optional: true}}}]}]\n",
        ),
      ),
    );
    const out = await rt.ok("apply", "-f", file);
    assert.match(out, /namespace\/ns-errors created\nconfigmap\/settings created\npod\/app created/);
    assert.deepEqual(
      state().objects.map((o: { kind: string; name: string }) => `${o.kind}/${o.name}`),
      ["ConfigMap/settings"],
    );
  });
});
