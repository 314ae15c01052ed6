// SPDX-License-Identifier: Apache-2.0
/**
 * `apply` and `delete`: load and check the manifests, plan (see ./planner.ts) under the lock,
 * then perform the plan step by step, saving the state after each, so that a command that fails
 * half way leaves a state that `delete` or `down` can clean.
 */
import { type RuntimeContext, save, withLock, withLockOrLender } from "./context.js";
import { LocalError } from "./errors.js";
import { excludedPrefixesOf, isExcludedPrefixesConfig } from "./excluded-prefixes-config.js";
import { systemHost } from "./host.js";
import { crdKind, resourceName, type StoredKind, storedKindOf } from "./kinds.js";
import { health } from "./lifecycle.js";
import { type LentRequest, requestFromLender } from "./lock-lend.js";
import { loadManifests, type StoredManifest } from "./manifest.js";
import {
  type ApplyAction,
  type DeletePlan,
  deploymentKey,
  objectKey,
  type PlanInput,
  planApply,
  planDelete,
} from "./planner.js";
import { writeExcludedPrefixes } from "./pod-files.js";
import { deletePods, startPods } from "./pod-supervisor.js";
import { registerService, unregisterService } from "./services.js";
import { type DeploymentState, loadState, requireUp, type State } from "./state.js";
import { securityEnv } from "./supervisor.js";

function applyNamespace(ctx: RuntimeContext, state: State, a: Extract<ApplyAction, { type: "namespace" }>): void {
  const existing = state.namespaces.find((s) => s.name === a.name);
  if (existing) existing.annotations = { ...a.annotations };
  else state.namespaces.push({ name: a.name, annotations: { ...a.annotations }, createdAt: new Date().toISOString() });
  ctx.out.say(`namespace/${a.name} ${a.result}`);
}

async function applyService(ctx: RuntimeContext, state: State, a: Extract<ApplyAction, { type: "networkservice" }>) {
  await registerService(ctx, state, a.record);
  const existing = state.networkServices.find((x) => x.name === a.name);
  if (existing) existing.record = a.json;
  else
    state.networkServices.push({
      namespace: a.namespace,
      name: a.name,
      record: a.json,
      createdAt: new Date().toISOString(),
    });
  ctx.out.say(`networkservice/${a.name} ${a.result} (payload ${a.record.payload})`);
}

function applyDeployment(ctx: RuntimeContext, state: State, d: DeploymentState, result: string): void {
  const same = (x: DeploymentState) => x.namespace === d.namespace && x.name === d.name && x.kind === d.kind;
  const existing = state.deployments.find(same);
  if (existing && existing.templateHash === d.templateHash) existing.replicas = d.replicas;
  else {
    state.deployments = state.deployments.filter((x) => !same(x));
    state.deployments.push({ ...d });
  }
  const pods = `${d.replicas} ${d.kind ? "node" : "replica"}${d.replicas === 1 ? "" : "s"}`;
  ctx.out.say(`${d.kind ? "daemonset" : "deployment"}.apps/${d.name} ${result} (${pods})`);
}

function applyObject(ctx: RuntimeContext, state: State, m: StoredManifest, result: string): void {
  state.objects ??= [];
  const i = state.objects.findIndex((o) => o.kind === m.objectKind && o.namespace === m.namespace && o.name === m.name);
  const createdAt = i >= 0 ? state.objects[i]!.createdAt : new Date().toISOString();
  const stored = { kind: m.objectKind, namespace: m.namespace, name: m.name, body: m.body, createdAt };
  if (i >= 0) state.objects[i] = stored;
  else state.objects.push(stored);
  const kind = storedKindOf(m.objectKind, crdsOf(state));
  ctx.out.say(`${kind ? resourceName(kind) : m.objectKind.toLowerCase()}/${m.name} ${result}`);
  if (isExcludedPrefixesConfig(m.objectKind, m.namespace, m.name)) {
    const prefixes = excludedPrefixesOf(m.body, `ConfigMap/${m.name}`);
    writeExcludedPrefixes(state.nodes, prefixes);
    ctx.out.say(`  excluded prefixes of every node: ${prefixes.join(", ") || "none"}`);
  }
}

/** The kinds the runtime's stored CustomResourceDefinitions define. */
export function crdsOf(state: State | undefined): StoredKind[] {
  return (state?.objects ?? [])
    .filter((o) => o.kind === "CustomResourceDefinition")
    .map((o) => crdKind(o.body))
    .filter((k): k is StoredKind => k !== undefined);
}

