// SPDX-License-Identifier: Apache-2.0
/**
 * The processes `nsm stop|start|restart TARGET` act on, and how to tell that a restarted one is
 * ready. Targets: `registry`, `identity-provider`, `nsmgr/NODE`, `forwarder/NODE` (NODE is
 * `node-2` or `2`), `pod/NAME` (every app container of the pod; `-c` picks one; `-n` the
 * namespace). A pod's restart is a container restart as in Kubernetes: the processes are started
 * again with the same command and environment, the pod's network namespace (and so its
 * interfaces) stays.
 */

import { LocalError } from "./errors.js";
import type { ContainerState, ManagedProc, NodeState, PodState, RuntimePaths, State } from "./state.js";

/** How a (re)started component shows that it is ready. */
export type Readiness =
  | { readonly kind: "socket"; readonly path: string }
  /** A line containing `text` appears in its log after the start. */
  | { readonly kind: "log"; readonly text: string }
  /** Still running a moment after the start. */
  | { readonly kind: "running" };

export interface Component {
  /** For messages: "nsmgr of node-1", "container nse of pod default/nse-a". */
  readonly label: string;
  readonly proc: ManagedProc | undefined;
  setProc(p: ManagedProc): void;
  readonly readiness: Readiness;
}

/** The readiness lines the roles log (src/cmd/*). */
const READY_LINES = {
  forwarder: "forwarder serving and registered",
  nse: "endpoint serving and registered",
  nsc: "connection established",
} as const;

function findNode(state: State, ref: string): NodeState {
  const name = /^\d+$/.test(ref) ? `node-${ref}` : ref;
  const node = state.nodes.find((n) => n.name === name);
  if (!node) throw new LocalError(`no node "${ref}" (nodes: ${state.nodes.map((n) => n.name).join(", ")})`);
  return node;
}

function containerReadiness(role: string | undefined): Readiness {
  if (role === "nse") return { kind: "log", text: READY_LINES.nse };
  if (role === "nsc") return { kind: "log", text: READY_LINES.nsc };
  if (role === "forwarder") return { kind: "log", text: READY_LINES.forwarder };
  return { kind: "running" };
}

export interface ResolveOptions {
  readonly paths: RuntimePaths;
  readonly namespace?: string;
  readonly container?: string;
  /** Which NSM role a container runs (`nse`, `nsc`, or undefined for anything else). */
  readonly roleOfContainer: (c: ContainerState) => string | undefined;
}

function systemComponent(state: State, kind: "registry" | "identity-provider", options: ResolveOptions): Component {
  const key = kind === "registry" ? "registry" : "identityProvider";
  if (kind === "identity-provider" && state.insecure)
    throw new LocalError("the runtime is in insecure mode: it has no identity provider");
  return {
    label: kind === "registry" ? "the registry" : "the identity provider",
    proc: state[key],
    setProc: (p) => {
      state[key] = p;
    },
    readiness: { kind: "socket", path: kind === "registry" ? options.paths.registrySocket : options.paths.agentSocket },
  };
}

function nodeComponent(state: State, kind: "nsmgr" | "forwarder", nodeRef: string): Component {
  const node = findNode(state, nodeRef);
  return {
    label: `${kind} of ${node.name}`,
    proc: node[kind],
    setProc: (p) => {
      node[kind] = p;
    },
    readiness:
      kind === "nsmgr" ? { kind: "socket", path: node.nsmgrSocket } : { kind: "log", text: READY_LINES.forwarder },
  };
}

function podComponents(state: State, name: string, options: ResolveOptions): Component[] {
  const ns = options.namespace ?? "default";
  const pod: PodState | undefined = state.pods.find((p) => p.name === name && p.namespace === ns);
  if (!pod) throw new LocalError(`no pod "${name}" in namespace "${ns}"`);
  const apps = pod.containers.filter((c) => c.type === "app");
  const chosen = options.container ? apps.filter((c) => c.name === options.container) : apps;
  if (chosen.length === 0)
    throw new LocalError(
      `pod ${ns}/${name} has no app container "${options.container}" (containers: ${apps.map((c) => c.name).join(", ")})`,
    );
  return chosen.map((c) => ({
    label: `container ${c.name} of pod ${ns}/${name}`,
    proc: c.proc,
    setProc: (p) => {
      c.proc = p;
    },
    readiness: containerReadiness(options.roleOfContainer(c)),
  }));
}

/** The components `target` names. */
export function resolveComponents(state: State, target: string, options: ResolveOptions): Component[] {
  const [kind, name, ...rest] = target.split("/");
  if (rest.length > 0) throw new LocalError(`bad target "${target}"`);
  switch (kind) {
    case "registry":
    case "identity-provider":
      if (name) throw new LocalError(`bad target "${target}": ${kind} takes no name`);
      return [systemComponent(state, kind, options)];
    case "nsmgr":
    case "forwarder":
      if (!name) throw new LocalError(`bad target "${target}": say which node, e.g. ${kind}/node-1`);
      return [nodeComponent(state, kind, name)];
    case "pod":
    case "pods":
      if (!name) throw new LocalError(`bad target "${target}": say which pod, e.g. pod/nse-kernel`);
      return podComponents(state, name, options);
    default:
      throw new LocalError(
        `unknown target "${target}": expected registry, identity-provider, nsmgr/NODE, forwarder/NODE or pod/NAME`,
      );
  }
}
