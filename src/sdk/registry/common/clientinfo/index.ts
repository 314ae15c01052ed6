// SPDX-License-Identifier: Apache-2.0
/**
 * clientinfo (registry, NSE): labels an endpoint with where it runs.
 *
 * Purpose: NS `matches` can select endpoints by node, pod or cluster (label templates such as
 * `nodeName: "{{.nodeName}}"`, reference §7.2). Every `network_service_labels` entry of the
 * registered NSE gets the labels `nodeName`, `podName` and `clusterName` from the options;
 * a label the NSE already has is never overwritten, and an unset or empty option adds nothing.
 * Upstream reads `NODE_NAME`, `POD_NAME`, `CLUSTER_NAME`; here only `src/cmd` reads the
 * environment and passes the values in.
 * Chain placement: anywhere before the storage or the connection (client chains and nsmgr).
 * Per-name state: none.
 * Options: {@link RegistryClientInfoOptions}.
 * Failure behaviour: none of its own; the caller's record is never changed (a copy is sent on).
 */
import type { CallContext } from "../../../core/context.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import { type NseTypes, nseKind } from "../../core/kind.js";

export interface RegistryClientInfoOptions {
  /** Value of the `nodeName` label (upstream env `NODE_NAME`). @default none */
  readonly nodeName?: string;
  /** Value of the `podName` label (upstream env `POD_NAME`). @default none */
  readonly podName?: string;
  /** Value of the `clusterName` label (upstream env `CLUSTER_NAME`). @default none */
  readonly clusterName?: string;
}

/** Creates the clientinfo element for the NSE registry. */
export function registryClientInfo(options: Readonly<RegistryClientInfoOptions> = {}): RegistryElement<NseTypes> {
  const labels = Object.entries({
    nodeName: options.nodeName,
    podName: options.podName,
    clusterName: options.clusterName,
  }).filter((e): e is [string, string] => typeof e[1] === "string" && e[1] !== "");
  return {
    name: "clientinfo",
    register(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
      if (labels.length === 0) return next.register(record, ctx);
      const out = nseKind.cloneRecord(record);
      for (const entry of Object.values(out.networkServiceLabels)) {
        for (const [k, v] of labels) {
          if (!(k in entry.labels)) entry.labels[k] = v;
        }
      }
      return next.register(out, ctx);
    },
    find: (query, ctx, next) => next.find(query, ctx),
    unregister: (record, ctx, next) => next.unregister(record, ctx),
  };
}
