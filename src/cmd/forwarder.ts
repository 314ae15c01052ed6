// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm forwarder`: the kernel forwarder: veth for local connections; with a tunnel IP, VXLAN
 * (ETHERNET payload) and WireGuard through wireguard-go (IP payload) for remote ones.
 * Env: NSM_NAME (forwarder), NSM_LABELS (p2p:true), NSM_NSNAME (forwarder), NSM_CONNECT_TO
 * (unix:///var/lib/networkservicemesh/nsm.io.sock), NSM_LISTEN_ON (unix:///listen.on.sock),
 * NSM_DIAL_TIMEOUT (750ms), NSM_TUNNEL_IP (none: local connections only; it must be an address
 * of this netns), NSM_VXLAN_PORT (4789), NSM_WIREGUARD_PORT (51820, first of the per-tunnel
 * ports), NSM_MECHANISM_PRIORITY (none), NSM_LOG_LEVEL. Runs in the node's network namespace,
 * where its tunnel sockets and wireguard-go processes live.
 * Restart: every interface is tagged with its owner, `NSM_NAME@<inode of the forwarder's netns>`
 * (NSM_NAME must stay the same across restarts; the netns qualifies it, because several local
 * clusters on one machine each have a `forwarder-node-1`, but never in the same node netns).
 * At start the forwarder finds what an earlier life of the same owner left (it was killed); the
 * connections refreshed within NSM_RECONCILE_GRACE (a Go duration; default
 * NSM_MAX_TOKEN_LIFETIME, 10m: a live connection is refreshed before its tokens expire) keep
 * their interfaces, the others' are deleted and their wireguard-go processes stopped.
 * Security (./security.ts): SPIFFE_ENDPOINT_SOCKET, NSM_MAX_TOKEN_LIFETIME,
 * NSM_REGISTRY_CLIENT_POLICIES, NSM_SERVER_POLICIES, NSM_CLIENT_POLICIES, NSM_MONITOR_POLICIES,
 * NSM_INSECURE; NSM_PROCESS_IDENTITIES (ours): the root-only process identity file the netns
 * ownership check resolves `file:///proc/<pid>/ns/net` owners from (without it, in secure mode,
 * KERNEL connections are refused).
 */

import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { MonitorConnection } from "../api/gen/connection_pb.js";
import { NetworkService } from "../api/gen/networkservice_pb.js";
import { NetworkServiceEndpointSchema } from "../api/gen/registry_pb.js";
import { createNetlinkKernel, type KernelApi } from "../kernel/index.js";
import { kernelForwarderElements } from "../kernel/networkservice/index.js";
import { interfaceMetrics } from "../observe/interfaces.js";
import { CallContext } from "../sdk/core/context.js";
import type { Logger } from "../sdk/core/logger.js";
import { closeChannel, dialChannel, parseNsmUrl } from "../sdk/grpc/dial.js";
import { type Registries, registryClients } from "../sdk/grpc/registry.js";
import { endOpenStreams } from "../sdk/grpc/service.js";
import { createForwarder } from "../sdk/networkservice/chains/forwarder/index.js";
import { registryClient } from "../sdk/registry/chains/client/index.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { netnsOwnership } from "../security/networkservice/netnsowner.js";
import { processIdentityResolver } from "../security/workloadapi/processes.js";
import { Env, parseDuration } from "./env.js";
import { type RoleObservability, roleObservability } from "./observe.js";
import { type RoleSecurity, roleSecurity } from "./security.js";
import { listen, listenUrls, roleLogger, serveWhenBuilt, shutdown, startupMilestones, untilSignal } from "./serve.js";

/**
 * NSM_RECONCILE_GRACE, by default the longest token lifetime (NSM_MAX_TOKEN_LIFETIME, 10m; a
 * negative one, tokens born expired, leaves the 10m default).
 */
function reconcileGrace(env: Env): number {
  if (env.raw("NSM_RECONCILE_GRACE") === undefined) {
    const lifetime = env.duration("NSM_MAX_TOKEN_LIFETIME", "10m");
    return lifetime >= 0 ? lifetime : 10 * 60_000;
  }
  return env.parsed("NSM_RECONCILE_GRACE", "10m", (v) => {
    const ms = parseDuration(v);
    if (ms === undefined || ms < 0) throw new Error('not a duration ≥ 0 (examples: "30s", "10m")');
    return ms;
  });
}

/** The forwarder's configuration from the environment (see the module doc). */
function forwarderConfig(env: Env) {
  return {
    name: env.string("NSM_NAME", "forwarder"),
    labels: env.parsed("NSM_LABELS", "p2p:true", parseLabels),
    nsName: env.string("NSM_NSNAME", "forwarder"),
    connectTo: env.parsed("NSM_CONNECT_TO", "unix:///var/lib/networkservicemesh/nsm.io.sock", (v) => {
      parseNsmUrl(v);
      return v;
    }),
    listenOn: listenUrls(env, "NSM_LISTEN_ON", "unix:///listen.on.sock"),
    dialTimeoutMs: env.duration("NSM_DIAL_TIMEOUT", "750ms"),
    identities: env.raw("NSM_PROCESS_IDENTITIES"),
    tunnelIp: env.raw("NSM_TUNNEL_IP") || undefined,
    vxlanPort: env.int("NSM_VXLAN_PORT", 4789, 1, 65535),
    wireguardPort: env.int("NSM_WIREGUARD_PORT", 51820, 1, 65535),
    mechanismPriority: env.list("NSM_MECHANISM_PRIORITY"),
    reconcileGraceMs: reconcileGrace(env),
  };
}

/**
 * The kernel data plane, with its netns-ownership check: only namespaces the requesting side
 * owns (src/security/networkservice/netnsowner.ts). The check is off only in insecure mode
 * (NSM_INSECURE=true), where it still checks the URL form and warns on every connection.
 */
async function kernelDataPlane(
  config: ReturnType<typeof forwarderConfig>,
  kernel: KernelApi,
  tagOwner: string,
  insecure: boolean,
  log: Logger,
) {
  const { identities } = config;
  const ownership = netnsOwnership({
    insecure,
    resolveIdentity: identities ? processIdentityResolver(identities) : undefined,
    log,
  });
  return await kernelForwarderElements({
    kernel,
    tunnelIp: config.tunnelIp,
    vxlanPort: config.vxlanPort,
    wireguard: { port: config.wireguardPort },
    mechanismPriority: config.mechanismPriority,
    netnsOwnership: ownership,
    owner: tagOwner,
    reconcileGraceMs: config.reconcileGraceMs,
    log,
  });
}

interface ForwarderParts {
  readonly config: ReturnType<typeof forwarderConfig>;
  readonly kernel: KernelApi;
  readonly sec: RoleSecurity;
  readonly obs: RoleObservability;
  readonly viaNsmgr: Registries;
  readonly node: string | undefined;
  readonly log: Logger;
}

/** The data plane (with its start scan for what an earlier life left) and the forwarder chain on it. */
async function buildForwarder(p: ForwarderParts) {
  const { config, kernel, sec, obs, viaNsmgr, log } = p;
  const tagOwner = `${config.name}@${(await kernel.netnsId(undefined)).ino}`;
  const dataPlane = await kernelDataPlane(config, kernel, tagOwner, sec.insecure, log);
  const counters = interfaceMetrics({ kernel, name: config.name, node: p.node, log });
  if (obs.metrics) await counters.register(obs.metrics.registry);
  const monitorPolicies = await sec.policies("monitor");
  const forwarder = createForwarder({
    name: config.name,
    nsRegistry: viaNsmgr.ns,
    nseRegistry: viaNsmgr.nse,
    dialTimeoutMs: config.dialTimeoutMs,
    ...sec.endpoint(await sec.policies("server")),
    dialOptions: sec.dialOptions(),
    clientAuthorize: sec.clientAuthorize(await sec.policies("client")),
    monitorService: (service) => sec.monitor(service, monitorPolicies),
    serverMechanisms: dataPlane.serverMechanisms,
    clientMechanisms: dataPlane.clientMechanisms,
    first: dataPlane.first,
    // After the data plane's elements (under recvfd), so it sees the netns the cross-connect used.
    additional: [...dataPlane.additional, counters.server],
    observe: obs.element,
    additionalClient: dataPlane.additionalClient,
    log,
  });
  return { tagOwner, dataPlane, forwarder };
}

export async function runForwarder(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const config = forwarderConfig(env);
  const { name, labels, nsName, connectTo, listenOn, tunnelIp, reconcileGraceMs } = config;
  const log = roleLogger(env, name);
  const obs = await roleObservability(env, "forwarder", name, log);
  const sec = await roleSecurity(env, log);
  const lifetime = new AbortController();
  const kernel = createNetlinkKernel();
  const nsmgrChannel = dialChannel(connectTo, sec.dialOptions());
  const viaNsmgr = registryClients(nsmgrChannel);
  const building = buildForwarder({ config, kernel, sec, obs, viaNsmgr, node: vars.NODE_NAME, log });
  // Listen at once: a Request that comes while the data plane is being built (and scans the
  // node for what an earlier life left) waits for it instead of being refused.
  const server = new grpc.Server();
  const built = building.then((b) => (standIn: grpc.Server) => b.forwarder.register(standIn));
  const standIn = serveWhenBuilt(server, [NetworkService, MonitorConnection], built);
  const [url] = await listen(server, listenOn, sec, log);
  const { tagOwner, dataPlane, forwarder } = await building;
  const registration = registryClient({
    registry: viaNsmgr,
    signal: lifetime.signal,
    security: sec.registryClient(await sec.policies("registryClient")),
  });
  const record = create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: [nsName],
    networkServiceLabels: { [nsName]: { labels } },
    url,
  });
  await registration.nse.register(record, CallContext.create({ deadline: Date.now() + 15_000, log }));
  const fields = { url, nsmgr: connectTo, labels, tunnelIp, underlayMtu: dataPlane.underlayMtu, tagOwner };
  log.info(
    { ...fields, reconcileGraceMs, startupMs: startupMilestones("registered") },
    "forwarder serving and registered",
  );
  await untilSignal();
  lifetime.abort();
  forwarder.dispose();
  await dataPlane.dispose();
  endOpenStreams(standIn);
  await shutdown(server);
  // A Close served while the server shut down may have left a deletion in flight.
  await dataPlane.deletions.drain();
  closeChannel(nsmgrChannel);
  await kernel.close();
  sec.close();
  await obs.close();
  log.info("forwarder stopped");
  return 0;
}
