// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nsmgr`: the node's network service manager (upstream cmd-nsmgr).
 * Env: NSM_NAME (nmgr), NSM_LISTEN_ON (unix:///var/lib/networkservicemesh/nsm.io.sock; the first
 * tcp:// URL, else the first URL, is the public URL), NSM_REGISTRY_URL (tcp://localhost:5001;
 * empty → in-memory registry), NSM_DIAL_TIMEOUT (750ms), NSM_FORWARDER_NETWORK_SERVICE_NAME
 * (forwarder), NSM_EXPIRE (1m), NSM_EXCLUDED_PREFIXES_FILE (ours: where the exclude-prefixes sidecar writes
 * the node's excluded prefixes; upstream's fixed path /var/lib/networkservicemesh/config/excluded_prefixes.yaml),
 * NODE_NAME, POD_NAME, CLUSTER_NAME, NSM_LOG_LEVEL; security
 * (./security.ts): SPIFFE_ENDPOINT_SOCKET, NSM_MAX_TOKEN_LIFETIME, NSM_REGISTRY_SERVER_POLICIES,
 * NSM_REGISTRY_CLIENT_POLICIES, NSM_SERVER_POLICIES, NSM_MONITOR_POLICIES, NSM_INSECURE.
 */
import * as grpc from "@grpc/grpc-js";
import { closeChannel, dialChannel, parseNsmUrl } from "../sdk/grpc/dial.js";
import { registryClients } from "../sdk/grpc/registry.js";
import { createNsmgr } from "../sdk/networkservice/chains/nsmgr/index.js";
import { EXCLUDED_PREFIXES_FILE } from "../sdk/networkservice/common/excludedprefixes/index.js";
import { Env } from "./env.js";
import { roleObservability } from "./observe.js";
import { roleSecurity } from "./security.js";
import { listen, listenUrls, roleLogger, shutdown, startupMilestones, untilSignal } from "./serve.js";

export async function runNsmgr(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const name = env.string("NSM_NAME", "nmgr");
  const listenOn = listenUrls(env, "NSM_LISTEN_ON", "unix:///var/lib/networkservicemesh/nsm.io.sock");
  const registryUrl = vars.NSM_REGISTRY_URL === undefined ? "tcp://localhost:5001" : vars.NSM_REGISTRY_URL;
  if (registryUrl) env.parsed("NSM_REGISTRY_URL", registryUrl, parseNsmUrl);
  const dialTimeoutMs = env.duration("NSM_DIAL_TIMEOUT", "750ms");
  const forwarderServiceName = env.string("NSM_FORWARDER_NETWORK_SERVICE_NAME", "forwarder");
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const excludedPrefixesFile = env.string("NSM_EXCLUDED_PREFIXES_FILE", EXCLUDED_PREFIXES_FILE);
  const log = roleLogger(env, name);
  const obs = await roleObservability(env, "nsmgr", name, log);
  const sec = await roleSecurity(env, log);
  const monitorPolicies = await sec.policies("monitor");

  const publicUrl = listenOn.find((u) => u.startsWith("tcp://")) ?? listenOn[0]!;
  const lifetime = new AbortController();
  const channel = registryUrl ? dialChannel(registryUrl, sec.dialOptions()) : undefined;
  const nsmgr = createNsmgr({
    name,
    url: publicUrl,
    registry: channel
      ? sec.secureRegistryClients(registryClients(channel), await sec.policies("registryClient"))
      : undefined,
    registrySecurity: sec.registryServer(await sec.policies("registryServer")),
    ...sec.endpoint(await sec.policies("server")),
    dialOptions: sec.dialOptions(),
    monitorService: (service) => sec.monitor(service, monitorPolicies),
    dialTimeoutMs,
    forwarderServiceName,
    expirationMs,
    excludedPrefixesFile,
    clientInfo: { nodeName: vars.NODE_NAME, podName: vars.POD_NAME, clusterName: vars.CLUSTER_NAME },
    signal: lifetime.signal,
    observe: obs.element,
    log,
  });
  const server = new grpc.Server();
  nsmgr.register(server);
  const urls = await listen(server, listenOn, sec, log);
  log.info(
    { urls, publicUrl, registry: registryUrl || "memory", startupMs: startupMilestones("serving") },
    "nsmgr serving",
  );
  await untilSignal();
  lifetime.abort();
  nsmgr.dispose();
  await shutdown(server);
  if (channel) closeChannel(channel);
  sec.close();
  await obs.close();
  log.info("nsmgr stopped");
  return 0;
}
