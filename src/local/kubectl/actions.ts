// SPDX-License-Identifier: Apache-2.0
/**
 * The kubectl verbs that change the runtime, by name or selector rather than by manifest:
 * `delete KIND NAME|-l`, `scale deployment --replicas`, `label` and `annotate`. A Deployment
 * keeps its pods as a ReplicaSet would (a deleted pod is made again, `scale` adds or removes
 * pods), and deleting a pod of nsm-system restarts that component as its DaemonSet would.
 * Everything is checked before anything changes.
 */
import { performActions, performDelete, planInput } from "../apply.js";
import { type RuntimeContext, save, withLock } from "../context.js";
import { control } from "../control.js";
import { LocalError } from "../errors.js";
import { resourceName } from "../kinds.js";
import type { WorkloadManifest } from "../manifest.js";
import { type DeletePlan, deploymentKey, objectKey, planApply } from "../planner.js";
import { isAlive } from "../proc.js";
import { type DeploymentState, type PodState, requireUp, type State } from "../state.js";
import { SYSTEM_NAMESPACE, stateCrds, storedKindOfPlural, systemPodList } from "./objects.js";
import { type Query, selectObjects } from "./query.js";

type Json = Record<string, unknown>;

const alive = (p: Parameters<typeof isAlive>[0] | undefined) => p !== undefined && isAlive(p);

function namesOf(objects: readonly Json[]): { namespace: string; name: string }[] {
  return objects.map((o) => {
    const meta = o.metadata as Json;
    return { namespace: String(meta.namespace ?? ""), name: String(meta.name) };
  });
}

interface DeleteSets {
  readonly objects: Set<string>;
  readonly pods: Set<PodState>;
  readonly deployments: Set<string>;
  readonly services: Set<string>;
  readonly deleted: string[];
}

function collect(state: State, kind: Query["kind"], namespace: string, name: string, c: DeleteSets): void {
  const add = (pods: PodState[]) => {
    for (const p of pods) c.pods.add(p);
  };
  if (kind === "pods") {
    add(state.pods.filter((p) => p.namespace === namespace && p.name === name));
    c.deleted.push(`pod "${name}" deleted`);
  } else if (kind === "deployments") {
    c.deployments.add(`${namespace}/${name}`);
    add(state.pods.filter((p) => p.namespace === namespace && p.owner === name));
    c.deleted.push(`deployment.apps "${name}" deleted`);
  } else if (kind === "daemonsets") {
    c.deployments.add(deploymentKey(namespace, name, "DaemonSet"));
    add(state.pods.filter((p) => p.namespace === namespace && p.owner === `daemonset/${name}`));
    c.deleted.push(`daemonset.apps "${name}" deleted`);
  } else if (kind === "namespaces") {
    add(state.pods.filter((p) => p.namespace === name));
    for (const d of state.deployments.filter((d) => d.namespace === name))
      c.deployments.add(deploymentKey(name, d.name, d.kind));
    for (const s of state.networkServices.filter((s) => s.namespace === name)) c.services.add(s.name);
    for (const o of (state.objects ?? []).filter((o) => o.namespace === name))
      c.objects.add(objectKey(o.kind, o.namespace, o.name));
    c.deleted.push(`namespace "${name}" deleted`);
  } else {
    const stored = storedKindOfPlural(kind, stateCrds(state))!;
    c.objects.add(objectKey(stored.kind, stored.clusterScoped ? "" : namespace, name));
    c.deleted.push(`${resourceName(stored)} "${name}" deleted`);
  }
}

/** What deleting the selected user pods, Deployments or namespaces does (system pods apart). */
function deletePlanFor(state: State, q: Query, picked: { namespace: string; name: string }[]): DeletePlan {
  const c: DeleteSets = {
    objects: new Set(),
    pods: new Set(),
    deployments: new Set(),
    services: new Set(),
    deleted: [],
  };
  for (const { namespace, name } of picked) collect(state, q.kind, namespace, name, c);
  const namespaces = q.kind === "namespaces" ? picked.map((p) => p.name) : [];
  return {
    pods: [...c.pods],
    deployments: c.deployments,
    services: c.services,
    namespaces,
    objects: c.objects,
    deleted: c.deleted,
    missing: [],
  };
}