/** Performs one action; pods that fail to start are added to `failures` (the others go on). */
async function perform(ctx: RuntimeContext, state: State, a: ApplyAction, failures: string[]): Promise<void> {
  switch (a.type) {
    case "namespace":
      applyNamespace(ctx, state, a);
      break;
    case "networkservice":
      await applyService(ctx, state, a);
      break;
    case "object":
      applyObject(ctx, state, a.manifest, a.result);
      break;
    case "delete-pods":
      await deletePods(ctx, state, a.pods);
      return;
    case "deployment":
      applyDeployment(ctx, state, a.deployment, a.result);
      break;
    case "pod":
      ctx.out.say(`pod/${a.name} ${a.result}`);
      return;
    case "start-pods":
      failures.push(...(await startPods(ctx, state, a.pods)));
      return;
  }
  save(ctx, state);
}

/** What the planner needs from the runtime (see ./planner.ts). */
export function planInput(ctx: RuntimeContext, state: State): PlanInput {
  return { paths: ctx.paths, state, config: ctx.config, security: securityEnv(ctx, state), host: systemHost };
}

/** Performs planned actions in order; pods that failed to start are one error at the end. */
export async function performActions(
  ctx: RuntimeContext,
  state: State,
  actions: readonly ApplyAction[],
): Promise<void> {
  const failures: string[] = [];
  for (const a of actions) await perform(ctx, state, a, failures);
  if (failures.length > 0) {
    throw new LocalError(
      `${failures.length} pod(s) failed to start:\n${failures.join("\n")}\n(see \`nsm logs POD -n NAMESPACE\`; \`nsm delete -f …\` removes them)`,
    );
  }
}

/** Plans and performs an apply under the lock (ours, or lent to us: then `out` is the sender's). */
async function applyLocked(
  ctx: RuntimeContext,
  state: State,
  request: LentRequest,
  out: RuntimeContext["out"],
): Promise<void> {
  const warnings: string[] = [];
  const manifests = loadManifests(request.files, (w) => warnings.push(w), request.namespace, crdsOf(state));
  const actions = planApply(planInput(ctx, state), manifests);
  for (const w of warnings) out.warn(w);
  await performActions({ ...ctx, out }, state, actions);
}

/** `nsm apply -f FILES [-n NAMESPACE]`. */
export async function apply(
  ctx: RuntimeContext,
  files: readonly string[],
  namespace: string | undefined,
): Promise<void> {
  // Checked before taking the lock: a bad file is refused at once.
  loadManifests(files, () => {}, namespace, crdsOf(loadState(ctx.paths)));
  requireUp(ctx.paths);
  const request: LentRequest = { files: [...files], namespace };
  const locked = async () => {
    const state = requireUp(ctx.paths);
    const problem = health(state);
    if (problem) throw new LocalError(`the local runtime is not healthy: ${problem}; see \`nsm down\` and \`nsm up\``);
    // While a pod's client waits for its connection, another apply (a supplier's) is done here.
    const serving: RuntimeContext = {
      ...ctx,
      serveLent: (req, lines) => {
        const say = (l: string) => lines.push(l);
        return applyLocked(serving, state, req, { say, warn: say, took: ctx.out.took });
      },
    };
    await applyLocked(serving, state, request, ctx.out);
  };
  const viaLender = async (pid: number) => {
    for (const line of await requestFromLender(ctx.paths, pid, request)) ctx.out.say(line);
  };
  await withLockOrLender(ctx, `apply -f ${files.join(" -f ")}`, locked, viaLender);
}

/** Stops the plan's pods, forgets its Deployments, unregisters its NetworkServices, forgets its namespaces. */
export async function performDelete(ctx: RuntimeContext, state: State, plan: DeletePlan): Promise<void> {
  await deletePods(ctx, state, plan.pods);
  state.deployments = state.deployments.filter(
    (d) => !plan.deployments.has(deploymentKey(d.namespace, d.name, d.kind)),
  );
  const gone = (state.objects ?? []).filter((o) => plan.objects.has(objectKey(o.kind, o.namespace, o.name)));
  state.objects = (state.objects ?? []).filter((o) => !gone.includes(o));
  save(ctx, state);
  if (gone.some((o) => isExcludedPrefixesConfig(o.kind, o.namespace, o.name))) writeExcludedPrefixes(state.nodes, []);
  const said = [...plan.deleted];
  for (const name of plan.services) {
    await unregisterService(ctx, state, name);
    said.push(`networkservice "${name}" unregistered`);
  }
  state.namespaces = state.namespaces.filter((n) => !plan.namespaces.includes(n.name));
  save(ctx, state);
  for (const l of said) ctx.out.say(l);
  for (const m of plan.missing) ctx.out.say(`${m} not found (nothing to delete)`);
}

/** `nsm delete -f FILES [-n NAMESPACE]`. */
export async function deleteObjects(
  ctx: RuntimeContext,
  files: readonly string[],
  namespace: string | undefined,
): Promise<void> {
  const manifests = loadManifests(files, () => {}, namespace, crdsOf(loadState(ctx.paths)));
  requireUp(ctx.paths);
  await withLock(ctx, `delete -f ${files.join(" -f ")}`, async () => {
    const state = requireUp(ctx.paths);
    await performDelete(ctx, state, planDelete(state, manifests));
  });
}
