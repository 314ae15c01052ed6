// SPDX-License-Identifier: Apache-2.0
/**
 * Kubernetes side of the admission webhook: the namespace-annotation lookup, and registering
 * the MutatingWebhookConfiguration with the webhook's caBundle (upstream's `selfregister`
 * mode). The configuration covers Pods and the workload kinds on CREATE, excludes the
 * namespaces kube-system, spire and nsm-system (as upstream's), and has failurePolicy Fail. It
 * points at the Service `<service>.<namespace>` path /mutate, or at a URL (for a webhook that
 * runs outside the cluster, as in tests). Registering replaces an existing configuration of
 * the same name (409 conflicts retried); unregistering deletes it.
 */
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { NamespaceAnnotations } from "./review.js";

export interface WebhookRegistration {
  /** The MutatingWebhookConfiguration's name (upstream NSM_NAME, `admission-webhook-k8s`). */
  readonly name: string;
  readonly caBundlePem: string;
  /** The Service the apiserver calls (`{namespace, name}`), unless `url` is set. */
  readonly service?: { readonly namespace: string; readonly name: string; readonly port?: number };
  /** An https URL ending in /mutate, used instead of `service`. */
  readonly url?: string;
}

export const EXCLUDED_NAMESPACES = ["kube-system", "spire", "nsm-system"];

function webhookConfiguration(reg: WebhookRegistration) {
  const clientConfig = reg.url
    ? { url: reg.url, caBundle: Buffer.from(reg.caBundlePem).toString("base64") }
    : {
        service: { ...reg.service!, path: "/mutate" },
        caBundle: Buffer.from(reg.caBundlePem).toString("base64"),
      };
  const rule = (apiGroups: string[], resources: string[]) => ({
    apiGroups,
    apiVersions: ["v1"],
    operations: ["CREATE"],
    resources,
    scope: "Namespaced",
  });
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: reg.name },
    webhooks: [
      {
        name: `${reg.name}.networkservicemesh.io`,
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Fail",
        timeoutSeconds: 10,
        clientConfig,
        namespaceSelector: {
          matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: EXCLUDED_NAMESPACES }],
        },
        rules: [
          rule([""], ["pods"]),
          rule(["apps"], ["deployments", "statefulsets", "daemonsets", "replicasets"]),
          rule(["batch"], ["jobs"]),
        ],
      },
    ],
  };
}

const codeOf = (err: unknown) => (err instanceof ApiException ? err.code : undefined);

/** Creates or replaces the MutatingWebhookConfiguration. */
export async function registerWebhook(kc: KubeConfig, reg: WebhookRegistration): Promise<void> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const body = webhookConfiguration(reg);
  for (let attempt = 0; ; attempt++) {
    try {
      await api.createMutatingWebhookConfiguration({ body });
      return;
    } catch (err) {
      if (codeOf(err) !== 409 || attempt >= 5) throw err;
    }
    try {
      const cur = await api.readMutatingWebhookConfiguration({ name: reg.name });
      const replaced = { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } };
      await api.replaceMutatingWebhookConfiguration({ name: reg.name, body: replaced });
      return;
    } catch (err) {
      if ((codeOf(err) !== 409 && codeOf(err) !== 404) || attempt >= 5) throw err;
    }
  }
}

/** Deletes the MutatingWebhookConfiguration (a missing one is fine). */
export async function unregisterWebhook(kc: KubeConfig, name: string): Promise<void> {
  try {
    await kc.makeApiClient(AdmissionregistrationV1Api).deleteMutatingWebhookConfiguration({ name });
  } catch (err) {
    if (codeOf(err) !== 404) throw err;
  }
}

/** Reads namespace annotations through the apiserver (1 s timeout; undefined on failure). */
export function apiNamespaceAnnotations(kc: KubeConfig): NamespaceAnnotations {
  const api = kc.makeApiClient(CoreV1Api);
  return async (namespace) => {
    try {
      const ns = await Promise.race([
        api.readNamespace({ name: namespace }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), 1000).unref()),
      ]);
      return ns.metadata?.annotations ?? {};
    } catch {
      return undefined;
    }
  };
}
