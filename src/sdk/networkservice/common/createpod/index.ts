// SPDX-License-Identifier: Apache-2.0
/**
 * createpod: starts an endpoint for a client that found none (scale from zero; upstream sdk-k8s
 * `createpod`, the heart of cmd-nse-supplier-k8s).
 *
 * Purpose: the supplier registers as the fall-back endpoint of a service (the service's last
 * `matches` entry). A Request that reaches it renders the pod template over the connection
 * (`{{ index .Labels "nodeName" }}` …, see ./template.ts), places the pod on the client's node
 * (label `nodeName`, when that node exists and the template names none), labels it
 * `createdBy: <owner>` and has the {@link PodLauncher} create it. Then it fails the Request
 * with Unavailable "cannot provide required networkservice: endpoint created as NAME", as
 * upstream does: the supplier never carries traffic, the client's next Request finds the new
 * endpoint. Unlike upstream it waits (up to the call's deadline) for the launcher, which on the
 * local runtime resolves once the endpoint registered, so that next Request succeeds.
 * Requests for the same pod while it is being made share that one creation.
 * {@link reapCompletedPods} deletes the pods it made once they finished (an endpoint that
 * stopped after NSM_IDLE_TIMEOUT), as upstream's supplier does.
 * Chain placement: the supplier's endpoint chain, `additional` slot; nothing after it runs.
 * Per-connection state: none (creations in flight, by pod).
 * Options: {@link CreatePodOptions}.
 * Failure behaviour: Unavailable after a creation (by design); a template that does not render
 * or is not a Pod is Internal; a launcher error keeps its code (Internal by default).
 */
import { parse } from "yaml";
import type { Connection } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import { internal, NsmError, unavailable } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import { requestConnection } from "../../../core/request.js";
import { compileTemplate } from "./template.js";

export { compileTemplate, type Template } from "./template.js";

/** The request label naming the client's node (set by clientinfo). */
export const NODE_NAME_LABEL = "nodeName";
/** The label a supplier puts on the pods it makes: its own name. */
export const CREATED_BY_LABEL = "createdBy";

/** A Pod manifest (the parsed template); only what createpod reads or sets is typed. */
export interface PodManifest {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec: { nodeName?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** A pod made by a supplier, as {@link PodLauncher.listPods} sees it. */
export interface SuppliedPod {
  readonly name: string;
  /** The pod's work is over (Kubernetes phase Succeeded or Failed; every container exited). */
  readonly completed: boolean;
}

/** Where pods come from: the local runtime, or the Kubernetes API. */
export interface PodLauncher {
  /** Whether a node of this name exists. */
  nodeExists(name: string): Promise<boolean>;
  /**
   * Creates `pod` in `namespace` and resolves with its name (the local runtime: once it runs and
   * its endpoint registered; Kubernetes: once the API accepted it). A pod of that name that
   * already exists is not an error.
   */
  createPod(pod: PodManifest, namespace: string): Promise<string>;
  /** The pods in `namespace` labelled `createdBy: owner`. */
  listPods(namespace: string, owner: string): Promise<SuppliedPod[]>;
  deletePod(namespace: string, name: string): Promise<void>;
}

/** Options of {@link createPodServer}. */
export interface CreatePodOptions {
  readonly launcher: PodLauncher;
  /** The pod template (YAML with Go template actions, upstream's NSM_POD_DESCRIPTION_FILE). */
  readonly template: string;
  /** Where pods are made (upstream NSM_NAMESPACE). @default "default" */
  readonly namespace?: string;
  /** The `createdBy` label value: the supplier's name (upstream: its HOSTNAME). */
  readonly owner: string;
}

/** Renders `template` over `conn` into a Pod manifest; throws a message naming what is wrong. */
export function renderPod(template: string, conn: Connection): PodManifest {
  const doc = parse(compileTemplate(template)(conn)) as Partial<PodManifest> | null;
  if (!doc || typeof doc !== "object") throw new Error("the pod template is not a YAML mapping");
  if (doc.kind !== undefined && doc.kind !== "Pod") throw new Error(`the pod template is a ${doc.kind}, not a Pod`);
  const name = doc.metadata?.name;
  if (typeof name !== "string" || name === "") throw new Error("the pod template has no metadata.name");
  if (!doc.spec || typeof doc.spec !== "object") throw new Error("the pod template has no spec");
  return { ...doc, kind: "Pod", metadata: { ...doc.metadata, name }, spec: { ...doc.spec } } as PodManifest;
}

/** Resolves with `work`, or rejects with DeadlineExceeded-like Unavailable when the call ends first. */
function withinCall<T>(work: Promise<T>, ctx: CallContext, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(unavailable(`${what} is still starting; try again`, { reason: "starting" }));
    if (ctx.signal.aborted) return onAbort();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => ctx.signal.removeEventListener("abort", onAbort));
  });
}

