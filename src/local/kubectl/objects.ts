// SPDX-License-Identifier: Apache-2.0
/**
 * The runtime's state as Kubernetes objects, for `get -o json|yaml|jsonpath|go-template`, label
 * and field selectors and `wait`: Pods (the user's and the runtime's own components as pods of
 * `nsm-system`), Deployments, Namespaces and Nodes. The components carry the labels upstream
 * scripts select on: `app=nsmgr`, `app=forwarder-vpp`, `app=registry`, and `spec.nodeName`.
 * Pure: the liveness of processes comes in through `alive`.
 */
import { BUILTIN_STORED_KINDS, crdKind, resourceName, type StoredKind, storedKindByWord } from "../kinds.js";
import type { ManagedProc, NodeState, PodState, State } from "../state.js";

type Json = Record<string, unknown>;

export const SYSTEM_NAMESPACE = "nsm-system";

/** The kinds the runtime runs something for, as `get` names them. */
export type RunKind = "pods" | "deployments" | "daemonsets" | "namespaces" | "nodes";

/** The kinds `get`, `delete`, `wait`, `label` and `annotate` know, by every name kubectl accepts. */
export const KINDS: Readonly<Record<string, RunKind>> = {
  pods: "pods",
  pod: "pods",
  po: "pods",
  deployments: "deployments",
  deployment: "deployments",
  deploy: "deployments",
  "deployment.apps": "deployments",
  "deployments.apps": "deployments",
  daemonsets: "daemonsets",
  daemonset: "daemonsets",
  ds: "daemonsets",
  "daemonset.apps": "daemonsets",
  "daemonsets.apps": "daemonsets",
  namespaces: "namespaces",
  namespace: "namespaces",
  ns: "namespaces",
  nodes: "nodes",
  node: "nodes",
  no: "nodes",
};

/** A kind as `get` names it: one of {@link RunKind}, or the plural of a stored kind (`configmaps`). */
export type Kind = string;

/** The kinds CustomResourceDefinitions in the state define. */
export function stateCrds(state: State | undefined): StoredKind[] {
  return (state?.objects ?? [])
    .filter((o) => o.kind === "CustomResourceDefinition")
    .map((o) => crdKind(o.body))
    .filter((k): k is StoredKind => k !== undefined);
}

/** The stored kind whose plural is `kind`, if it is one. */
export function storedKindOfPlural(kind: Kind, crds: readonly StoredKind[] = []): StoredKind | undefined {
  return [...BUILTIN_STORED_KINDS, ...crds].find((s) => s.plural === kind);
}

/** The `get` kind a word names (`cm` → `configmaps`), or undefined. */
export function kindByWord(word: string, crds: readonly StoredKind[] = []): Kind | undefined {
  return KINDS[word.toLowerCase()] ?? storedKindByWord(word, crds)?.plural;
}

