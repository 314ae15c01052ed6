// SPDX-License-Identifier: Apache-2.0
/**
 * Forwarders applied as pods (upstream's select-forwarder example adds a forwarder DaemonSet with
 * its own `NSM_LABELS`): a container whose image is an upstream forwarder runs `nsm forwarder`
 * beside the node's own, registered with the labels its manifest gives.
 *
 * What the runtime sets for it: its listen socket in the node's directory (upstream's default,
 * `unix:///listen.on.sock`, is one path per container there, shared here), the process identity
 * file the netns-ownership check needs (secure runtimes), and no tunnel IP: a pod forwarder serves
 * local (veth) connections; the node's forwarder keeps the tunnels (its VNIs and WireGuard ports
 * would clash with a second forwarder in the node netns).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { NodeState, RuntimePaths } from "./state.js";

/** Upstream forwarder images, run as `nsm forwarder`. */
export const FORWARDER_IMAGES = ["cmd-forwarder-vpp", "cmd-forwarder-kernel", "cmd-forwarder-ovs"] as const;

/** Adjusts the environment of a pod's forwarder container (see the module doc). */
export function podForwarderEnv(
  paths: RuntimePaths,
  node: NodeState,
  who: { namespace: string; pod: string; container: string },
  env: Record<string, string>,
): void {
  const id = createHash("sha256").update(`${who.namespace}/${who.pod}/${who.container}`).digest("hex").slice(0, 10);
  env.NSM_LISTEN_ON = `unix://${join(node.dir, `fwd-${id}.sock`)}`;
  delete env.NSM_TUNNEL_IP;
  if (env.NSM_INSECURE !== "true") env.NSM_PROCESS_IDENTITIES = paths.identitiesFile;
}
