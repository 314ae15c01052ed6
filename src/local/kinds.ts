// SPDX-License-Identifier: Apache-2.0
/**
 * The kinds the local runtime stores without running anything for them: ConfigMaps and Secrets
 * (their data feeds pods' env and volumes), and the kinds upstream manifests carry that have no
 * meaning here (Service, ServiceAccount, RBAC, StatefulSet, CRDs, webhooks…): `apply` stores
 * them, `get` shows them, `delete` forgets them. A kind defined by a CustomResourceDefinition
 * (applied before or in the same invocation) is stored the same way. Pure.
 */

/** One stored kind: its Kind, the plural `get` uses, and the other names kubectl accepts. */
export interface StoredKind {
  readonly kind: string;
  readonly plural: string;
  readonly aliases: readonly string[];
  /** API group ("" for core), for `-o name` (`configmap/x`, `role.rbac.authorization.k8s.io/x`). */
  readonly group: string;
  readonly clusterScoped: boolean;
}

function k(kind: string, group: string, aliases: string[] = [], clusterScoped = false): StoredKind {
  const plural = kind.endsWith("s") ? `${kind.toLowerCase()}es` : `${kind.toLowerCase()}s`;
  return { kind, plural: kind === "Endpoints" ? "endpoints" : plural, aliases, group, clusterScoped };
}

/** The built-in stored kinds. */
export const BUILTIN_STORED_KINDS: readonly StoredKind[] = [
  k("ConfigMap", "", ["cm"]),
  k("Secret", ""),
  k("Service", "", ["svc"]),
  k("ServiceAccount", "", ["sa"]),
  k("Endpoints", "", ["ep"]),
  k("PersistentVolumeClaim", "", ["pvc"]),
  k("PersistentVolume", "", ["pv"], true),
  k("Role", "rbac.authorization.k8s.io"),
  k("RoleBinding", "rbac.authorization.k8s.io"),
  k("ClusterRole", "rbac.authorization.k8s.io", [], true),
  k("ClusterRoleBinding", "rbac.authorization.k8s.io", [], true),
  k("StatefulSet", "apps", ["sts"]),
  k("ReplicaSet", "apps", ["rs"]),
  k("Job", "batch"),
  k("CronJob", "batch", ["cj"]),
  k("NetworkPolicy", "networking.k8s.io", ["netpol"]),
  k("Ingress", "networking.k8s.io", ["ing"]),
  k("PodDisruptionBudget", "policy", ["pdb"]),
  k("HorizontalPodAutoscaler", "autoscaling", ["hpa"]),
  k("PriorityClass", "scheduling.k8s.io", ["pc"], true),
  k("StorageClass", "storage.k8s.io", ["sc"], true),
  k("CustomResourceDefinition", "apiextensions.k8s.io", ["crd", "crds"], true),
  k("MutatingWebhookConfiguration", "admissionregistration.k8s.io", [], true),
  k("ValidatingWebhookConfiguration", "admissionregistration.k8s.io", [], true),
];

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The kind a CustomResourceDefinition body defines, if it is well formed. */
export function crdKind(body: Json): StoredKind | undefined {
  const spec = isObject(body.spec) ? body.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  if (typeof names.kind !== "string" || typeof names.plural !== "string") return undefined;
  const aliases = [
    ...(typeof names.singular === "string" ? [names.singular] : []),
    ...(Array.isArray(names.shortNames) ? names.shortNames.filter((s): s is string => typeof s === "string") : []),
  ];
  return {
    kind: names.kind,
    plural: names.plural,
    aliases,
    group: typeof spec.group === "string" ? spec.group : "",
    clusterScoped: spec.scope === "Cluster",
  };
}

/** The stored kind named `kind` (a Kind as in manifests), among the built-ins and `crds`. */
export function storedKindOf(kind: string, crds: readonly StoredKind[] = []): StoredKind | undefined {
  return [...BUILTIN_STORED_KINDS, ...crds].find((s) => s.kind === kind);
}

/** The stored kind a `get`/`delete` word names (plural, singular, alias, or `plural.group`). */
export function storedKindByWord(word: string, crds: readonly StoredKind[] = []): StoredKind | undefined {
  const w = word.toLowerCase();
  return [...BUILTIN_STORED_KINDS, ...crds].find(
    (s) =>
      s.plural === w ||
      s.kind.toLowerCase() === w ||
      s.aliases.includes(w) ||
      (s.group !== "" && (w === `${s.plural}.${s.group}` || w === `${s.kind.toLowerCase()}.${s.group}`)),
  );
}

/** The name kubectl prints for `-o name` and after apply: `configmap`, `role.rbac.authorization.k8s.io`. */
export function resourceName(s: StoredKind): string {
  const singular = s.kind.toLowerCase();
  return s.group ? `${singular}.${s.group}` : singular;
}