/** The field paths `--field-selector` accepts, per kind (stored kinds: name and namespace). */
export const FIELD_SELECTORS: Readonly<Record<RunKind, readonly string[]>> = {
  pods: ["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "status.podIP"],
  deployments: ["metadata.name", "metadata.namespace"],
  daemonsets: ["metadata.name", "metadata.namespace"],
  namespaces: ["metadata.name", "status.phase"],
  nodes: ["metadata.name"],
};

/** The field paths `--field-selector` accepts for `kind`. */
export function fieldSelectorsOf(kind: Kind): readonly string[] {
  return FIELD_SELECTORS[kind as RunKind] ?? ["metadata.name", "metadata.namespace"];
}

const RUN_RESOURCE_NAMES: Readonly<Record<RunKind, string>> = {
  pods: "pod",
  deployments: "deployment.apps",
  daemonsets: "daemonset.apps",
  namespaces: "namespace",
  nodes: "node",
};

/** The singular resource name kubectl prints (`pod/x`, `deployment.apps/x`, `configmap/x`). */
export function resourceNameOf(kind: Kind, crds: readonly StoredKind[] = []): string {
  const run = RUN_RESOURCE_NAMES[kind as RunKind];
  if (run) return run;
  const stored = storedKindOfPlural(kind, crds);
  return stored ? resourceName(stored) : kind;
}

/** Whether objects of `kind` have no namespace. */
export function isClusterScoped(kind: Kind, crds: readonly StoredKind[] = []): boolean {
  return kind === "namespaces" || kind === "nodes" || storedKindOfPlural(kind, crds)?.clusterScoped === true;
}

export type Alive = (p: ManagedProc | undefined) => boolean;

/** One system component shown as a pod. */
export interface SystemPod {
  readonly name: string;
  readonly app: string;
  /** `nsm stop|start|restart` target. */
  readonly target: string;
  readonly node?: NodeState;
  readonly proc?: ManagedProc;
}

/** The runtime's components as pods of nsm-system (names stay across restarts). */
export function systemPodList(state: State): SystemPod[] {
  const out: SystemPod[] = [];
  if (state.identityProvider)
    out.push({
      name: "identity-provider",
      app: "identity-provider",
      target: "identity-provider",
      proc: state.identityProvider,
    });
  out.push({ name: "registry", app: "registry", target: "registry", proc: state.registry });
  for (const n of state.nodes) {
    out.push({ name: `nsmgr-${n.name}`, app: "nsmgr", target: `nsmgr/${n.name}`, node: n, proc: n.nsmgr });
    out.push({
      name: `forwarder-${n.name}`,
      app: "forwarder-vpp",
      target: `forwarder/${n.name}`,
      node: n,
      proc: n.forwarder,
    });
  }
  return out;
}

function meta(name: string, createdAt: string, extra: Json = {}): Json {
  return { name, creationTimestamp: new Date(createdAt).toISOString().replace(/\.\d+Z$/, "Z"), ...extra };
}

function readyCondition(ready: boolean): Json[] {
  const status = ready ? "True" : "False";
  return ["Initialized", "Ready", "ContainersReady", "PodScheduled"].map((type) => ({
    type,
    status: type === "Initialized" || type === "PodScheduled" ? "True" : status,
  }));
}

function systemPodObject(state: State, s: SystemPod, alive: Alive): Json {
  const up = alive(s.proc);
  const ip = s.node?.address;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: meta(s.name, state.createdAt, { namespace: SYSTEM_NAMESPACE, uid: s.name, labels: { app: s.app } }),
    spec: {
      nodeName: s.node?.name ?? "",
      hostNetwork: true,
      containers: [{ name: s.app, image: "nsm", command: s.proc?.argv ?? [] }],
    },
    status: {
      phase: "Running",
      ...(ip ? { hostIP: ip, podIP: ip } : {}),
      conditions: readyCondition(up),
      containerStatuses: [{ name: s.app, ready: up, restartCount: 0, started: up }],
    },
  };
}

function podPhase(p: PodState): string {
  return p.phase;
}

/** Whether every app container of a user pod runs. */
export function userPodReady(p: PodState, alive: Alive): boolean {
  const apps = p.containers.filter((c) => c.type === "app");
  return p.phase === "Running" && apps.length > 0 && apps.every((c) => alive(c.proc));
}

function containerStatus(c: PodState["containers"][number], alive: Alive): Json {
  const running = alive(c.proc);
  const exitCode = c.exitCode ?? 0;
  const reason = exitCode === 0 ? "Completed" : "Error";
  const state = running ? { running: {} } : { terminated: { exitCode, reason } };
  return { name: c.name, image: c.image, ready: running, restartCount: 0, started: running, state };
}

function podIPs(p: PodState, host: string | undefined): Json {
  return {
    ...(host ? { hostIP: host, hostIPs: [{ ip: host }] } : {}),
    ...(p.podIP ? { podIP: p.podIP, podIPs: [{ ip: p.podIP }] } : {}),
  };
}

function userPodObject(state: State, p: PodState, alive: Alive): Json {
  const host = state.nodes.find((n) => n.name === p.node)?.address;
  const ds = p.owner?.startsWith("daemonset/");
  const ownerRef = {
    apiVersion: "apps/v1",
    kind: ds ? "DaemonSet" : "ReplicaSet",
    name: p.owner?.replace(/^daemonset\//, ""),
  };
  const owner = p.owner ? { ownerReferences: [ownerRef] } : {};
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: meta(p.name, p.createdAt, {
      namespace: p.namespace,
      uid: p.uid,
      labels: { ...p.labels },
      annotations: { ...p.annotations },
      ...owner,
    }),
    spec: {
      nodeName: p.node,
      initContainers: p.containers.filter((c) => c.type === "init").map((c) => ({ name: c.name, image: c.image })),
      containers: p.containers.filter((c) => c.type === "app").map((c) => ({ name: c.name, image: c.image })),
    },
    status: {
      phase: podPhase(p),
      ...podIPs(p, host),
      ...(p.message ? { message: p.message } : {}),
      conditions: readyCondition(userPodReady(p, alive)),
      containerStatuses: p.containers.filter((c) => c.type === "app").map((c) => containerStatus(c, alive)),
    },
  };
}

