// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse supplier`: scale from zero (upstream cmd-nse-supplier-k8s). Registered as the
 * fall-back endpoint of a service, it answers a client that found no endpoint by starting one
 * from a pod template on the client's node (the sdk's createpod element), and deletes the pods it
 * made once they finished (endpoints stopped by their NSM_IDLE_TIMEOUT).
 * Env (upstream's): NSM_NAME (nse-supplier-k8s), NSM_CONNECT_TO
 * (unix:///var/lib/networkservicemesh/nsm.io.sock), NSM_SERVICE_NAME (nse-supplier-k8s),
 * NSM_PAYLOAD (ETHERNET), NSM_LABELS, NSM_POD_DESCRIPTION_FILE (pod.yaml: the template),
 * NSM_NAMESPACE (default: where pods are made), NSM_LOG_LEVEL; ours: NSM_POD_DESCRIPTION (the
 * template inline, instead of the file, for runtimes without ConfigMap volumes), NSM_EXPIRE (1m); security
 * as ./security.ts. The `createdBy` label of the pods is HOSTNAME (the pod's name), as upstream.
 * Where pods are made: the local runtime when NSM_LOCAL_STATE_DIR names its state directory (the
 * runtime gives it to every role it runs), else the Kubernetes API (KUBECONFIG, or in cluster).
 * A template that cannot be read or rendered stops the supplier at start, naming the file.
 */
import { readFileSync } from "node:fs";
import { ConnectionSchema, create, Payload } from "../api/index.js";
import type { Logger } from "../sdk/core/logger.js";
import {
  createPodServer,
  type PodLauncher,
  reapCompletedPods,
  renderPod,
} from "../sdk/networkservice/common/createpod/index.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, serveEndpointRole } from "./nse-serve.js";
import { roleSecurity } from "./security.js";
import { roleLogger } from "./serve.js";

/** NSM_POD_DESCRIPTION (inline) or NSM_POD_DESCRIPTION_FILE, read and checked by rendering it once. */
export function podTemplateOf(env: Env): string {
  const inline = env.raw("NSM_POD_DESCRIPTION");
  const file = env.string("NSM_POD_DESCRIPTION_FILE", "pod.yaml");
  const [variable, shown] = inline ? ["NSM_POD_DESCRIPTION", "(inline)"] : ["NSM_POD_DESCRIPTION_FILE", file];
  let text: string;
  try {
    text = inline ?? readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(variable, shown, `cannot read it: ${(err as Error).message}`);
  }
  try {
    renderPod(text, create(ConnectionSchema, { id: "check", networkService: "check", labels: { nodeName: "node" } }));
  } catch (err) {
    throw new ConfigError(variable, shown, (err as Error).message);
  }
  return text;
}

/** The local runtime's pods when NSM_LOCAL_STATE_DIR is set, else the Kubernetes API's. */
async function podLauncher(env: Env, log: Logger): Promise<PodLauncher> {
  const stateDir = env.raw("NSM_LOCAL_STATE_DIR");
  if (stateDir) {
    const { localPodLauncher } = await import("../local/supplier.js");
    const { runtimePaths } = await import("../local/state.js");
    const { localConfigFrom } = await import("./local.js");
    return localPodLauncher({ paths: runtimePaths(stateDir), log, config: localConfigFrom(env) });
  }
  // client-node takes seconds to load: only when chosen.
  const { CoreV1Api, KubeConfig } = await import("@kubernetes/client-node");
  const { k8sPodLauncher } = await import("../k8s/supplier/launcher.js");
  const kc = new KubeConfig();
  const kubeconfig = env.raw("KUBECONFIG");
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  return k8sPodLauncher(kc.makeApiClient(CoreV1Api));
}

/** `nsm nse supplier`: serves, registers through nsmgr, and stops on SIGTERM/SIGINT. */
export async function runSupplier(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const name = env.string("NSM_NAME", "nse-supplier-k8s");
  const connectTo = connectToOf(env);
  const service = env.string("NSM_SERVICE_NAME", "nse-supplier-k8s");
  if (!service) throw new ConfigError("NSM_SERVICE_NAME", "", "needs a service name");
  const payload = env.string("NSM_PAYLOAD", Payload.ETHERNET);
  if (payload !== Payload.ETHERNET && payload !== Payload.IP)
    throw new ConfigError("NSM_PAYLOAD", payload, "expected ETHERNET or IP");
  const labels = env.parsed("NSM_LABELS", "", parseLabels);
  const template = podTemplateOf(env);
  const namespace = env.string("NSM_NAMESPACE", "default");
  const owner = env.string("HOSTNAME", name);
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const log = roleLogger(env, name);
  const launcher = await podLauncher(env, log);
  const sec = await roleSecurity(env, log);
  const stop = new AbortController();
  const reaping = reapCompletedPods({ launcher, namespace, owner, signal: stop.signal, log });
  const role = { name, connectTo, services: [service], labels, expirationMs, log, sec };
  log.info({ service, namespace, owner }, "supplier ready");
  return serveEndpointRole(role, [createPodServer({ launcher, template, namespace, owner })], async () => {
    stop.abort();
    await reaping;
  });
}
