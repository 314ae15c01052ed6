// SPDX-License-Identifier: Apache-2.0
/**
 * The planner: from checked manifests and the runtime's current state to the list of actions
 * that `apply` (or `delete`) performs, in order. Pure: it reads the state, never changes it, and
 * does no I/O (command lookup, randomness and the clock come in through a {@link Host}); every
 * problem (an unknown namespace, a changed Pod, a pod that cannot be placed, a container that
 * cannot run here) is a LocalError before anything changes.
 *
 * An apply plan is: namespaces, NetworkServices, pods to delete (a Deployment's template changed
 * or it has too many replicas), the Deployments and Pods as they will be reported, then the new
 * pods in two batches: those without the client annotation (endpoints) first, then clients.
 */
import { toJson } from "@bufbuild/protobuf";
import { type NetworkService, NetworkServiceSchema } from "../api/gen/registry_pb.js";
import type { LocalConfig } from "./config.js";
import { LocalError } from "./errors.js";
import { excludedPrefixesOf, isExcludedPrefixesConfig } from "./excluded-prefixes-config.js";
import type { Host } from "./host.js";
import {
  describe,
  type Manifest,
  type NamespaceManifest,
  type NetworkServiceManifest,
  ownerKey,
  type StoredManifest,
  type WorkloadManifest,
} from "./manifest.js";
import { netnsName } from "./netns.js";
import { type ConfigLookup, configData } from "./pod-data.js";
import { nextPodIP, nodeIndex, usedPodIPs } from "./pod-network.js";
import { buildPod, deploymentPodName, hashOf, podNsurls, suffixedPodName } from "./pods.js";
import { type PlacedPod, placePod } from "./schedule.js";
import type { DeploymentState, PodState, RuntimePaths, State } from "./state.js";

export type WorkloadResult = "created" | "configured" | "unchanged";

export type ApplyAction =
  | {
      readonly type: "namespace";
      readonly name: string;
      readonly annotations: Readonly<Record<string, string>>;
      readonly result: "created" | "configured" | "unchanged";
    }
  | {
      readonly type: "networkservice";
      readonly namespace: string;
      readonly name: string;
      readonly record: NetworkService;
      /** The record as proto JSON, as the state keeps it. */
      readonly json: unknown;
      readonly result: "registered" | "configured" | "unchanged";
    }
  | {
      readonly type: "object";
      readonly manifest: StoredManifest;
      readonly result: "created" | "configured" | "unchanged";
    }
  | { readonly type: "delete-pods"; readonly pods: readonly PodState[] }
  | { readonly type: "deployment"; readonly deployment: DeploymentState; readonly result: WorkloadResult }
  | { readonly type: "pod"; readonly name: string; readonly result: WorkloadResult }
  | { readonly type: "start-pods"; readonly pods: readonly PodState[] };

export interface PlanInput {
  readonly paths: RuntimePaths;
  /** The current state (read only). */
  readonly state: State;
  readonly config: LocalConfig;
  /** Identity env of every NSM container (see `securityEnv`). */
  readonly security: Readonly<Record<string, string>>;
  readonly host: Host;
  /** ConfigMaps and Secrets (the state's, with those of this apply). @default the state's */
  readonly configs?: ConfigLookup;
}

/** A pod to create: which workload, its name, and the NSURLs of its injected client. */
interface WantedPod {
  readonly m: WorkloadManifest;
  readonly name: string;
  readonly nsurls?: string;
}

/** What the workloads of one apply decide, before placement. */
interface WorkloadDecisions {
  readonly actions: ApplyAction[];
  readonly remove: Set<PodState>;
  readonly wanted: WantedPod[];
  /** `namespace/name` of every pod, existing or planned. */
  readonly taken: Set<string>;
}

function byKind(manifests: readonly Manifest[]) {
  return {
    namespaces: manifests.filter((m): m is NamespaceManifest => m.kind === "Namespace"),
    services: manifests.filter((m): m is NetworkServiceManifest => m.kind === "NetworkService"),
    workloads: manifests.filter(
      (m): m is WorkloadManifest => m.kind === "Deployment" || m.kind === "Pod" || m.kind === "DaemonSet",
    ),
    stored: manifests.filter((m): m is StoredManifest => m.kind === "Object"),
  };
}

