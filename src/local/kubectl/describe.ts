// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm describe KIND NAME…`: kubectl-style `Key:  value` blocks for Pods, Deployments,
 * Namespaces and Nodes. Pure.
 */
import { type Kind, resourceNameOf } from "./objects.js";

type Json = Record<string, unknown>;

function mapLines(title: string, map: Json | undefined): string[] {
  const entries = Object.entries(map ?? {});
  if (entries.length === 0) return [`${title}<none>`];
  return entries.map(([k, v], i) => `${i === 0 ? title : " ".repeat(title.length)}${k}=${String(v)}`);
}

function pad(key: string): string {
  return `${key}:`.padEnd(16);
}

function podLines(o: Json): string[] {
  const spec = (o.spec ?? {}) as Json;
  const status = (o.status ?? {}) as Json;
  const containers = (spec.containers ?? []) as Json[];
  const statuses = (status.containerStatuses ?? []) as Json[];
  return [
    `${pad("Node")}${String(spec.nodeName || "<none>")}${status.hostIP ? `/${status.hostIP}` : ""}`,
    `${pad("Status")}${String(status.phase)}`,
    `${pad("IP")}${String(status.podIP ?? "")}`,
    "Containers:",
    ...containers.flatMap((c) => {
      const s = statuses.find((x) => x.name === c.name) ?? {};
      return [`  ${String(c.name)}:`, `    Image:    ${String(c.image)}`, `    Ready:    ${s.ready === true}`];
    }),
    "Conditions:",
    "  Type              Status",
    ...((status.conditions ?? []) as Json[]).map((c) => `  ${String(c.type).padEnd(18)}${String(c.status)}`),
  ];
}

/** A stored object (ConfigMap, Secret, …): its data keys (a Secret's as byte counts, as kubectl shows them). */
function storedLines(o: Json): string[] {
  const data = Object.entries((o.data ?? {}) as Record<string, string>);
  if (data.length === 0) return [];
  const secret = o.kind === "Secret";
  return [
    "Data",
    "====",
    ...data.map(([k, v]) => (secret ? `${k}:  ${Buffer.from(v, "base64").length} bytes` : `${k}:\n----\n${v}`)),
  ];
}

function kindLines(kind: Kind, o: Json): string[] {
  if (!["pods", "deployments", "daemonsets", "namespaces", "nodes"].includes(kind)) return storedLines(o);
  const status = (o.status ?? {}) as Json;
  const spec = (o.spec ?? {}) as Json;
  switch (kind) {
    case "pods":
      return podLines(o);
    case "deployments":
      return [
        `${pad("Replicas")}${String(spec.replicas)} desired | ${String(status.updatedReplicas)} updated | ${String(status.replicas)} total | ${String(status.availableReplicas)} available`,
      ];
    case "namespaces":
      return [`${pad("Status")}${String(status.phase)}`];
    default:
      return [
        `${pad("Addresses")}${((status.addresses ?? []) as Json[]).map((a) => `${a.type}: ${a.address}`).join(", ")}`,
      ];
  }
}

/** The describe text of `objects`, separated by blank lines as kubectl's. */
export function describeObjects(kind: Kind, objects: readonly Json[]): string {
  return objects
    .map((o) => {
      const meta = (o.metadata ?? {}) as Json;
      const head = [
        `${pad("Name")}${String(meta.name)}`,
        ...(meta.namespace !== undefined ? [`${pad("Namespace")}${String(meta.namespace)}`] : []),
        `${pad("Kind")}${resourceNameOf(kind)}`,
        ...mapLines(pad("Labels"), meta.labels as Json),
        ...mapLines(pad("Annotations"), meta.annotations as Json),
        `${pad("Start Time")}${String(meta.creationTimestamp)}`,
      ];
      return [...head, ...kindLines(kind, o)].join("\n");
    })
    .map((b) => `${b}\n`)
    .join("\n");
}
