// SPDX-License-Identifier: Apache-2.0
/**
 * Pod IPs. The local runtime has no pod network (a pod's netns holds only the interfaces of its
 * NSM connections), yet `status.podIP` is what manifests and scripts read (`fieldRef`,
 * `get -o wide`). Each pod gets an address of its node's pod range, 10.244.<node number>.0/24,
 * set on the pod's loopback: the pod's processes can bind and reach it; nothing outside the pod
 * can. Pure, except {@link assignPodIP}.
 */
import { addAddress } from "./netns.js";
import type { PodState, State } from "./state.js";

/** The pod range of node number `index` (1-based). */
export function podRange(index: number): string {
  return `10.244.${index}.0/24`;
}

/**
 * The lowest free address of the node's range (from .2; .1 stays the range's gateway as with
 * common CNIs), given the addresses already in use; undefined when the range is full.
 */
export function nextPodIP(nodeIndex: number, used: ReadonlySet<string>): string | undefined {
  for (let host = 2; host < 255; host++) {
    const ip = `10.244.${nodeIndex}.${host}`;
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

/** The pod IPs in use in `state` (pods being removed still count until they are gone). */
export function usedPodIPs(state: State): Set<string> {
  return new Set(state.pods.map((p) => p.podIP).filter((ip): ip is string => ip !== undefined));
}

/** The node number (1-based) of a node of the state. */
export function nodeIndex(state: State, node: string): number {
  return state.nodes.findIndex((n) => n.name === node) + 1;
}

/** Puts the pod's IP on its loopback. */
export async function assignPodIP(pod: PodState): Promise<void> {
  if (pod.podIP) await addAddress(pod.netns, "lo", `${pod.podIP}/32`);
}
