// SPDX-License-Identifier: Apache-2.0
/**
 * examples/opa on the local runtime, as its README runs it: `nsm up` (identity provider, mTLS),
 * `nsm apply -f examples/opa`; the client whose tokens expired a minute ago
 * (NSM_MAX_TOKEN_LIFETIME=-1m) is refused by its nsmgr — `nsm logs deployments/nsc-kernel -n
 * ns-opa` shows `PermissionDenied desc = no sufficient privileges` and it has no interface —
 * while a normal client of the same service connects and pings the endpoint. Every process got
 * its identity from the identity provider.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { linksOf, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-opa";
const EXAMPLE = join(REPO, "examples", "opa");
const skip = skipReason();

describe("examples/opa on the local runtime", { skip, timeout: 120_000 }, () => {
  let rt: TestRuntime;
  let up: string;

  before(async () => {
    rt = testRuntime("opa");
    up = await rt.ok("up");
    await rt.ok("apply", "-f", EXAMPLE);
  });
  after(() => rt?.cleanup());

  it("nsm up starts the identity provider and says mTLS is on, with the trust domain", () => {
    assert.match(up, /identity provider ready: trust domain nsm\.local, SPIFFE Workload API on unix:\/\/.*agent\.sock/);
    assert.match(up, /security: mTLS on every hop with X\.509-SVIDs of trust domain nsm\.local/);
  });

  it("the client with expired tokens is refused: PermissionDenied, no sufficient privileges; no interface", async () => {
    let logs = "";
    for (let i = 0; i < 50 && !logs.includes("PermissionDenied desc = no sufficient privileges"); i++) {
      await new Promise((r) => setTimeout(r, 200));
      logs = await rt.ok("logs", "deployments/nsc-kernel", "-n", NS);
    }
    assert.match(logs, /PermissionDenied desc = no sufficient privileges/);
    assert.doesNotMatch(logs, /connection established/);
    const nsmgr = await rt.ok("logs", "nsmgr-node-1", "-n", "nsm-system");
    assert.match(nsmgr, /policy failed .*policy=etc\/nsm\/opa\/common\/tokens_expired\.rego/);
    const pod = rows(await rt.ok("get", "pods", "-n", NS)).find((r) => r[1]!.startsWith("nsc-kernel-"))![1]!;
    assert.deepEqual(linksOf(podNetns(rt, NS, pod)), [], "the refused client has an interface");
  });

  it("a normal client of the same service connects and pings the endpoint", async () => {
    const dir = join(rt.dir, "..", "manifests");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "client.yaml");
    writeFileSync(
      file,
      [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  name: alpine",
        `  namespace: ${NS}`,
        "  labels: {app: alpine}",
        "  annotations: {networkservicemesh.io: kernel://opa/nsm-1}",
        "spec:",
        "  containers: [{name: alpine, image: alpine:3.15.0}]",
        "  affinity:",
        "    podAffinity:",
        "      requiredDuringSchedulingIgnoredDuringExecution:",
        "        - topologyKey: kubernetes.io/hostname",
        "          labelSelector: {matchLabels: {app: nse-kernel}}",
      ].join("\n"),
    );
    const out = await rt.ok("apply", "-f", file);
    assert.match(out, /pod ns-opa\/alpine running on node-1, connected kernel:\/\/opa\/nsm-1/);
    const r = await rt.nsm("exec", "alpine", "-n", NS, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "172.16.1.100");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const conns = rows(await rt.ok("get", "connections"));
    assert.deepEqual(
      conns.map((c) => c[1]),
      ["alpine-0"],
    );
  });

  it("every process got its SVID from the identity provider, by pod or component", () => {
    const log = (name: string) => readFileSync(join(rt.dir, "logs", name), "utf8");
    const svid = (text: string) => /"spiffeId":"([^"]+)","msg":"X\.509-SVID obtained"/.exec(text)?.[1];
    assert.equal(svid(log("registry.log")), "spiffe://nsm.local/ns/nsm-system/component/registry");
    assert.equal(svid(log("node-1-nsmgr.log")), "spiffe://nsm.local/ns/nsm-system/component/nsmgr-node-1");
    assert.equal(svid(log("node-1-forwarder.log")), "spiffe://nsm.local/ns/nsm-system/component/forwarder-node-1");
    assert.equal(svid(log(`${NS}_alpine_cmd-nsc.log`)), "spiffe://nsm.local/ns/ns-opa/pod/alpine");
    assert.match(log("identity-provider.log"), /SPIFFE Workload API serving/);
  });
});