/** The stored object of `state` with this kind, namespace and name. */
export function storedObject(state: State, kind: string, namespace: string, name: string) {
  return (state.objects ?? []).find((o) => o.kind === kind && o.namespace === namespace && o.name === name);
}

function objectAction(state: State, m: StoredManifest): ApplyAction {
  // Checked now, so a bad one changes nothing (./excluded-prefixes-config.ts).
  if (isExcludedPrefixesConfig(m.objectKind, m.namespace, m.name))
    excludedPrefixesOf(m.body, `${m.source}: ConfigMap/${m.name}`);
  const existing = storedObject(state, m.objectKind, m.namespace, m.name);
  const changed = existing && JSON.stringify(existing.body) !== JSON.stringify(m.body);
  const result = !existing ? "created" : changed ? "configured" : "unchanged";
  return { type: "object", manifest: m, result };
}

/** ConfigMaps and Secrets as this apply leaves them: the applied ones over the stored ones. */
function configLookup(state: State, stored: readonly StoredManifest[]): ConfigLookup {
  return (from, namespace, name) => {
    const kind = from === "configMap" ? "ConfigMap" : "Secret";
    const applied = stored.find((m) => m.objectKind === kind && m.namespace === namespace && m.name === name);
    const body = applied?.body ?? storedObject(state, kind, namespace, name)?.body;
    return body ? configData(body) : undefined;
  };
}

function checkNamespacesExist(state: State, namespaces: readonly NamespaceManifest[], objects: readonly Manifest[]) {
  const known = (ns: string) =>
    ns === "default" || namespaces.some((n) => n.name === ns) || state.namespaces.some((n) => n.name === ns);
  for (const m of objects) {
    if (m.kind !== "Namespace" && m.namespace !== "" && !known(m.namespace))
      throw new LocalError(
        `${m.source}: ${describe(m)}: namespace "${m.namespace}" not found (add a Namespace object)`,
      );
  }
}

function namespaceAction(state: State, n: NamespaceManifest): ApplyAction {
  const existing = state.namespaces.find((s) => s.name === n.name);
  const changed = existing && JSON.stringify(existing.annotations) !== JSON.stringify(n.annotations);
  const result = !existing ? "created" : changed ? "configured" : "unchanged";
  return { type: "namespace", name: n.name, annotations: n.annotations, result };
}

function serviceAction(state: State, s: NetworkServiceManifest): ApplyAction {
  const json = toJson(NetworkServiceSchema, s.record);
  const existing = state.networkServices.find((x) => x.name === s.name);
  const changed = existing && JSON.stringify(existing.record) !== JSON.stringify(json);
  const result = !existing ? "registered" : changed ? "configured" : "unchanged";
  return { type: "networkservice", namespace: s.namespace, name: s.name, record: s.record, json, result };
}

/** A Pod: created, or unchanged if it exists with the same spec (pods cannot be changed). */
function decidePod(state: State, m: WorkloadManifest, nsurls: string | undefined, d: WorkloadDecisions): void {
  const existing = state.pods.find((p) => p.namespace === m.namespace && p.name === m.name && !p.owner);
  if (existing) {
    if (existing.specHash !== hashOf([m.labels, m.annotations, m.rawSpec]))
      throw new LocalError(
        `${m.source}: pod/${m.name} exists with a different spec; pods cannot be changed: delete it first`,
      );
    d.actions.push({ type: "pod", name: m.name, result: "unchanged" });
    return;
  }
  if (state.pods.some((p) => p.namespace === m.namespace && p.name === m.name))
    throw new LocalError(`${m.source}: pod/${m.name} already exists (made by a deployment)`);
  d.wanted.push({ m, name: m.name, nsurls });
  d.actions.push({ type: "pod", name: m.name, result: "created" });
}

/**
 * A Deployment: a changed template replaces every pod; otherwise pods are added or the newest
 * removed until there are `replicas`.
 */
