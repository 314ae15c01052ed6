// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import type { WorkloadManifest } from "./manifest.js";
import { configData, envFromValues, keyRefValue } from "./pod-data.js";
import { nextPodIP } from "./pod-network.js";
import { parseVolumes } from "./podspec.js";
import { bindMounts, downwardFiles, fieldValue, keyFiles, mountedArgv, mountScript, shQuote } from "./volumes.js";

const POD = { kind: "Pod", name: "p", namespace: "ns", source: "p.yaml" } as unknown as WorkloadManifest;
const CONFIG = (from: string, _ns: string, name: string) =>
  from === "configMap" && name === "cfg" ? { mode: Buffer.from("fast"), level: Buffer.from("3") } : undefined;

describe("pod volumes and data", () => {
  it("ConfigMap and Secret data as bytes; a key's files, all of them or the items asked for", () => {
    const cm = configData({
      kind: "ConfigMap",
      data: { a: "x" },
      binaryData: { b: Buffer.from([0, 1]).toString("base64") },
    });
    assert.deepEqual(cm.a, Buffer.from("x"));
    assert.deepEqual(cm.b, Buffer.from([0, 1]));
    const secret = configData({ kind: "Secret", data: { pw: Buffer.from("s3cret").toString("base64") } });
    assert.equal(secret.pw!.toString(), "s3cret");
    assert.deepEqual(
      keyFiles(cm, undefined).map((f) => f.path),
      ["a", "b"],
    );
    assert.deepEqual(keyFiles(cm, [{ key: "a", path: "dir/a.txt" }]), [
      { path: "dir/a.txt", data: Buffer.from("x").toString("base64") },
    ]);
  });

  it("downward API values: label lines sorted and quoted, one label, a plain field", () => {
    const labels = { tier: "web", app: 'a"b' };
    assert.equal(fieldValue("metadata.labels", {}, labels, {}), 'app="a\\"b"\ntier="web"\n');
    assert.equal(fieldValue("metadata.labels['tier']", {}, labels, {}), "web");
    assert.equal(fieldValue("status.podIP", { "status.podIP": "10.244.1.2" }, {}, {}), "10.244.1.2");
    const [f] = downwardFiles([{ path: "name", fieldPath: "metadata.name" }], () => "p");
    assert.equal(Buffer.from(f!.data, "base64").toString(), "p");
  });

  it("env from a key, envFrom with a prefix; a missing key or object is an error naming the field", () => {
    const ref = { from: "configMap" as const, name: "cfg", key: "mode", optional: false };
    assert.equal(keyRefValue(POD, ref, "spec.containers[0].env[0]", CONFIG), "fast");
    assert.throws(
      () => keyRefValue(POD, { ...ref, key: "nope" }, "spec.containers[0].env[0]", CONFIG),
      /p\.yaml: pod\/p: spec\.containers\[0\]\.env\[0\]\.valueFrom\.configMapKeyRef\.key: key "nope" not found in ConfigMap "cfg" \(it has: mode, level\)/,
    );
    assert.equal(keyRefValue(POD, { ...ref, name: "other", optional: true }, "f", CONFIG), undefined);
    assert.throws(() => keyRefValue(POD, { ...ref, name: "other" }, "f", CONFIG), /ConfigMap "other" not found/);
    const env = envFromValues(POD, [{ from: "configMap", name: "cfg", prefix: "APP_", optional: false }], "c", CONFIG);
    assert.deepEqual(env, { APP_mode: "fast", APP_level: "3" });
  });

  it("volumes: one type each, names unique, hostPath absolute", () => {
    const at = "p.yaml: Pod/p";
    assert.equal(parseVolumes([{ name: "v", emptyDir: {} }], at)[0]!.source.type, "emptyDir");
    assert.throws(
      () => parseVolumes([{ name: "v", persistentVolumeClaim: { claimName: "c" } }], at),
      /spec\.volumes\[0\]: volume type "persistentVolumeClaim" is not supported here/,
    );
    assert.throws(
      () => parseVolumes([{ name: "v", configMap: { name: 3 } }], at),
      /spec\.volumes\[0\]\.configMap\.name: expected a string, got a number/,
    );
    assert.throws(() => parseVolumes([{ name: "v", hostPath: { path: "rel" } }], at), /must be an absolute path/);
    assert.throws(
      () =>
        parseVolumes(
          [
            { name: "v", emptyDir: {} },
            { name: "v", emptyDir: {} },
          ],
          at,
        ),
      /used by two volumes/,
    );
  });

  it("pod IPs: the lowest free address of the node's range, from .2", () => {
    assert.equal(nextPodIP(2, new Set()), "10.244.2.2");
    assert.equal(nextPodIP(1, new Set(["10.244.1.2", "10.244.1.3"])), "10.244.1.4");
    const full = new Set(Array.from({ length: 253 }, (_, i) => `10.244.1.${i + 2}`));
    assert.equal(nextPodIP(1, full), undefined);
  });

  it("the mount script: quoted paths, one bind mount per volume, a valid sh program that execs the command", () => {
    assert.equal(shQuote("it's"), `'it'\\''s'`);
    const mounts = bindMounts(
      "/state/pods/ns_p",
      [
        { name: "cfg", type: "files", files: [] },
        { name: "host", type: "hostPath", hostPath: "/srv/data" },
      ],
      [
        { volume: "cfg", mountPath: "/etc/my app", readOnly: true },
        { volume: "host", mountPath: "/data", subPath: "x", readOnly: false },
      ],
    );
    assert.deepEqual(mounts, [
      { source: "/state/pods/ns_p/volumes/cfg", target: "/etc/my app", readOnly: true },
      { source: "/srv/data/x", target: "/data", readOnly: false },
    ]);
    const script = mountScript("/state/pods/ns_p/c.root", mounts, "/work dir");
    assert.match(script, /^R='\/state\/pods\/ns_p\/c\.root'$/m);
    assert.match(script, /^bindmount '\/state\/pods\/ns_p\/volumes\/cfg' '\/etc\/my app' ro$/m);
    assert.match(script, /^bindmount '\/srv\/data\/x' '\/data' rw$/m);
    assert.match(script, /exec chroot "\$R" \/bin\/sh -c 'cd "\$0" && exec "\$@"' '\/work dir' "\$@"\n$/);
    execFileSync("sh", ["-n", "-c", script]);
    assert.deepEqual(mountedArgv("/s.sh", ["sleep", "1"]), [
      "unshare",
      "--mount",
      "--propagation",
      "slave",
      "sh",
      "/s.sh",
      "sleep",
      "1",
    ]);
  });
});
