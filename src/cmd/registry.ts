// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm registry`: the cluster registry (upstream cmd-registry-memory and cmd-registry-k8s).
 * Env: NSM_LISTEN_ON (default unix:///listen.on.socket), NSM_EXPIRE (NSE lifetime, 1m),
 * NSM_LOG_LEVEL; security (./security.ts): SPIFFE_ENDPOINT_SOCKET, NSM_MAX_TOKEN_LIFETIME,
 * NSM_REGISTRY_SERVER_POLICIES (common + registry + server), NSM_INSECURE.
 * Storage, NSM_REGISTRY_BACKEND (default memory):
 * - `memory`: records in this process (one replica; lost on restart);
 * - `etcd`: NSM_ETCD_ENDPOINTS (comma-separated, default http://127.0.0.1:2379),
 *   NSM_ETCD_PREFIX (default /nsm/registry);
 * - `k8s`: custom resources in NSM_NAMESPACE (default `default`, as upstream) of the cluster in
 *   KUBECONFIG (a file) or, without it, the in-cluster service account; NSM_EXPIRE_PERIOD
 *   (default 1m, as upstream) is how often expired NSE resources left by a dead replica are
 *   deleted.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../sdk/core/logger.js";
import { serveRegistry } from "../sdk/grpc/registry.js";
import { memoryRegistry } from "../sdk/registry/chains/memory/index.js";
import type { RegistryChains, RegistrySecurity } from "../sdk/registry/chains/slots.js";
import { Env } from "./env.js";
import { roleObservability } from "./observe.js";
import { roleSecurity } from "./security.js";
import { listen, listenUrls, roleLogger, shutdown, startupMilestones, untilSignal } from "./serve.js";

export const REGISTRY_BACKENDS = ["memory", "etcd", "k8s"] as const;

interface Backend {
  readonly chains: RegistryChains;
  close(): void;
}

interface BackendInput {
  readonly expirationMs: number;
  readonly signal: AbortSignal;
  readonly security: RegistrySecurity | undefined;
  readonly log: Logger;
}

// The etcd and Kubernetes clients are loaded only when chosen (client-node takes seconds to load).
async function k8sBackend(env: Env, input: BackendInput): Promise<Backend> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const { k8sStores } = await import("../k8s/registry/store.js");
  const { storeRegistry } = await import("../registry-store/chain.js");
  const kc = new KubeConfig();
  const file = env.raw("KUBECONFIG");
  if (file) kc.loadFromFile(file);
  else kc.loadFromCluster();
  const namespace = env.string("NSM_NAMESPACE", "default");
  const sweepMs = env.duration("NSM_EXPIRE_PERIOD", "1m");
  const stores = k8sStores(kc, namespace);
  const sweep = () =>
    stores.nse.sweepExpired().then(
      (n) => n > 0 && input.log.info({ deleted: n }, "deleted expired NetworkServiceEndpoints"),
      (err: unknown) => input.log.warn({ err: String(err) }, "sweeping expired NetworkServiceEndpoints failed"),
    );
  void sweep();
  const timer = setInterval(sweep, sweepMs);
  input.log.info({ server: kc.getCurrentCluster()?.server, namespace }, "registry on Kubernetes custom resources");
  return {
    chains: storeRegistry({ nseStore: stores.nse, nsStore: stores.ns, ...input }),
    close: () => clearInterval(timer),
  };
}

async function registryBackend(env: Env, input: BackendInput): Promise<Backend> {
  const kind = env.string("NSM_REGISTRY_BACKEND", "memory");
  switch (kind) {
    case "memory":
      return { chains: memoryRegistry(input), close: () => {} };
    case "etcd": {
      const { etcdStores } = await import("../etcd/store.js");
      const { storeRegistry } = await import("../registry-store/chain.js");
      const endpoints = env.list("NSM_ETCD_ENDPOINTS", "http://127.0.0.1:2379");
      const stores = etcdStores({ endpoints, prefix: env.string("NSM_ETCD_PREFIX", "/nsm/registry") });
      input.log.info({ endpoints }, "registry on etcd");
      return { chains: storeRegistry({ nseStore: stores.nse, nsStore: stores.ns, ...input }), close: stores.close };
    }
    case "k8s":
      return k8sBackend(env, input);
    default:
      throw new Error(`NSM_REGISTRY_BACKEND=${kind}: want one of ${REGISTRY_BACKENDS.join(", ")}`);
  }
}

export async function runRegistry(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const listenOn = listenUrls(env, "NSM_LISTEN_ON", "unix:///listen.on.socket");
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const log = roleLogger(env, "registry");
  const obs = await roleObservability(env, "registry", "registry", log);
  const sec = await roleSecurity(env, log);
  const security = sec.registryServer(await sec.policies("registryServer"));
  const lifetime = new AbortController();
  const backend = await registryBackend(env, { expirationMs, signal: lifetime.signal, security, log });
  const server = new grpc.Server();
  const chains = obs.metrics
    ? (await import("../observe/registry.js")).observeRegistry(backend.chains, obs.metrics.registry)
    : backend.chains;
  serveRegistry(server, chains, { log });
  const urls = await listen(server, listenOn, sec, log);
  log.info({ urls, expirationMs, startupMs: startupMilestones("serving") }, "registry serving");
  await untilSignal();
  lifetime.abort();
  await shutdown(server);
  backend.close();
  sec.close();
  await obs.close();
  log.info("registry stopped");
  return 0;
}
