// SPDX-License-Identifier: Apache-2.0
/**
 * Pod placement on the local nodes, following the Kubernetes rules the examples rely on:
 * `nodeName`, `nodeSelector` and required node affinity on node labels (`kubernetes.io/hostname`,
 * `kubernetes.io/os`), required `podAffinity`/`podAntiAffinity` with topology
 * `kubernetes.io/hostname` (including existing pods' anti-affinity against the new pod), then
 * the least loaded of the remaining nodes. A pod that cannot be placed is a readable error.
 */

import { LocalError } from "./errors.js";
import type { Affinity, LabelSelector, LabelSelectorRequirement, PodAffinityTerm, PodSpec } from "./manifest.js";

export const HOSTNAME_KEY = "kubernetes.io/hostname";

/** A pod already placed (or placed earlier in the same apply). */
export interface PlacedPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly node: string;
  readonly affinity?: Affinity;
}

export interface PodToPlace {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: PodSpec;
}

export function nodeLabels(node: string): Record<string, string> {
  return { [HOSTNAME_KEY]: node, "kubernetes.io/os": "linux", "kubernetes.io/arch": process.arch };
}

function requirementMatches(r: LabelSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case "In":
      return has && r.values.includes(labels[r.key]!);
    case "NotIn":
      return !has || !r.values.includes(labels[r.key]!);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
  }
}

export function selectorMatches(s: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  return (
    Object.entries(s.matchLabels).every(([k, v]) => labels[k] === v) &&
    s.matchExpressions.every((r) => requirementMatches(r, labels))
  );
}

function describeSelector(s: LabelSelector): string {
  const parts = [
    ...Object.entries(s.matchLabels).map(([k, v]) => `${k}=${v}`),
    ...s.matchExpressions.map((r) =>
      r.operator === "In" || r.operator === "NotIn"
        ? `${r.key} ${r.operator === "In" ? "in" : "notin"} (${r.values.join(",")})`
        : `${r.operator === "Exists" ? "" : "!"}${r.key}`,
    ),
  ];
  return parts.length ? parts.join(", ") : "any labels";
}

function termNamespaces(term: PodAffinityTerm, podNamespace: string): (ns: string) => boolean {
  if (term.namespaces.includes("*")) return () => true;
  const list = term.namespaces.length ? term.namespaces : [podNamespace];
  return (ns) => list.includes(ns);
}

function termMatches(
  term: PodAffinityTerm,
  ownerNamespace: string,
  pod: { namespace: string; labels: Readonly<Record<string, string>> },
) {
  return termNamespaces(term, ownerNamespace)(pod.namespace) && selectorMatches(term.labelSelector, pod.labels);
}

function checkTopology(term: PodAffinityTerm, pod: PodToPlace): void {
  if (term.topologyKey !== HOSTNAME_KEY)
    throw new LocalError(
      `pod ${pod.namespace}/${pod.name}: topologyKey "${term.topologyKey}" is not supported (only ${HOSTNAME_KEY})`,
    );
}

/** Drops the candidate nodes `keep` rejects; throws (saying `why`) when none is left. */
type Narrow = (keep: (node: string) => boolean, why: string) => void;

/** `nodeName`, `nodeSelector` and required node affinity, on the nodes' labels. */
function narrowByNodeConstraints(spec: PodSpec, nodes: readonly string[], narrow: Narrow): void {
  if (spec.nodeName !== undefined) {
    narrow((n) => n === spec.nodeName, `nodeName "${spec.nodeName}" is not a node (nodes: ${nodes.join(", ")})`);
  }
  for (const [k, v] of Object.entries(spec.nodeSelector)) {
    narrow((n) => nodeLabels(n)[k] === v, `no node has the label ${k}=${v} (nodes: ${nodes.join(", ")})`);
  }
  if (spec.affinity.nodeAffinity.length > 0) {
    narrow(
      (n) => spec.affinity.nodeAffinity.some((reqs) => reqs.every((r) => requirementMatches(r, nodeLabels(n)))),
      "no node satisfies the required nodeAffinity",
    );
  }
}

function hostsMatching(term: PodAffinityTerm, pod: PodToPlace, placed: readonly PlacedPod[]): Set<string> {
  return new Set(placed.filter((p) => termMatches(term, pod.namespace, p)).map((p) => p.node));
}

function narrowByPodAffinity(pod: PodToPlace, placed: readonly PlacedPod[], narrow: Narrow): void {
  for (const term of pod.spec.affinity.podAffinity) {
    checkTopology(term, pod);
    const hosts = hostsMatching(term, pod, placed);
    if (hosts.size === 0) {
      // Kubernetes: a pod whose own labels match its affinity term may go first, anywhere.
      if (termMatches(term, pod.namespace, pod)) continue;
      const where = term.namespaces.includes("*")
        ? ""
        : ` in namespace ${(term.namespaces.length ? term.namespaces : [pod.namespace]).join(", ")}`;
      throw new LocalError(
        `pod ${pod.namespace}/${pod.name} cannot be scheduled: podAffinity requires a node running a pod with ${describeSelector(term.labelSelector)}${where}, and there is none`,
      );
    }
    narrow((n) => hosts.has(n), `podAffinity and the other constraints exclude every node`);
  }
}

/** The pod's own anti-affinity, then existing pods' anti-affinity against it. */
function narrowByAntiAffinity(pod: PodToPlace, placed: readonly PlacedPod[], narrow: Narrow): void {
  for (const term of pod.spec.affinity.podAntiAffinity) {
    checkTopology(term, pod);
    const hosts = hostsMatching(term, pod, placed);
    narrow(
      (n) => !hosts.has(n),
      `podAntiAffinity excludes every node: pods with ${describeSelector(term.labelSelector)} run on ${[...hosts].join(", ")}`,
    );
  }
  for (const other of placed) {
    for (const term of other.affinity?.podAntiAffinity ?? []) {
      if (!termMatches(term, other.namespace, pod)) continue;
      narrow(
        (n) => n !== other.node,
        `the podAntiAffinity of pod ${other.namespace}/${other.name} keeps it off ${other.node}`,
      );
    }
  }
}

/** Chooses the node for `pod`, or throws a LocalError that says why none fits. */
export function placePod(pod: PodToPlace, nodes: readonly string[], placed: readonly PlacedPod[]): string {
  let candidates = [...nodes];
  const narrow: Narrow = (keep, why) => {
    candidates = candidates.filter(keep);
    if (candidates.length === 0) throw new LocalError(`pod ${pod.namespace}/${pod.name} cannot be scheduled: ${why}`);
  };
  narrowByNodeConstraints(pod.spec, nodes, narrow);
  narrowByPodAffinity(pod, placed, narrow);
  narrowByAntiAffinity(pod, placed, narrow);
  const load = (n: string) => placed.filter((p) => p.node === n).length;
  return candidates.reduce((best, n) => (load(n) < load(best) ? n : best));
}
