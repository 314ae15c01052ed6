// SPDX-License-Identifier: Apache-2.0
/**
 * The Kubernetes API as a scale-from-zero supplier's pod source ({@link PodLauncher} of the sdk's
 * createpod element), as upstream's cmd-nse-supplier-k8s uses it: nodes are read to check the
 * client's node exists, pods are created in the supplier's namespace (an AlreadyExists answer
 * means an earlier request made it: not an error), listed by the `createdBy` label, and deleted
 * when their phase is Succeeded or Failed. Uses @kubernetes/client-node's CoreV1Api (1.4.0: 2.x
 * does not run on Node 20), through the small {@link PodsApi} subset so tests can give a fake.
 */
import { ApiException, type V1Node, type V1Pod, type V1PodList } from "@kubernetes/client-node";
import type { PodLauncher, SuppliedPod } from "../../sdk/networkservice/common/createpod/index.js";
import { CREATED_BY_LABEL } from "../../sdk/networkservice/common/createpod/index.js";

/** The part of client-node's `CoreV1Api` the supplier uses. */
export interface PodsApi {
  readNode(param: { name: string }): Promise<V1Node>;
  createNamespacedPod(param: { namespace: string; body: V1Pod }): Promise<V1Pod>;
  listNamespacedPod(param: { namespace: string; labelSelector?: string }): Promise<V1PodList>;
  deleteNamespacedPod(param: { name: string; namespace: string }): Promise<unknown>;
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Pods through the Kubernetes API (see the module doc). */
export function k8sPodLauncher(api: PodsApi): PodLauncher {
  return {
    async nodeExists(name) {
      try {
        await api.readNode({ name });
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw err;
      }
    },
    async createPod(pod, namespace) {
      const body = { ...pod, apiVersion: "v1", metadata: { ...pod.metadata, namespace } } as unknown as V1Pod;
      try {
        const made = await api.createNamespacedPod({ namespace, body });
        return made.metadata?.name ?? pod.metadata.name;
      } catch (err) {
        if (statusOf(err) === 409) return pod.metadata.name;
        throw err;
      }
    },
    async listPods(namespace, owner): Promise<SuppliedPod[]> {
      const list = await api.listNamespacedPod({ namespace, labelSelector: `${CREATED_BY_LABEL}=${owner}` });
      return list.items
        .filter((p) => p.metadata?.labels?.[CREATED_BY_LABEL] === owner && p.metadata.name)
        .map((p) => ({
          name: p.metadata!.name!,
          completed: p.status?.phase === "Succeeded" || p.status?.phase === "Failed",
        }));
    },
    async deletePod(namespace, name) {
      try {
        await api.deleteNamespacedPod({ name, namespace });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },
  };
}