function checkDeletable(q: Query, picked: { namespace: string; name: string }[]): void {
  if (q.kind === "nodes")
    throw new LocalError("deleting nodes is not supported here: use `nsm down` and `nsm up --nodes N`");
  for (const { name } of picked) {
    if (q.kind === "namespaces" && (name === "default" || name === SYSTEM_NAMESPACE))
      throw new LocalError(`namespace "${name}" cannot be deleted here (it holds the runtime: use \`nsm down\`)`);
  }
  if (q.kind !== "pods" && picked.some((p) => p.namespace === SYSTEM_NAMESPACE))
    throw new LocalError(`nsm-system holds the runtime's components: delete its pods to restart them`);
}

/** The Deployments that must make pods again after `plan`. */
function ownersToRefill(state: State, plan: DeletePlan): DeploymentState[] {
  const owners = new Set(plan.pods.filter((p) => p.owner).map((p) => `${p.namespace}/${p.owner}`));
  return state.deployments.filter(
    (d) =>
      owners.has(deploymentKey(d.namespace, d.name, d.kind)) &&
      !plan.deployments.has(deploymentKey(d.namespace, d.name, d.kind)),
  );
}

function templateOf(d: DeploymentState): WorkloadManifest {
  if (!d.template)
    throw new LocalError(`deployment ${d.namespace}/${d.name} was applied by an older nsm: apply it again first`);
  return { ...d.template, replicas: d.replicas };
}

/** Brings Deployments to their replicas (pods made or removed), as their ReplicaSets would. */
async function reconcile(ctx: RuntimeContext, state: State, deployments: readonly DeploymentState[]): Promise<void> {
  if (deployments.length === 0) return;
  const actions = planApply(planInput(ctx, state), deployments.map(templateOf));
  await performActions(ctx, state, actions);
}

/** `nsm delete KIND NAME…|-l SELECTOR [-n NS]`. */
export async function deleteSelected(ctx: RuntimeContext, q: Query): Promise<void> {
  requireUp(ctx.paths);
  const before = requireUp(ctx.paths);
  const picked = namesOf(selectObjects(before, q, alive));
  checkDeletable(q, picked);
  const system = q.kind === "pods" ? picked.filter((p) => p.namespace === SYSTEM_NAMESPACE) : [];
  const user = picked.filter((p) => !system.includes(p));
  if (picked.length === 0) ctx.out.say("No resources found");
  if (user.length > 0) {
    await withLock(ctx, `delete ${q.kind}`, async () => {
      const state = requireUp(ctx.paths);
      const plan = deletePlanFor(state, q, user);
      const refill = ownersToRefill(state, plan);
      for (const d of refill) templateOf(d);
      await performDelete(ctx, state, plan);
      await reconcile(ctx, state, refill);
    });
  }
  for (const s of system) await restartSystemPod(ctx, before, s.name);
}

async function restartSystemPod(ctx: RuntimeContext, state: State, name: string): Promise<void> {
  const s = systemPodList(state).find((x) => x.name === name)!;
  await control(ctx, "restart", s.target, { kill: false });
  ctx.out.say(`pod "${name}" deleted`);
}

/** `nsm scale deployment NAME… --replicas N [-n NS]`. */
export async function scale(ctx: RuntimeContext, q: Query, replicas: number): Promise<void> {
  if (q.kind !== "deployments") throw new LocalError(`scaling ${q.kind} is not supported: scale deployments`);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 100)
    throw new LocalError("--replicas must be an integer from 0 to 100");
  requireUp(ctx.paths);
  await withLock(ctx, "scale", async () => {
    const state = requireUp(ctx.paths);
    const picked = namesOf(selectObjects(state, q, alive));
    const deps = picked.map(
      ({ namespace, name }) => state.deployments.find((d) => d.namespace === namespace && d.name === name && !d.kind)!,
    );
    for (const d of deps) templateOf(d);
    for (const d of deps) d.replicas = replicas;
    save(ctx, state);
    await reconcile(ctx, state, deps);
    for (const d of deps) ctx.out.say(`deployment.apps/${d.name} scaled`);
  });
}

