// SPDX-License-Identifier: Apache-2.0
/**
 * Files the runtime keeps for a node or a pod in place of what a Kubernetes node has:
 * - a pod's resolv.conf (`<state>/tmp/pods/<ns>_<pod>/resolv.conf`): the `nsm nsc` sidecar points
 *   it at its DNS proxy (env NSM_RESOLV_CONF). A pod has no /etc of its own without a mount
 *   namespace; with one, this file is what belongs at the pod's /etc/resolv.conf.
 * - a node's excluded prefixes (`<node dir>/config/excluded_prefixes.yaml`, the node's
 *   /var/lib/networkservicemesh/config/excluded_prefixes.yaml, where upstream's exclude-prefixes
 *   sidecar writes): its nsmgr reads it (env NSM_EXCLUDED_PREFIXES_FILE).
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { NodeState, RuntimePaths } from "./state.js";

/** The resolv.conf of pod `namespace/name`. */
export function podResolvConf(paths: RuntimePaths, namespace: string, name: string): string {
  return join(paths.tmpDir, "pods", `${namespace}_${name}`, "resolv.conf");
}

/** The excluded-prefixes file of a node's nsmgr. */
export function nodeExcludedPrefixesFile(node: Pick<NodeState, "dir">): string {
  return join(node.dir, "config", "excluded_prefixes.yaml");
}

/**
 * Writes `prefixes` as every node's excluded prefixes (what upstream's exclude-prefixes sidecar
 * does from the `excluded-prefixes-config` ConfigMap); the nsmgrs pick them up on their next
 * Request. The file is replaced atomically.
 */
export function writeExcludedPrefixes(nodes: readonly Pick<NodeState, "dir">[], prefixes: readonly string[]): void {
  for (const node of nodes) {
    const file = nodeExcludedPrefixesFile(node);
    mkdirSync(join(node.dir, "config"), { recursive: true });
    writeFileSync(`${file}.tmp`, stringify({ prefixes: [...prefixes] }));
    renameSync(`${file}.tmp`, file);
  }
}
