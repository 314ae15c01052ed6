// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse icmp-responder`: the reference endpoint (upstream cmd-nse-icmp-responder).
 * Env: NSM_NAME (icmp-server), NSM_CONNECT_TO (unix:///var/lib/networkservicemesh/nsm.io.sock),
 * NSM_SERVICE_NAMES (icmp-responder), NSM_PAYLOAD (ETHERNET), NSM_LABELS, NSM_CIDR_PREFIX
 * (169.254.0.0/16; groups like "[a,b],c"), NSM_IPAM_POLICY (polite; strict resets client addresses
 * outside the prefixes or held by another connection), NSM_REGISTER_SERVICE (true), NSM_UNREGISTER_ITSELF
 * (false), NSM_EXPIRE (registration lifetime asked for, 1m), NSM_PBR_CONFIG_PATH (policy routes,
 * /etc/policy-based-routing/config.yaml; none when missing), NSM_DNS_CONFIGS (JSON array of DNSConfig,
 * e.g. `[{"dns_server_ips": ["172.16.1.100"], "search_domains": ["my.coredns.service"]}]`; default none),
 * NSM_IDLE_TIMEOUT (0: never; after that long without connections the endpoint unregisters and
 * exits 0, as upstream's scale-from-zero endpoints do), NSM_LOG_LEVEL; security
 * (./security.ts): SPIFFE_ENDPOINT_SOCKET, NSM_MAX_TOKEN_LIFETIME, NSM_REGISTRY_CLIENT_POLICIES,
 * NSM_SERVER_POLICIES, NSM_MONITOR_POLICIES, NSM_INSECURE.
 * Listens on unix://<temp dir>/listen.on and registers through nsmgr. It runs inside its pod's
 * network namespace and names that namespace by its own pid in the KERNEL mechanism.
 */
import { Payload } from "../api/index.js";
import { type NetworkServiceServer, passThrough } from "../sdk/core/chain.js";
import { NsmError } from "../sdk/core/errors.js";
import type { Logger } from "../sdk/core/logger.js";
import { parseNsmUrl } from "../sdk/grpc/dial.js";
import { dnsContextServer, parseDnsConfigs } from "../sdk/networkservice/common/dnscontext/index.js";
import { kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { onIdleServer } from "../sdk/networkservice/common/onidle/index.js";
import { point2pointIpamServer } from "../sdk/networkservice/common/point2pointipam/index.js";
import {
  DEFAULT_PBR_CONFIG_PATH,
  policyRouteServer,
  watchPolicyRoutes,
} from "../sdk/networkservice/common/policyroute/index.js";
import { strictIpamServer } from "../sdk/networkservice/common/strictipam/index.js";
import { parseCidrGroups } from "../sdk/tools/cidr.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { serveEndpoint } from "./nse-serve.js";
import { roleObservability } from "./observe.js";
import { roleSecurity } from "./security.js";
import { roleLogger, untilSignal } from "./serve.js";

/** What a custom endpoint adds to the reference endpoint. */
export interface RunEndpointOptions {
  /**
   * Server elements run for every Request and Close after IPAM (the connection has its
   * addresses) and before the KERNEL mechanism is applied. @default none
   */
  readonly additional?: readonly NetworkServiceServer[];
  /** `NSM_NAME` when the environment has none. @default "icmp-server" */
  readonly defaultName?: string;
}

/** NSM_IDLE_TIMEOUT: the onidle element, a promise resolving to true when idle, and how to cancel it. */
function idleStop(timeoutMs: number, log: Logger) {
  const cancel = new AbortController();
  let idle: (v: true) => void = () => {};
  const stopped = new Promise<true>((resolve) => {
    idle = resolve;
  });
  const element = onIdleServer({
    timeoutMs,
    signal: cancel.signal,
    onIdle: () => {
      log.info({ idleTimeoutMs: timeoutMs }, "no connection for NSM_IDLE_TIMEOUT: stopping");
      idle(true);
    },
  });
  return { element, stopped, cancel };
}

/** `nsm nse icmp-responder`. */
export function runIcmpResponder(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runEndpoint(vars);
}

/** The endpoint's settings from the environment (ConfigError naming the variable when one is wrong). */
function endpointSettings(env: Env, options: RunEndpointOptions) {
  const name = env.string("NSM_NAME", options.defaultName ?? "icmp-server");
  const connectTo = env.parsed("NSM_CONNECT_TO", "unix:///var/lib/networkservicemesh/nsm.io.sock", (v) => {
    parseNsmUrl(v);
    return v;
  });
  const services = env.list("NSM_SERVICE_NAMES", "icmp-responder");
  if (services.length === 0) throw new ConfigError("NSM_SERVICE_NAMES", "", "needs at least one service name");
  const payload = env.string("NSM_PAYLOAD", Payload.ETHERNET);
  if (payload !== Payload.ETHERNET && payload !== Payload.IP)
    throw new ConfigError("NSM_PAYLOAD", payload, "expected ETHERNET or IP");
  const labels = env.parsed("NSM_LABELS", "", parseLabels);
  const prefixes = env.parsed("NSM_CIDR_PREFIX", "169.254.0.0/16", (v) => {
    const groups = parseCidrGroups(v);
    if (groups.length === 0) throw new Error("needs at least one CIDR");
    point2pointIpamServer({ prefixes: groups });
    return groups;
  });
  const policy = env.parsed("NSM_IPAM_POLICY", "polite", (v) => {
    const p = v.trim().toLowerCase();
    if (p !== "polite" && p !== "strict") throw new Error("not a valid IPAM policy: expected polite or strict");
    return p;
  });
  const p2p = point2pointIpamServer({ prefixes });
  const ipam = policy === "strict" ? [strictIpamServer({ prefixes }), p2p] : [p2p];
  const registerService = env.bool("NSM_REGISTER_SERVICE", true);
  const unregisterItself = env.bool("NSM_UNREGISTER_ITSELF", false);
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const dns = dnsContextServer({ configs: env.parsed("NSM_DNS_CONFIGS", "[]", parseDnsConfigs) });
  const idleTimeoutMs = env.duration("NSM_IDLE_TIMEOUT", "0");
  const pbrConfigPath = env.string("NSM_PBR_CONFIG_PATH", DEFAULT_PBR_CONFIG_PATH);
  return {
    name,
    connectTo,
    services,
    payload,
    labels,
    ipam,
    dns,
    registerService,
    unregisterItself,
    expirationMs,
    idleTimeoutMs,
    pbrConfigPath,
  };
}

/** The policy routes of `NSM_PBR_CONFIG_PATH`, watched; ConfigError when the file is invalid. */
function policyRoutesOf(path: string, log: Parameters<typeof watchPolicyRoutes>[1]) {
  try {
    return watchPolicyRoutes(path, log);
  } catch (err) {
    throw new ConfigError("NSM_PBR_CONFIG_PATH", path, NsmError.from(err).rawMessage);
  }
}

/**
 * Runs an endpoint configured as upstream's cmd-nse-icmp-responder (the env above, read from
 * `vars`) with `options.additional` elements in its chain: serves, registers through nsmgr, and
 * stops on SIGTERM/SIGINT. Resolves to the process exit code.
 */
export async function runEndpoint(vars: NodeJS.ProcessEnv, options: RunEndpointOptions = {}): Promise<number> {
  const env = new Env(vars);
  const settings = endpointSettings(env, options);
  const { name, connectTo, services, payload, labels, dns, registerService, expirationMs } = settings;
  const log = roleLogger(env, name);
  const policies = policyRoutesOf(settings.pbrConfigPath, log);
  const obs = await roleObservability(env, "nse", name, log);
  const sec = await roleSecurity(env, log);
  const idle = idleStop(settings.idleTimeoutMs, log);
  const role = { name, connectTo, services, labels, expirationMs, log, sec, observe: obs.element };
  const served = await serveEndpoint(registerService ? { ...role, registerServices: payload } : role, [
    idle.element,
    ...settings.ipam,
    policyRouteServer(policies.get),
    dns,
    ...(options.additional ?? []),
    mechanismsServer({
      KERNEL: kernelMechanismServer({ inodeUrl: `file:///proc/${process.pid}/ns/net` }),
      NOOP: passThrough("noop"),
    }),
  ]);
  const idled = await Promise.race([untilSignal().then(() => false), idle.stopped]);
  idle.cancel.abort();
  await served.stop(settings.unregisterItself || idled);
  policies.close();
  sec.close();
  await obs.close();
  log.info("endpoint stopped");
  return 0;
}