export type MetadataField = "labels" | "annotations";

/** Parses `key=value` (set) and `key-` (remove) arguments. */
export function parseMetadataChanges(args: readonly string[]): { set: Record<string, string>; remove: string[] } {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const a of args) {
    if (a.endsWith("-") && !a.includes("=")) remove.push(a.slice(0, -1));
    else if (/^[^=]+=.*$/.test(a)) set[a.slice(0, a.indexOf("="))] = a.slice(a.indexOf("=") + 1);
    else throw new LocalError(`invalid argument "${a}": expected key=value or key-`);
  }
  if (Object.keys(set).length === 0 && remove.length === 0) throw new LocalError("give at least one key=value or key-");
  return { set, remove };
}

function metadataHolder(state: State, q: Query, o: { namespace: string; name: string }, field: MetadataField) {
  if (q.kind === "pods") {
    const p = state.pods.find((x) => x.namespace === o.namespace && x.name === o.name);
    if (!p) throw new LocalError(`pods in ${SYSTEM_NAMESPACE} cannot be changed`);
    return p as unknown as Record<MetadataField, Record<string, string>>;
  }
  if (q.kind === "namespaces") {
    const n = state.namespaces.find((x) => x.name === o.name);
    if (!n) throw new LocalError(`namespace ${o.name} is built in here and cannot be changed`);
    if (field === "labels") n.labels ??= {};
    return n as unknown as Record<MetadataField, Record<string, string>>;
  }
  throw new LocalError(`changing ${field} of ${q.kind} is not supported here (pods and namespaces)`);
}

function checkOverwrite(
  name: string,
  current: Record<string, string>,
  set: Record<string, string>,
  overwrite: boolean,
) {
  if (overwrite) return;
  for (const k of Object.keys(set))
    if (current[k] !== undefined && current[k] !== set[k])
      throw new LocalError(`'${k}' already has a value (${current[k]}), and --overwrite is false (${name})`);
}

/** `nsm label|annotate KIND NAME… k=v… k-… [--overwrite]`. */
export async function changeMetadata(
  ctx: RuntimeContext,
  q: Query,
  field: MetadataField,
  args: readonly string[],
  overwrite: boolean,
): Promise<void> {
  const { set, remove } = parseMetadataChanges(args);
  requireUp(ctx.paths);
  await withLock(ctx, field === "labels" ? "label" : "annotate", async () => {
    const state = requireUp(ctx.paths);
    const picked = namesOf(selectObjects(state, q, alive));
    const holders = picked.map((o) => ({ o, h: metadataHolder(state, q, o, field) }));
    for (const { o, h } of holders) checkOverwrite(o.name, h[field], set, overwrite);
    for (const { o, h } of holders) {
      const next = { ...h[field], ...set };
      for (const k of remove) delete next[k];
      h[field] = next;
      ctx.out.say(
        `${q.kind === "pods" ? "pod" : "namespace"}/${o.name} ${field === "labels" ? "labeled" : "annotated"}`,
      );
    }
    save(ctx, state);
  });
}

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `nsm create namespace|ns NAME`. */
export async function createNamespace(ctx: RuntimeContext, name: string): Promise<void> {
  if (name.length > 63 || !DNS1123.test(name))
    throw new LocalError(
      `namespace name "${name}" is not valid (lower case letters, digits and '-', at most 63 characters)`,
    );
  requireUp(ctx.paths);
  await withLock(ctx, "create namespace", async () => {
    const state = requireUp(ctx.paths);
    if (name === "default" || name === SYSTEM_NAMESPACE || state.namespaces.some((n) => n.name === name))
      throw new LocalError(`namespaces "${name}" already exists`);
    state.namespaces.push({ name, annotations: {}, createdAt: new Date().toISOString() });
    save(ctx, state);
    ctx.out.say(`namespace/${name} created`);
  });
}
