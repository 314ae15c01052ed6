// SPDX-License-Identifier: Apache-2.0
/**
 * Pod volumes and data-fed env in the local runtime, through the kubectl-compatible CLI: a
 * ConfigMap, a Secret, an emptyDir shared by two containers, a hostPath and a downwardAPI volume
 * mounted at their mountPath inside the pod (read with `nsm exec … -- cat`), env from
 * configMapKeyRef/secretKeyRef/envFrom/fieldRef; the host's filesystem sees none of it.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const skip = skipReason();
const NS = "ns-volumes";

/** A mount path that does not exist on the host (so the runtime must make it without touching the host). */
const CONFIG_DIR = "/etc/nsm-volumes-test/config";

function manifests(hostDir: string): string {
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app.config, namespace: ${NS}}
data:
  greeting: hello from a configmap
  settings.yaml: |
    mode: fast
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: ${NS}}
stringData:
  password: s3cret
data:
  token: ${Buffer.from("tok-123").toString("base64")}
---
apiVersion: v1
kind: Pod
metadata:
  name: reader
  namespace: ${NS}
  labels: {app: reader, tier: test}
  annotations: {note: volumes}
spec:
  volumes:
    - {name: config, configMap: {name: app.config}}
    - {name: secret, secret: {secretName: creds, items: [{key: password, path: pw/password.txt}]}}
    - {name: scratch, emptyDir: {}}
    - {name: host, hostPath: {path: ${hostDir}, type: Directory}}
    - name: podinfo
      downwardAPI:
        items:
          - {path: labels, fieldRef: {fieldPath: metadata.labels}}
          - {path: name, fieldRef: {fieldPath: metadata.name}}
  containers:
    - name: main
      image: alpine
      command: [sleep, infinity]
      env:
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: app.config, key: greeting}}}
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: MISSING_OK, valueFrom: {configMapKeyRef: {name: app.config, key: nope, optional: true}}}
      envFrom:
        - {secretRef: {name: creds}, prefix: CREDS_}
      volumeMounts:
        - {name: config, mountPath: ${CONFIG_DIR}}
        - {name: secret, mountPath: /var/run/secrets/creds}
        - {name: scratch, mountPath: /scratch}
        - {name: host, mountPath: /mnt/host-data, readOnly: true}
        - {name: podinfo, mountPath: /etc/podinfo}
    - name: writer
      image: busybox
      command: [sh, -c, "echo written-by-writer > /work/shared.txt && exec sleep infinity"]
      volumeMounts:
        - {name: scratch, mountPath: /work}
`;
}

describe("pod volumes and env from ConfigMaps and Secrets", { skip }, () => {
  let rt: TestRuntime;
  let dir: string;
  const exec = (...cmd: string[]) => rt.nsm("exec", "reader", "-n", NS, "-c", "main", "--", ...cmd);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "nsm-volumes-"));
    writeFileSync(join(dir, "from-host.txt"), "host file\n");
    writeFileSync(join(dir, "pod.yaml"), manifests(dir));
    rt = testRuntime("volumes");
    await rt.ok("up", "--nodes", "1");
    const out = await rt.ok("apply", "-f", join(dir, "pod.yaml"));
    assert.match(out, /configmap\/app\.config created/);
    assert.match(out, /secret\/creds created/);
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod/reader", "-n", NS);
  });
  after(async () => {
    await rt?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a ConfigMap's keys are files at the mountPath; the host has no such directory", async () => {
    const r = await exec("cat", `${CONFIG_DIR}/greeting`, `${CONFIG_DIR}/settings.yaml`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hello from a configmapmode: fast\n");
    assert.equal(existsSync("/etc/nsm-volumes-test"), false, "the mount path leaked to the host");
    const ls = await exec("ls", "/etc");
    assert.match(ls.stdout, /^passwd$/m, "the host's /etc is still seen around the mount");
  });

  it("a Secret's item at its path, a read-only hostPath, a downwardAPI volume", async () => {
    const pw = await exec("cat", "/var/run/secrets/creds/pw/password.txt");
    assert.equal(pw.stdout, "s3cret");
    const host = await exec("cat", "/mnt/host-data/from-host.txt");
    assert.equal(host.stdout, "host file\n");
    const ro = await exec("touch", "/mnt/host-data/new");
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    assert.equal(existsSync(join(dir, "new")), false);
    const labels = await exec("cat", "/etc/podinfo/labels", "/etc/podinfo/name");
    assert.equal(labels.stdout, 'app="reader"\ntier="test"\nreader');
  });

  it("an emptyDir is shared by the pod's containers", async () => {
    const r = await exec("cat", "/scratch/shared.txt");
    assert.equal(r.stdout, "written-by-writer\n");
  });

  it("env from configMapKeyRef, secretKeyRef, envFrom and fieldRef", async () => {
    const shellDefault = "$" + "{MISSING_OK-unset}";
    const r = await exec("sh", "-c", `echo "$GREETING|$PASSWORD|$CREDS_token|$NODE|${shellDefault}|$POD_IP"`);
    assert.equal(r.code, 0, r.stderr);
    const [greeting, password, token, node, missing, podIP] = r.stdout.trim().split("|");
    assert.deepEqual(
      [greeting, password, token, node, missing],
      ["hello from a configmap", "s3cret", "tok-123", "node-1", "unset"],
    );
    assert.match(podIP!, /^10\.244\.1\.\d+$/);
    const wide = await rt.ok("get", "pod", "reader", "-n", NS, "-o", "wide");
    assert.match(
      wide,
      new RegExp(`reader\\s+2/2\\s+Running\\s+0\\s+\\S+\\s+${podIP!.replace(/\./g, "\\.")}\\s+node-1`),
    );
    const ip = await exec("ip", "-4", "-o", "addr", "show", "dev", "lo");
    assert.match(ip.stdout, new RegExp(`inet ${podIP!.replace(/\./g, "\\.")}/32`));
  });

  it("get configmaps/secrets show the stored objects; delete pod removes its directory", async () => {
    const cms = await rt.ok("get", "configmaps", "-n", NS);
    assert.match(cms, /^NAME\s+DATA\s+AGE\n.*app\.config\s+2\s+/m);
    const secret = await rt.ok("get", "secret", "creds", "-n", NS, "-o", "jsonpath={.data.password}");
    assert.equal(Buffer.from(secret, "base64").toString(), "s3cret");
    const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
    const podDir = join(rt.dir, "pods", `${NS}_reader`);
    assert.ok(existsSync(join(podDir, "volumes", "config", "greeting")));
    assert.ok(state.pods.some((p: { name: string }) => p.name === "reader"));
    await rt.ok("delete", "pod", "reader", "-n", NS);
    assert.equal(existsSync(podDir), false);
    await rt.ok("delete", "configmap", "app.config", "-n", NS);
    const after = await rt.nsm("get", "configmap", "app.config", "-n", NS);
    assert.notEqual(after.code, 0);
    assert.match(after.stderr, /configmaps "app\.config" not found/);
  });
});
