// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm admission-webhook`: injects the NSM client into annotated pods (upstream
 * cmd-admission-webhook-k8s; the review is src/k8s/webhook/review.ts).
 * Env (upstream's names and defaults): NSM_NAME (admission-webhook-k8s: the
 * MutatingWebhookConfiguration's name), NSM_SERVICE_NAME (default), NSM_NAMESPACE (default),
 * NSM_ANNOTATION (networkservicemesh.io), NSM_LABELS (`k:v,k2:v2`), NSM_NSURL_ENV_NAME
 * (NSM_NETWORK_SERVICES), NSM_INIT_CONTAINER_IMAGES, NSM_CONTAINER_IMAGES (comma-separated),
 * NSM_ENVS (`K=V,K2=V2`), NSM_WEBHOOK_MODE (spire | selfregister: register the
 * MutatingWebhookConfiguration with our caBundle at start and delete it at exit),
 * NSM_CERT_FILE_PATH + NSM_KEY_FILE_PATH (serving certificate; without them the SPIFFE SVID in
 * spire mode with SPIFFE_ENDPOINT_SOCKET, else a generated self-signed one), NSM_CA_BUNDLE_FILE_PATH (the caBundle to register with file certificates),
 * NSM_SIDECAR_LIMITS_MEMORY (80Mi), NSM_SIDECAR_LIMITS_CPU (200m), NSM_SIDECAR_REQUESTS_MEMORY
 * (40Mi), NSM_SIDECAR_REQUESTS_CPU (100m), NSM_LOG_LEVEL, KUBECONFIG (else in-cluster).
 * Ours: NSM_LISTEN_ON (`tcp://host:port`, default tcp://:443), NSM_WEBHOOK_URL (register this
 * https URL instead of the Service, for a webhook outside the cluster), NSM_INIT_CONTAINER_COMMAND
 * and NSM_CONTAINER_COMMAND (space-separated command of the injected containers; default: the
 * image's entrypoint, or `nsm nsc --init` / `nsm nsc` for our single image `.../nsm:TAG`).
 */
import { readFileSync } from "node:fs";
import type { InjectionConfig } from "../k8s/webhook/review.js";
import type { ServingCertificate } from "../k8s/webhook/server.js";
import type { Logger } from "../sdk/core/logger.js";
import { ConfigError, Env } from "./env.js";
import { roleLogger, untilSignal } from "./serve.js";

function pairs(env: Env, name: string, sep: string): { name: string; value: string }[] {
  return env.list(name).map((kv) => {
    const i = kv.indexOf(sep);
    if (i <= 0) throw new ConfigError(name, kv, `expected key${sep}value`);
    return { name: kv.slice(0, i).trim(), value: kv.slice(i + 1).trim() };
  });
}

const words = (v: string | undefined) => (v ?? "").split(/\s+/).filter((w) => w !== "");

export function injectionConfig(env: Env): InjectionConfig {
  return {
    annotation: env.string("NSM_ANNOTATION", "networkservicemesh.io"),
    initContainerImages: env.list("NSM_INIT_CONTAINER_IMAGES"),
    containerImages: env.list("NSM_CONTAINER_IMAGES"),
    labels: Object.fromEntries(pairs(env, "NSM_LABELS", ":").map((p) => [p.name, p.value])),
    envs: pairs(env, "NSM_ENVS", "="),
    nsurlEnvName: env.string("NSM_NSURL_ENV_NAME", "NSM_NETWORK_SERVICES"),
    initContainerCommand: words(env.raw("NSM_INIT_CONTAINER_COMMAND")),
    containerCommand: words(env.raw("NSM_CONTAINER_COMMAND")),
    sidecarResources: {
      limits: {
        memory: env.string("NSM_SIDECAR_LIMITS_MEMORY", "80Mi"),
        cpu: env.string("NSM_SIDECAR_LIMITS_CPU", "200m"),
      },
      requests: {
        memory: env.string("NSM_SIDECAR_REQUESTS_MEMORY", "40Mi"),
        cpu: env.string("NSM_SIDECAR_REQUESTS_CPU", "100m"),
      },
    },
  };
}

function listenAddress(env: Env): { host: string; port: number } {
  const raw = env.string("NSM_LISTEN_ON", "tcp://:443");
  const m = /^(?:tcp:\/\/)?(\[[^\]]*\]|[^:/]*):(\d+)$/.exec(raw);
  if (!m) throw new ConfigError("NSM_LISTEN_ON", raw, "expected tcp://host:port");
  return { host: m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0", port: Number(m[2]) };
}

interface CertificateSource {
  readonly initial: ServingCertificate;
  /** Calls `update` with every renewed certificate (SPIFFE SVID rotation). */
  follow(update: (cert: ServingCertificate) => void): void;
  close(): void;
}

/**
 * The serving certificate: from NSM_CERT_FILE_PATH/NSM_KEY_FILE_PATH when set; in `spire` mode
 * with SPIFFE_ENDPOINT_SOCKET, the workload's X.509 SVID from the Workload API, renewed as it
 * rotates (SPIRE gives it the Service's DNS name, upstream's spiffe-dns-webhook label, and the
 * caBundle is the trust bundle); otherwise a generated self-signed one.
 */
async function servingCertificate(env: Env, mode: string, names: string[], log: Logger): Promise<CertificateSource> {
  const fixed = (initial: ServingCertificate): CertificateSource => ({ initial, follow: () => {}, close: () => {} });
  const certFile = env.raw("NSM_CERT_FILE_PATH");
  const keyFile = env.raw("NSM_KEY_FILE_PATH");
  if (certFile && keyFile) {
    const certPem = readFileSync(certFile, "utf8");
    const caFile = env.raw("NSM_CA_BUNDLE_FILE_PATH");
    const caBundlePem = caFile ? readFileSync(caFile, "utf8") : certPem;
    return fixed({ certPem, keyPem: readFileSync(keyFile, "utf8"), caBundlePem });
  }
  const socket = env.raw("SPIFFE_ENDPOINT_SOCKET");
  if (mode === "spire" && socket) {
    const { createSecurity } = await import("../security/index.js");
    const sec = await createSecurity({ socket, log });
    const source = sec.source!;
    const of = (s: ReturnType<typeof source.current>): ServingCertificate => ({
      certPem: s.svid.certificatesPem,
      keyPem: s.svid.privateKeyPem,
      caBundlePem: s.bundle.pem,
    });
    log.info({ spiffeId: source.current().svid.spiffeId }, "serving the SPIFFE X.509 SVID");
    return {
      initial: of(source.current()),
      follow: (update) => {
        source.subscribe((s) => update(of(s)));
      },
      close: () => sec.close(),
    };
  }
  const { selfSignedCertificate } = await import("../k8s/webhook/server.js");
  log.info({ names }, "generated a self-signed serving certificate");
  return fixed(await selfSignedCertificate(`networkservicemesh.${names[0]}-ca`, names));
}

export async function runAdmissionWebhook(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const log = roleLogger(env, "admission-webhook");
  const config = injectionConfig(env);
  const name = env.string("NSM_NAME", "admission-webhook-k8s");
  const service = {
    name: env.string("NSM_SERVICE_NAME", "default"),
    namespace: env.string("NSM_NAMESPACE", "default"),
  };
  const mode = env.string("NSM_WEBHOOK_MODE", "spire").toLowerCase();
  if (mode !== "spire" && mode !== "selfregister")
    throw new ConfigError("NSM_WEBHOOK_MODE", mode, "want spire or selfregister");
  const url = env.raw("NSM_WEBHOOK_URL");
  const { host, port } = listenAddress(env);
  const names = [`${service.name}.${service.namespace}`, `${service.name}.${service.namespace}.svc`];
  if (url) names.push(new URL(url).hostname.replace(/^\[|\]$/g, ""));
  const certificates = await servingCertificate(env, mode, names, log);
  const certificate = certificates.initial;

  const { KubeConfig } = await import("@kubernetes/client-node");
  const { apiNamespaceAnnotations, registerWebhook, unregisterWebhook } = await import("../k8s/webhook/register.js");
  const { webhookServer } = await import("../k8s/webhook/server.js");
  const kc = new KubeConfig();
  const kubeconfig = env.raw("KUBECONFIG");
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();

  const server = webhookServer({ config, certificate, namespaceAnnotations: apiNamespaceAnnotations(kc), log });
  certificates.follow((c) => server.setSecureContext({ cert: c.certPem, key: c.keyPem, minVersion: "TLSv1.2" }));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  log.info({ host, port, mode, annotation: config.annotation }, "admission webhook serving");
  if (mode === "selfregister") {
    await registerWebhook(kc, { name, caBundlePem: certificate.caBundlePem, ...(url ? { url } : { service }) });
    log.info({ name, url }, "MutatingWebhookConfiguration registered");
  }
  await untilSignal();
  if (mode === "selfregister") {
    await unregisterWebhook(kc, name).catch((err: unknown) => log.warn({ err: String(err) }, "unregister failed"));
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  certificates.close();
  log.info("admission webhook stopped");
  return 0;
}
