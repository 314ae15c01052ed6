// SPDX-License-Identifier: Apache-2.0
// The admission webhook without an apiserver: the review (patch contents, namespace fallback,
// workloads, idempotence, bad NSURLs) and its HTTPS server (400 for what is not an
// AdmissionReview, /ready, a patched review over TLS with the generated certificate).
import assert from "node:assert/strict";
import { request } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { injectionConfig } from "../../src/cmd/admission-webhook.js";
import { Env } from "../../src/cmd/env.js";
import { type AdmissionRequest, reviewAdmission } from "../../src/k8s/webhook/review.js";
import { selfSignedCertificate, webhookServer } from "../../src/k8s/webhook/server.js";
import { silentLogger } from "../../src/sdk/core/logger.js";

const config = injectionConfig(
  new Env({
    NSM_INIT_CONTAINER_IMAGES: "ghcr.io/networkservicemesh/cmd-nsc-init:v1.14.0",
    NSM_CONTAINER_IMAGES: "ghcr.io/networkservicemesh/cmd-nsc:v1.14.0",
    NSM_LABELS: "spiffe.io/spiffe-id:true",
    NSM_ENVS: "NSM_LOG_LEVEL=DEBUG",
  }),
);
const noNamespace = async () => undefined;

/** Applies the `add` operations of a JSON patch (all the webhook emits). */
export function applyPatch(doc: unknown, patchB64: string): any {
  const out = structuredClone(doc) as any;
  for (const op of JSON.parse(Buffer.from(patchB64, "base64").toString()) as {
    op: string;
    path: string;
    value: unknown;
  }[]) {
    assert.equal(op.op, "add");
    const keys = op.path.split("/").slice(1);
    let at = out;
    for (const k of keys.slice(0, -1)) at = at[k] ??= {};
    at[keys.at(-1)!] = op.value;
  }
  return out;
}

const pod = (annotations: Record<string, string> = {}) => ({
  metadata: { name: "p", namespace: "ns1", annotations, labels: { app: "a" } },
  spec: { containers: [{ name: "app", image: "alpine" }] },
});
const review = (kind: string, object: unknown, operation = "CREATE"): AdmissionRequest => ({
  uid: "u-1",
  kind: { kind },
  namespace: "ns1",
  operation,
  object,
});

