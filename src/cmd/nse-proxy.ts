// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse proxy`: an HTTP gateway (the mission's "Proxy" example; it stands in for upstream's
 * cmd-nse-l7-proxy image). HTTP servers inside the mesh connect to it as clients of its service;
 * it listens where callers outside the mesh reach it and forwards each HTTP request over the NSM
 * connection to one of those clients (in turn), at its address on the connection.
 * Env: NSM_NAME (proxy-server), NSM_CONNECT_TO (unix:///var/lib/networkservicemesh/nsm.io.sock),
 * NSM_SERVICE_NAMES (http-gateway), NSM_LABELS, NSM_CIDR_PREFIX (169.254.0.0/16; point-to-point:
 * the gateway takes the first address of each pair), NSM_REGISTER_SERVICE (true), NSM_EXPIRE
 * (1m), NSM_LOG_LEVEL; ours: NSM_PROXY_LISTEN_ON (0.0.0.0:8080: host:port of the HTTP listener, in
 * the endpoint's own network namespace, the side that stands for "outside the mesh"),
 * NSM_PROXY_TARGET_PORT (80: the port of the clients' HTTP servers), NSM_PROXY_TIMEOUT (10s: how
 * long a backend may take to answer); security as ./security.ts. The payload is ETHERNET.
 */
import { Payload } from "../api/index.js";
import { passThrough } from "../sdk/core/chain.js";
import {
  ClientAddresses,
  clientAddressesServer,
  httpReverseProxy,
} from "../sdk/networkservice/common/httpgateway/index.js";
import { kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { point2pointIpamServer } from "../sdk/networkservice/common/point2pointipam/index.js";
import { parseCidrGroups } from "../sdk/tools/cidr.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, serveEndpointRole } from "./nse-serve.js";
import { roleSecurity } from "./security.js";
import { roleLogger } from "./serve.js";

/** `host:port` (or `:port`) of NSM_PROXY_LISTEN_ON. */
function parseListenOn(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new Error('expected host:port, e.g. "0.0.0.0:8080"');
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** The gateway's settings from the environment (ConfigError naming the variable when one is wrong). */
export function proxySettings(env: Env) {
  const services = env.list("NSM_SERVICE_NAMES", "http-gateway");
  if (services.length === 0) throw new ConfigError("NSM_SERVICE_NAMES", "", "needs at least one service name");
  const ipam = env.parsed("NSM_CIDR_PREFIX", "169.254.0.0/16", (v) => {
    const groups = parseCidrGroups(v);
    if (groups.length === 0) throw new Error("needs at least one CIDR");
    return point2pointIpamServer({ prefixes: groups });
  });
  return {
    name: env.string("NSM_NAME", "proxy-server"),
    connectTo: connectToOf(env),
    services,
    labels: env.parsed("NSM_LABELS", "", parseLabels),
    ipam,
    registerService: env.bool("NSM_REGISTER_SERVICE", true),
    expirationMs: env.duration("NSM_EXPIRE", "1m"),
    listenOn: env.parsed("NSM_PROXY_LISTEN_ON", "0.0.0.0:8080", parseListenOn),
    targetPort: env.int("NSM_PROXY_TARGET_PORT", 80, 1, 65535),
    timeoutMs: env.duration("NSM_PROXY_TIMEOUT", "10s"),
  };
}

/** `nsm nse proxy`: serves HTTP and the endpoint, registers through nsmgr, stops on SIGTERM/SIGINT. */
export async function runProxy(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const s = proxySettings(env);
  const log = roleLogger(env, s.name);
  const addresses = new ClientAddresses();
  const proxy = httpReverseProxy({
    backend: () => addresses.next(),
    targetPort: s.targetPort,
    timeoutMs: s.timeoutMs,
    log,
  });
  const bound = await proxy.listen(s.listenOn.port, s.listenOn.host);
  log.info({ address: bound.address, port: bound.port, targetPort: s.targetPort }, "HTTP gateway listening");
  const sec = await roleSecurity(env, log);
  const role = {
    name: s.name,
    connectTo: s.connectTo,
    services: s.services,
    labels: s.labels,
    registerServices: s.registerService ? Payload.ETHERNET : undefined,
    expirationMs: s.expirationMs,
    log,
    sec,
  };
  return serveEndpointRole(
    role,
    [
      clientAddressesServer(addresses),
      s.ipam,
      mechanismsServer({
        KERNEL: kernelMechanismServer({ inodeUrl: `file:///proc/${process.pid}/ns/net` }),
        NOOP: passThrough("noop"),
      }),
    ],
    () => proxy.close(),
  );
}
