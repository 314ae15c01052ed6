// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse bridge`: an L2 bridge service. Every client of the service gets an interface that is a
 * port of one Linux bridge in the endpoint's netns and an address from one subnet, so clients
 * reach each other (and the endpoint, at the subnet's first address) on-link.
 * Env: NSM_NAME (bridge-server), NSM_CONNECT_TO (unix:///var/lib/networkservicemesh/nsm.io.sock),
 * NSM_SERVICE_NAMES (bridge), NSM_LABELS, NSM_CIDR_PREFIX (169.254.0.0/16: the shared subnet),
 * NSM_REGISTER_SERVICE (true), NSM_EXPIRE (1m), NSM_LOG_LEVEL, and ours: NSM_BRIDGE_NAME
 * (nsm-br0), NSM_BRIDGE_DOMAIN (false: true joins this endpoint's bridge with the bridges of the
 * other endpoints registered for the first service, one per node, into one L2 segment, see
 * src/kernel/networkservice/bridge/domain.ts), NSM_BRIDGE_RANGE (the part of NSM_CIDR_PREFIX this
 * endpoint hands out; every endpoint of a domain gets its own; default the whole subnet),
 * NSM_BRIDGE_PEER_INTERVAL (2s: how often the registry is looked at for the domain's hub),
 * NSM_BRIDGE_MTU (the MTU of client connections; 1450 with NSM_BRIDGE_DOMAIN, for VXLAN's 50 bytes
 * under a 1500-byte underlay, else the forwarder's);
 * security as ./security.ts. The payload is ETHERNET.
 * A client that asks for an address outside the subnet (or outside this endpoint's range) is
 * refused with InvalidArgument.
 */
import { Payload } from "../api/index.js";
import type { KernelApi } from "../kernel/api.js";
import { createNetlinkKernel } from "../kernel/index.js";
import {
  BridgeDomainPeers,
  clientMtuServer,
  kernelBridgeServer,
  setupBridgeDomain,
  unlessBridgePeer,
} from "../kernel/networkservice/bridge/index.js";
import type { Logger } from "../sdk/core/logger.js";
import { closeChannel, dialChannel } from "../sdk/grpc/dial.js";
import { registryClients } from "../sdk/grpc/registry.js";
import { kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { subnetIpam } from "../sdk/networkservice/common/subnetipam/index.js";
import { registryClient } from "../sdk/registry/chains/client/index.js";
import { validateInterfaceName } from "../sdk/tools/ifname.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, serveEndpointRole } from "./nse-serve.js";
import { type RoleSecurity, roleSecurity } from "./security.js";
import { roleLogger } from "./serve.js";

/** `nsm nse bridge`: serves, registers through nsmgr, and stops on SIGTERM/SIGINT. */
export async function runBridge(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const name = env.string("NSM_NAME", "bridge-server");
  const connectTo = connectToOf(env);
  const services = env.list("NSM_SERVICE_NAMES", "bridge");
  if (services.length === 0) throw new ConfigError("NSM_SERVICE_NAMES", "", "needs at least one service name");
  const labels = env.parsed("NSM_LABELS", "", parseLabels);
  const whole = env.parsed("NSM_CIDR_PREFIX", "169.254.0.0/16", subnetIpam);
  const ipam = env.raw("NSM_BRIDGE_RANGE")
    ? env.parsed("NSM_BRIDGE_RANGE", "", (r) => subnetIpam(whole.subnet, r))
    : whole;
  const bridge = env.parsed("NSM_BRIDGE_NAME", "nsm-br0", (v) => {
    validateInterfaceName(v);
    return v;
  });
  const registerService = env.bool("NSM_REGISTER_SERVICE", true);
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const domain = env.bool("NSM_BRIDGE_DOMAIN", false);
  const peerIntervalMs = env.duration("NSM_BRIDGE_PEER_INTERVAL", "2s");
  const mtu = env.int("NSM_BRIDGE_MTU", domain ? 1450 : 0, 0, 65535);
  const log = roleLogger(env, name);
  const kernel = createNetlinkKernel();
  await setupBridgeDomain(kernel, undefined, bridge, ipam.gateway);
  log.info({ bridge, subnet: ipam.subnet, gateway: ipam.gateway, domain }, "bridge ready");
  const sec = await roleSecurity(env, log);
  const inodeUrl = `file:///proc/${process.pid}/ns/net`;
  const peers = domain
    ? await startPeering({ name, connectTo, service: services[0]!, bridge, kernel, inodeUrl, peerIntervalMs, sec, log })
    : undefined;
  const role = {
    name,
    connectTo,
    services,
    labels,
    registerServices: registerService ? Payload.ETHERNET : undefined,
    expirationMs,
    log,
    sec,
  };
  return serveEndpointRole(
    role,
    [
      unlessBridgePeer(ipam.server),
      mechanismsServer({ KERNEL: kernelMechanismServer({ inodeUrl }) }),
      kernelBridgeServer({ kernel, bridge, gateway: ipam.gateway, log }),
      ...(mtu > 0 ? [unlessBridgePeer(clientMtuServer(mtu))] : []),
    ],
    async () => {
      await peers?.stop();
      await kernel.deleteLink(undefined, bridge).catch(() => {});
      await kernel.close();
    },
  );
}

interface PeeringConfig {
  readonly name: string;
  readonly connectTo: string;
  readonly service: string;
  readonly bridge: string;
  readonly kernel: KernelApi;
  readonly inodeUrl: string;
  readonly peerIntervalMs: number;
  readonly sec: RoleSecurity;
  readonly log: Logger;
}

/** Starts linking this bridge to the domain's hub (found in the registry through nsmgr). */
async function startPeering(c: PeeringConfig): Promise<{ stop(): Promise<void> }> {
  const channel = dialChannel(c.connectTo, c.sec.dialOptions());
  const lifetime = new AbortController();
  const registry = registryClient({
    registry: registryClients(channel),
    signal: lifetime.signal,
    security: c.sec.registryClient(await c.sec.policies("registryClient")),
  });
  const peers = new BridgeDomainPeers({
    ...c,
    ...c.sec.dialOptions(),
    registry: registry.nse,
    intervalMs: c.peerIntervalMs,
    authorize: c.sec.clientAuthorize(await c.sec.policies("client")),
  });
  peers.start();
  return {
    async stop() {
      await peers.stop();
      lifetime.abort();
      closeChannel(channel);
    },
  };
}