function decideDeployment(
  input: PlanInput,
  m: WorkloadManifest,
  nsurls: string | undefined,
  d: WorkloadDecisions,
): void {
  const { state, host } = input;
  const templateHash = hashOf([m.labels, m.annotations, m.rawSpec, nsurls ?? ""]);
  const dep = state.deployments.find((x) => x.namespace === m.namespace && x.name === m.name && !x.kind);
  const owned = state.pods.filter((p) => p.namespace === m.namespace && p.owner === m.name);
  const replaced = dep !== undefined && dep.templateHash !== templateHash;
  const keep = replaced ? [] : owned;
  if (replaced) for (const p of owned) d.remove.add(p);
  const unchanged = dep && !replaced && dep.replicas === m.replicas && owned.length === m.replicas;
  const result = unchanged ? "unchanged" : dep ? "configured" : "created";
  const createdAt = dep?.createdAt ?? new Date(host.now()).toISOString();
  const deployment = {
    namespace: m.namespace,
    name: m.name,
    replicas: m.replicas,
    templateHash,
    createdAt,
    template: m,
  };
  d.actions.push({ type: "deployment", deployment, result });
  const newestFirst = [...keep].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  for (const p of newestFirst.slice(0, Math.max(0, keep.length - m.replicas))) d.remove.add(p);
  for (let i = keep.length; i < m.replicas; i++) {
    const name = deploymentPodName(m.name, templateHash, (n) => d.taken.has(`${m.namespace}/${n}`), host.randomBytes);
    d.taken.add(`${m.namespace}/${name}`);
    d.wanted.push({ m, name, nsurls });
  }
}

/** A DaemonSet: one pod on every node (pinned by nodeName); a changed template replaces them all. */
function decideDaemonSet(input: PlanInput, m: WorkloadManifest, nsurls: string | undefined, d: WorkloadDecisions) {
  const { state, host } = input;
  const templateHash = hashOf([m.labels, m.annotations, m.rawSpec, nsurls ?? ""]);
  const ds = state.deployments.find((x) => x.namespace === m.namespace && x.name === m.name && x.kind === "DaemonSet");
  const owned = state.pods.filter((p) => p.namespace === m.namespace && p.owner === ownerKey(m));
  const replaced = ds !== undefined && ds.templateHash !== templateHash;
  if (replaced) for (const p of owned) d.remove.add(p);
  const keep = replaced ? [] : owned;
  const nodes = state.nodes.map((n) => n.name).filter((n) => !keep.some((p) => p.node === n));
  const result = !ds ? "created" : replaced || nodes.length > 0 ? "configured" : "unchanged";
  const createdAt = ds?.createdAt ?? new Date(host.now()).toISOString();
  const replicas = state.nodes.length;
  const daemonSet = {
    kind: "DaemonSet" as const,
    namespace: m.namespace,
    name: m.name,
    replicas,
    templateHash,
    createdAt,
  };
  d.actions.push({ type: "deployment", deployment: { ...daemonSet, template: m }, result });
  for (const node of nodes) {
    const name = suffixedPodName(m.name, (n) => d.taken.has(`${m.namespace}/${n}`), host.randomBytes);
    d.taken.add(`${m.namespace}/${name}`);
    d.wanted.push({ m: { ...m, spec: { ...m.spec, nodeName: node } }, name, nsurls });
  }
}

function decideWorkloads(
  input: PlanInput,
  namespaces: readonly NamespaceManifest[],
  workloads: readonly WorkloadManifest[],
): WorkloadDecisions {
  const { state } = input;
  const nsAnnotations = (ns: string) =>
    namespaces.find((n) => n.name === ns)?.annotations ?? state.namespaces.find((n) => n.name === ns)?.annotations;
  const d: WorkloadDecisions = {
    actions: [],
    remove: new Set(),
    wanted: [],
    taken: new Set(state.pods.map((p) => `${p.namespace}/${p.name}`)),
  };
  for (const m of workloads) {
    const nsurls = podNsurls(m.annotations, nsAnnotations(m.namespace));
    if (m.kind === "Pod") decidePod(state, m, nsurls, d);
    else if (m.kind === "DaemonSet") decideDaemonSet(input, m, nsurls, d);
    else decideDeployment(input, m, nsurls, d);
  }
  return d;
}