describe("admission review", () => {
  it("injects nsc-init, the nsc sidecar, the socket volumes and mounts, the labels and NSM_NETWORK_SERVICES", async () => {
    const obj = pod({ "networkservicemesh.io": "kernel://icmp-responder/nsm-1" });
    const resp = await reviewAdmission(review("Pod", obj), config, noNamespace);
    assert.equal(resp.allowed, true);
    assert.equal(resp.patchType, "JSONPatch");
    const out = applyPatch(obj, resp.patch!);
    assert.deepEqual(
      out.spec.containers.map((c: { name: string }) => c.name),
      ["app", "cmd-nsc"],
    );
    assert.deepEqual(
      out.spec.initContainers.map((c: { name: string }) => c.name),
      ["cmd-nsc-init"],
    );
    const sidecar = out.spec.containers[1];
    const env = Object.fromEntries(sidecar.env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    assert.equal(env.NSM_NETWORK_SERVICES, "kernel://icmp-responder/nsm-1");
    assert.equal(env.NSM_LOG_LEVEL, "DEBUG");
    assert.equal(env.SPIFFE_ENDPOINT_SOCKET, "unix:///run/spire/sockets/agent.sock");
    assert.deepEqual(
      sidecar.volumeMounts.map((m: { mountPath: string }) => m.mountPath),
      ["/run/spire/sockets", "/var/lib/networkservicemesh"],
    );
    assert.deepEqual(
      out.spec.volumes.map((v: { name: string; hostPath: { path: string } }) => `${v.name}=${v.hostPath.path}`),
      ["spire-agent-socket=/run/spire/sockets", "nsm-socket=/var/lib/networkservicemesh"],
    );
    assert.deepEqual(out.metadata.labels, { app: "a", "spiffe.io/spiffe-id": "true" });
    assert.deepEqual(sidecar.resources.limits, { memory: "80Mi", cpu: "200m" });
  });

  it("leaves an already injected pod, a pod without annotation, and non-CREATE operations alone", async () => {
    const obj = pod({ "networkservicemesh.io": "kernel://svc/nsm-1" });
    const injected = applyPatch(obj, (await reviewAdmission(review("Pod", obj), config, noNamespace)).patch!);
    const again = await reviewAdmission(review("Pod", injected), config, noNamespace);
    assert.deepEqual(again, { uid: "u-1", allowed: true });
    assert.deepEqual(await reviewAdmission(review("Pod", pod()), config, noNamespace), { uid: "u-1", allowed: true });
    assert.deepEqual(await reviewAdmission(review("Pod", obj, "UPDATE"), config, noNamespace), {
      uid: "u-1",
      allowed: true,
    });
  });

  it("uses the namespace annotation for a pod without its own", async () => {
    const asked: string[] = [];
    const lookup = async (ns: string) => {
      asked.push(ns);
      return { "networkservicemesh.io": "kernel://from-ns/nsm-1" };
    };
    const resp = await reviewAdmission(review("Pod", pod()), config, lookup);
    assert.deepEqual(asked, ["ns1"]);
    const out = applyPatch(pod(), resp.patch!);
    assert.ok(JSON.stringify(out.spec.containers[1].env).includes("kernel://from-ns/nsm-1"));
  });

  it("patches the pod template of a Deployment under /spec/template", async () => {
    const deploy = {
      metadata: { name: "d", annotations: { "networkservicemesh.io": "kernel://svc/nsm-1" } },
      spec: { template: { metadata: { labels: { app: "d" } }, spec: { containers: [{ name: "app", image: "x" }] } } },
    };
    const resp = await reviewAdmission(review("Deployment", deploy), config, noNamespace);
    const out = applyPatch(deploy, resp.patch!);
    assert.equal(out.spec.template.spec.containers.length, 2);
    assert.equal(out.spec.template.metadata.labels["spiffe.io/spiffe-id"], "true");
    assert.equal(out.spec.containers, undefined);
  });

  it("patches the templates of StatefulSets, DaemonSets and Jobs, and leaves a Deployment's ReplicaSet to it", async () => {
    for (const kind of ["StatefulSet", "DaemonSet", "Job"]) {
      const obj = {
        metadata: { name: "w", annotations: { "networkservicemesh.io": "kernel://svc/nsm-1" } },
        spec: { template: { metadata: { labels: { app: "w" } }, spec: { containers: [{ name: "app", image: "x" }] } } },
      };
      const resp = await reviewAdmission(review(kind, obj), config, noNamespace);
      assert.equal(applyPatch(obj, resp.patch!).spec.template.spec.containers.length, 2, kind);
    }
    const rs = {
      metadata: { name: "rs", ownerReferences: [{ kind: "Deployment" }] },
      spec: {
        template: {
          metadata: { annotations: { "networkservicemesh.io": "kernel://svc/nsm-1" } },
          spec: { containers: [{ name: "app", image: "x" }] },
        },
      },
    };
    assert.deepEqual(await reviewAdmission(review("ReplicaSet", rs), config, noNamespace), {
      uid: "u-1",
      allowed: true,
    });
  });

  it("runs our single image as nsm nsc --init and nsm nsc, named nsc-init and nsc", async () => {
    const single = injectionConfig(
      new Env({ NSM_INIT_CONTAINER_IMAGES: "nsm-ts/nsm:0.1.0", NSM_CONTAINER_IMAGES: "nsm-ts/nsm:0.1.0" }),
    );
    const obj = pod({ "networkservicemesh.io": "kernel://svc/nsm-1" });
    const out = applyPatch(obj, (await reviewAdmission(review("Pod", obj), single, noNamespace)).patch!);
    assert.deepEqual(out.spec.initContainers[0].command, ["nsm", "nsc", "--init"]);
    assert.equal(out.spec.initContainers[0].name, "nsc-init");
    assert.deepEqual(out.spec.containers[1].command, ["nsm", "nsc"]);
    assert.equal(out.spec.containers[1].name, "nsc");
    assert.equal(out.spec.containers[0].command, undefined);
    const again = await reviewAdmission(review("Pod", out), single, noNamespace);
    assert.equal(again.patch, undefined);
  });

  it("denies a malformed annotation with a message naming the bad NSURL", async () => {
    const obj = pod({ "networkservicemesh.io": "kernel://good/nsm-1,://broken" });
    const resp = await reviewAdmission(review("Pod", obj), config, noNamespace);
    assert.equal(resp.allowed, false);
    assert.match(resp.status!.message, /":\/\/broken"/);
    assert.equal(resp.patch, undefined);
    const noService = await reviewAdmission(
      review("Pod", pod({ "networkservicemesh.io": "kernel:///nsm-1" })),
      config,
      noNamespace,
    );
    assert.match(noService.status!.message, /no network service/);
  });
});

describe("admission webhook HTTPS server", () => {
  let port = 0;
  let ca = "";
  let server: ReturnType<typeof webhookServer>;
  before(async () => {
    const certificate = await selfSignedCertificate("test", ["localhost", "127.0.0.1"]);
    ca = certificate.caBundlePem;
    server = webhookServer({ config, certificate, namespaceAnnotations: noNamespace, log: silentLogger });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const call = (method: string, path: string, body?: string) =>
    new Promise<{ code: number; body: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, method, path, ca, servername: "localhost" }, (res) => {
        let data = "";
        res.on("data", (d) => {
          data += d;
        });
        res.on("end", () => resolve({ code: res.statusCode ?? 0, body: data }));
      });
      req.on("error", reject);
      req.end(body);
    });

  it("answers /ready, rejects what is not an AdmissionReview with 400, and reviews one", async () => {
    assert.equal((await call("GET", "/ready")).code, 200);
    const notJson = await call("POST", "/mutate", "hello");
    assert.equal(notJson.code, 400);
    assert.match(notJson.body, /not JSON/);
    const notReview = await call("POST", "/mutate", JSON.stringify({ kind: "Pod", apiVersion: "v1" }));
    assert.equal(notReview.code, 400);
    assert.match(notReview.body, /not an AdmissionReview/);
    const noRequest = await call(
      "POST",
      "/mutate",
      JSON.stringify({ kind: "AdmissionReview", apiVersion: "admission.k8s.io/v1" }),
    );
    assert.equal(noRequest.code, 400);
    const obj = pod({ "networkservicemesh.io": "kernel://svc/nsm-1" });
    const ok = await call(
      "POST",
      "/mutate",
      JSON.stringify({ kind: "AdmissionReview", apiVersion: "admission.k8s.io/v1", request: review("Pod", obj) }),
    );
    assert.equal(ok.code, 200);
    const parsed = JSON.parse(ok.body);
    assert.equal(parsed.kind, "AdmissionReview");
    assert.equal(parsed.response.uid, "u-1");
    assert.equal(parsed.response.allowed, true);
    assert.equal(applyPatch(obj, parsed.response.patch).spec.containers.length, 2);
  });
});