function daemonSetObjects(state: State, alive: Alive): Json[] {
  return state.deployments
    .filter((d) => d.kind === "DaemonSet")
    .map((d) => {
      const pods = state.pods.filter((p) => p.namespace === d.namespace && p.owner === `daemonset/${d.name}`);
      const ready = pods.filter((p) => userPodReady(p, alive)).length;
      const labels = d.template?.labels ?? {};
      return {
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: meta(d.name, d.createdAt, { namespace: d.namespace, labels: { ...labels } }),
        spec: { selector: { matchLabels: { ...labels } } },
        status: {
          desiredNumberScheduled: state.nodes.length,
          currentNumberScheduled: pods.length,
          numberReady: ready,
          updatedNumberScheduled: pods.length,
          numberAvailable: ready,
        },
      };
    });
}

function deploymentObjects(state: State, alive: Alive): Json[] {
  return state.deployments
    .filter((d) => !d.kind)
    .map((d) => {
      const pods = state.pods.filter((p) => p.namespace === d.namespace && p.owner === d.name);
      const ready = pods.filter((p) => userPodReady(p, alive)).length;
      const labels = d.template?.labels ?? {};
      return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: meta(d.name, d.createdAt, { namespace: d.namespace, labels: { ...labels } }),
        spec: { replicas: d.replicas, selector: { matchLabels: { ...labels } } },
        status: { replicas: pods.length, readyReplicas: ready, availableReplicas: ready, updatedReplicas: pods.length },
      };
    });
}

function namespaceObjects(state: State): Json[] {
  const builtin = ["default", SYSTEM_NAMESPACE].filter((n) => !state.namespaces.some((s) => s.name === n));
  return [...builtin.map((name) => ({ name, annotations: {}, createdAt: state.createdAt })), ...state.namespaces].map(
    (n) => ({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: meta(n.name, n.createdAt, {
        labels: { "kubernetes.io/metadata.name": n.name, ...(n as { labels?: Json }).labels },
        annotations: { ...n.annotations },
      }),
      status: { phase: "Active" },
    }),
  );
}

function nodeObjects(state: State, alive: Alive): Json[] {
  return state.nodes.map((n) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: meta(n.name, n.createdAt, { labels: { "kubernetes.io/hostname": n.name } }),
    status: {
      addresses: [
        ...(n.address ? [{ type: "InternalIP", address: n.address }] : []),
        { type: "Hostname", address: n.name },
      ],
      conditions: [{ type: "Ready", status: alive(n.nsmgr) && alive(n.forwarder) ? "True" : "False" }],
    },
  }));
}

/** The stored objects of a stored kind, as applied, with their creation time. */
function storedObjects(state: State, kind: Kind): Json[] {
  const stored = storedKindOfPlural(kind, stateCrds(state));
  if (!stored) return [];
  return (state.objects ?? [])
    .filter((o) => o.kind === stored.kind)
    .map((o) => {
      const body = o.body as Json;
      const metadata = { ...((body.metadata ?? {}) as Json), ...meta(o.name, o.createdAt) };
      if (o.namespace) metadata.namespace = o.namespace;
      return { ...body, metadata };
    });
}

/** Every object of `kind`, in every namespace. */
export function objectsOf(state: State, kind: Kind, alive: Alive): Json[] {
  switch (kind) {
    case "pods":
      return [
        ...state.pods.map((p) => userPodObject(state, p, alive)),
        ...systemPodList(state).map((s) => systemPodObject(state, s, alive)),
      ];
    case "deployments":
      return deploymentObjects(state, alive);
    case "daemonsets":
      return daemonSetObjects(state, alive);
    case "namespaces":
      return namespaceObjects(state);
    case "nodes":
      return nodeObjects(state, alive);
    default:
      return storedObjects(state, kind);
  }
}

/** A dotted field of an object as a string (for field selectors). */
export function fieldOf(obj: Json, path: string): string | undefined {
  let cur: unknown = obj;
  for (const k of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Json)[k];
  }
  return cur === undefined || cur === null ? undefined : String(cur);
}

/** Whether a Pod object is Ready (its Ready condition is True). */
export function isReady(obj: Json): boolean {
  const conditions = ((obj.status as Json | undefined)?.conditions ?? []) as Json[];
  return conditions.some((c) => c.type === "Ready" && c.status === "True");
}