/** Builds the pod for `w` on `nodeName`, with a netns name and an IP no other pod has. */
function buildPlacedPod(
  input: PlanInput,
  w: WantedPod,
  nodeName: string,
  taken: { netns: Set<string>; ips: Set<string> },
): PodState {
  const { paths, state, config } = input;
  const node = state.nodes.find((n) => n.name === nodeName)!;
  const podIP = nextPodIP(nodeIndex(state, nodeName), taken.ips);
  if (podIP) taken.ips.add(podIP);
  let pod = buildPod({
    config: input.configs ?? configLookup(state, []),
    podIP,
    paths,
    manifest: w.m,
    name: w.name,
    node,
    nsurls: w.nsurls,
    hostPath: config.hostPath,
    inherited: config.inherited,
    security: input.security,
    host: input.host,
  });
  if (taken.netns.has(pod.netns)) pod = { ...pod, netns: netnsName(paths.prefix, pod.namespace, pod.name, pod.uid) };
  taken.netns.add(pod.netns);
  return pod;
}

/**
 * Places and builds the wanted pods: endpoints (no client annotation) first, then clients. A pod
 * whose podAffinity names a pod of this same apply (e.g. a client Deployment listed before its
 * endpoint) is placed once the others are: go round until nothing more fits.
 */
function placePods(input: PlanInput, wanted: readonly WantedPod[], removing: ReadonlySet<PodState>): PodState[] {
  const { state } = input;
  const placed: PlacedPod[] = state.pods.filter((p) => !removing.has(p));
  const nodes = state.nodes.map((n) => n.name);
  const taken = { netns: new Set(state.pods.map((p) => p.netns)), ips: usedPodIPs(state) };
  const created: PodState[] = [];
  let pending = [...wanted.filter((w) => !w.nsurls), ...wanted.filter((w) => w.nsurls)];
  while (pending.length > 0) {
    const deferred: WantedPod[] = [];
    let firstError: unknown;
    for (const w of pending) {
      let nodeName: string;
      try {
        nodeName = placePod(
          { namespace: w.m.namespace, name: w.name, labels: w.m.labels, spec: w.m.spec },
          nodes,
          placed,
        );
      } catch (err) {
        firstError ??= err;
        deferred.push(w);
        continue;
      }
      const pod = buildPlacedPod(input, w, nodeName, taken);
      placed.push({ ...pod, affinity: w.m.spec.affinity });
      created.push(pod);
    }
    if (deferred.length === pending.length) throw firstError;
    pending = deferred;
  }
  return created;
}

/** The actions of `nsm apply` for `manifests` (see the module doc for their order). */
export function planApply(planInput: PlanInput, manifests: readonly Manifest[]): ApplyAction[] {
  const { namespaces, services, workloads, stored } = byKind(manifests);
  const input = { ...planInput, configs: configLookup(planInput.state, stored) };
  checkNamespacesExist(input.state, namespaces, [...services, ...stored, ...workloads]);
  const decisions = decideWorkloads(input, namespaces, workloads);
  const created = placePods(input, decisions.wanted, decisions.remove);
  const actions: ApplyAction[] = [
    ...namespaces.map((n) => namespaceAction(input.state, n)),
    ...stored.map((o) => objectAction(input.state, o)),
    ...services.map((s) => serviceAction(input.state, s)),
  ];
  if (decisions.remove.size > 0) actions.push({ type: "delete-pods", pods: [...decisions.remove] });
  actions.push(...decisions.actions);
  const endpoints = created.filter((p) => !p.nsurls);
  const clients = created.filter((p) => p.nsurls);
  if (endpoints.length > 0) actions.push({ type: "start-pods", pods: endpoints });
  if (clients.length > 0) actions.push({ type: "start-pods", pods: clients });
  return actions;
}