describe("nsm admission-webhook in spire mode", () => {
  it("serves the workload's SPIFFE X.509 SVID from SPIFFE_ENDPOINT_SOCKET", async () => {
    const { createCa, serveWorkloadApi } = await import("../../src/security/index.js");
    const { spawnNsm } = await import("./registry-cmd.js");
    const { freePort } = await import("./registry-etcd.js");
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "nsm-webhook-"));
    const ca = await createCa({ trustDomain: "k8s.nsm" });
    const id = "spiffe://k8s.nsm/ns/nsm-system/sa/admission-webhook-sa";
    const api = await serveWorkloadApi({ ca, socket: join(dir, "agent.sock"), resolveIdentity: () => id });
    const port = await freePort();
    const { writeFileSync } = await import("node:fs");
    writeFileSync(
      join(dir, "kubeconfig"),
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]",
        "users: [{name: u, user: {}}]",
        "contexts: [{name: x, context: {cluster: c, user: u}}]",
        "current-context: x",
      ].join("\n"),
    );
    const proc = spawnNsm(["admission-webhook"], {
      SPIFFE_ENDPOINT_SOCKET: api.endpoint,
      NSM_WEBHOOK_MODE: "spire",
      NSM_LISTEN_ON: `tcp://127.0.0.1:${port}`,
      KUBECONFIG: join(dir, "kubeconfig"), // an unreachable cluster: this test makes no namespace lookups
    });
    try {
      const peer = await (async () => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          try {
            return await new Promise<string>((resolve, reject) => {
              const req = request(
                {
                  host: "127.0.0.1",
                  port,
                  path: "/ready",
                  ca: ca.export().certificatePem,
                  checkServerIdentity: () => undefined,
                },
                (res) => {
                  const cert = (res.socket as import("node:tls").TLSSocket).getPeerCertificate();
                  res.resume();
                  resolve(`${res.statusCode} ${cert.subjectaltname}`);
                },
              );
              req.on("error", reject);
              req.end();
            });
          } catch (err) {
            if (Date.now() > deadline || proc.child.exitCode !== null)
              throw new Error(`${String(err)}: ${proc.output()}`);
            await new Promise((r) => setTimeout(r, 300));
          }
        }
      })();
      assert.equal(peer, `200 URI:${id}`);
    } finally {
      await proc.stop();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
