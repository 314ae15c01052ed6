// SPDX-License-Identifier: Apache-2.0
/**
 * Files the runtime keeps for a node or a pod in place of what a Kubernetes node has:
 * - a pod's resolv.conf (`<state>/tmp/pods/<ns>_<pod>/resolv.conf`): the `nsm nsc` sidecar points
 *   it at its DNS proxy (env NSM_RESOLV_CONF). The runtime makes it before the pod's containers
 *   start ({@link ensurePodResolvConf}) and bind-mounts it at /etc/resolv.conf in the mount
 *   namespace of every container of a pod with the NSM client (./pods.ts), as the kubelet mounts
 *   the resolv.conf it writes for a container.
 * - a node's excluded prefixes (`<node dir>/config/excluded_prefixes.yaml`, the node's
 *   /var/lib/networkservicemesh/config/excluded_prefixes.yaml, where upstream's exclude-prefixes
 *   sidecar writes): its nsmgr reads it (env NSM_EXCLUDED_PREFIXES_FILE).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import type { NodeState, RuntimePaths } from "./state.js";

/** The resolv.conf of pod `namespace/name`. */
export function podResolvConf(paths: RuntimePaths, namespace: string, name: string): string {
  return join(paths.tmpDir, "pods", `${namespace}_${name}`, "resolv.conf");
}

/**
 * Makes the pod's resolv.conf if it does not exist yet, from `seedFrom` (the host's
 * /etc/resolv.conf, as the kubelet's default for a pod with `dnsPolicy: Default`); an existing
 * file is kept (written by hand before the pod starts, or left by an earlier sidecar, which keeps
 * the original inside it).
 */
export function ensurePodResolvConf(path: string, seedFrom = "/etc/resolv.conf"): void {
  if (existsSync(path)) return;
  let seed = "";
  try {
    seed = readFileSync(seedFrom, "utf8");
  } catch {
    // No resolver on the host: an empty file, which the sidecar fills once connected.
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, seed);
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