/** What `nsm delete` removes, and what it reports. */
export interface DeletePlan {
  /** Pods to stop (clients first, at execution). */
  readonly pods: readonly PodState[];
  /** `namespace/name` of the Deployments to forget. */
  readonly deployments: ReadonlySet<string>;
  /** NetworkServices to unregister. */
  readonly services: ReadonlySet<string>;
  /** Namespaces to forget. */
  readonly namespaces: readonly string[];
  /** Stored objects to forget, as `Kind/namespace/name` (see {@link objectKey}). */
  readonly objects: ReadonlySet<string>;
  /** Lines to report, in order. */
  readonly deleted: readonly string[];
  /** Objects that do not exist (reported, not an error). */
  readonly missing: readonly string[];
}

/** The key of a Deployment (`namespace/name`) or DaemonSet (`namespace/daemonset/name`) in a {@link DeletePlan}. */
export function deploymentKey(namespace: string, name: string, kind?: "DaemonSet"): string {
  return kind ? `${namespace}/daemonset/${name}` : `${namespace}/${name}`;
}

/** The key of a stored object in a {@link DeletePlan}. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

interface DeleteCollector {
  readonly objects: Set<string>;
  readonly pods: Set<PodState>;
  readonly deployments: Set<string>;
  readonly services: Set<string>;
  readonly deleted: string[];
  readonly missing: string[];
}

function deleteNamespace(state: State, name: string, c: DeleteCollector): void {
  for (const p of state.pods.filter((p) => p.namespace === name)) c.pods.add(p);
  for (const d of state.deployments.filter((d) => d.namespace === name))
    c.deployments.add(deploymentKey(d.namespace, d.name, d.kind));
  for (const s of state.networkServices.filter((s) => s.namespace === name)) c.services.add(s.name);
  for (const o of (state.objects ?? []).filter((o) => o.namespace === name))
    c.objects.add(objectKey(o.kind, o.namespace, o.name));
  c.deleted.push(`namespace "${name}" deleted`);
}

function deleteWorkload(state: State, m: WorkloadManifest, c: DeleteCollector): void {
  if (m.kind !== "Pod") {
    const kind = m.kind === "DaemonSet" ? "DaemonSet" : undefined;
    const resource = kind ? "daemonset.apps" : "deployment.apps";
    const key = deploymentKey(m.namespace, m.name, kind);
    if (!state.deployments.some((d) => deploymentKey(d.namespace, d.name, d.kind) === key)) {
      c.missing.push(`${resource}/${m.name}`);
      return;
    }
    c.deployments.add(key);
    for (const p of state.pods.filter((p) => p.namespace === m.namespace && p.owner === ownerKey(m))) c.pods.add(p);
    c.deleted.push(`${resource} "${m.name}" deleted`);
    return;
  }
  const p = state.pods.find((p) => p.namespace === m.namespace && p.name === m.name && !p.owner);
  if (!p) {
    c.missing.push(describe(m));
    return;
  }
  c.pods.add(p);
  c.deleted.push(`pod "${m.name}" deleted`);
}

function deleteStored(state: State, m: StoredManifest, c: DeleteCollector): void {
  if (!storedObject(state, m.objectKind, m.namespace, m.name)) {
    c.missing.push(describe(m));
    return;
  }
  c.objects.add(objectKey(m.objectKind, m.namespace, m.name));
  c.deleted.push(`${m.objectKind.toLowerCase()} "${m.name}" deleted`);
}

/** What `nsm delete` does for `manifests`: their pods, Deployments, NetworkServices and namespaces. */
export function planDelete(state: State, manifests: readonly Manifest[]): DeletePlan {
  const c: DeleteCollector = {
    objects: new Set(),
    pods: new Set(),
    deployments: new Set(),
    services: new Set(),
    deleted: [],
    missing: [],
  };
  for (const m of manifests) {
    if (m.kind === "Object") deleteStored(state, m, c);
    else if (m.kind === "Namespace") {
      if (state.namespaces.some((n) => n.name === m.name)) deleteNamespace(state, m.name, c);
      else c.missing.push(describe(m));
    } else if (m.kind === "NetworkService") {
      if (state.networkServices.some((s) => s.name === m.name)) c.services.add(m.name);
      else c.missing.push(describe(m));
    } else deleteWorkload(state, m, c);
  }
  const namespaces = manifests.filter((m) => m.kind === "Namespace").map((m) => m.name);
  return { ...c, pods: [...c.pods], namespaces };
}