/** The scale-from-zero supplier element (see the module doc). */
export function createPodServer(options: Readonly<CreatePodOptions>): NetworkServiceElement {
  const { launcher, template, owner } = options;
  const namespace = options.namespace ?? "default";
  const inFlight = new Map<string, Promise<string>>();
  const manifestFor = async (conn: Connection): Promise<PodManifest> => {
    let pod: PodManifest;
    try {
      pod = renderPod(template, conn);
    } catch (err) {
      throw internal(`cannot make a pod from the template: ${(err as Error).message}`, { reason: "template" });
    }
    const node = conn.labels[NODE_NAME_LABEL];
    if (!pod.spec.nodeName && node && (await launcher.nodeExists(node))) pod.spec.nodeName = node;
    pod.metadata.labels = { ...pod.metadata.labels, [CREATED_BY_LABEL]: owner };
    return pod;
  };
  const create = (pod: PodManifest, log: Logger): Promise<string> => {
    const key = pod.metadata.name;
    let creation = inFlight.get(key);
    if (!creation) {
      log.info({ pod: key, namespace, node: pod.spec.nodeName }, "creating an endpoint pod");
      creation = launcher.createPod(pod, namespace).finally(() => inFlight.delete(key));
      inFlight.set(key, creation);
    }
    return creation;
  };
  return {
    name: "createpod",
    async request(req, ctx) {
      const pod = await manifestFor(requestConnection(req));
      let name: string;
      try {
        name = await withinCall(create(pod, ctx.log), ctx, `endpoint pod ${pod.metadata.name}`);
      } catch (err) {
        throw err instanceof NsmError ? err : internal(`cannot create pod ${pod.metadata.name}: ${String(err)}`);
      }
      throw unavailable(`cannot provide required networkservice: endpoint created as ${name}`, {
        reason: "endpoint-created",
      });
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** Options of {@link reapCompletedPods}. */
export interface ReapOptions {
  readonly launcher: PodLauncher;
  readonly namespace: string;
  readonly owner: string;
  /** @default 2000 */
  readonly intervalMs?: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/** Resolves after `ms`, or at once when `signal` aborts (leaving no listener behind). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Deletes, every `intervalMs` until `signal` aborts, the completed pods `owner` made. */
export async function reapCompletedPods(options: Readonly<ReapOptions>): Promise<void> {
  const { launcher, namespace, owner, signal, log } = options;
  while (!signal.aborted) {
    try {
      for (const pod of await launcher.listPods(namespace, owner)) {
        if (!pod.completed || signal.aborted) continue;
        log.info({ pod: pod.name, namespace }, "deleting a finished endpoint pod");
        await launcher.deletePod(namespace, pod.name);
      }
    } catch (err) {
      log.warn({ err: String(err) }, "cannot list or delete finished endpoint pods");
    }
    await pause(options.intervalMs ?? 2000, signal);
  }
}
