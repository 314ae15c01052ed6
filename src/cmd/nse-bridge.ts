// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse bridge`: an L2 bridge service. Every client of the service gets an interface that is a
 * port of one Linux bridge in the endpoint's netns and an address from one subnet, so clients
 * reach each other (and the endpoint, at the subnet's first address) on-link.
 * Env: NSM_NAME (bridge-server), NSM_CONNECT_TO (unix:///var/lib/networkservicemesh/nsm.io.sock),
 * NSM_SERVICE_NAMES (bridge), NSM_LABELS, NSM_CIDR_PREFIX (169.254.0.0/16: the shared subnet),
 * NSM_REGISTER_SERVICE (true), NSM_EXPIRE (1m), NSM_LOG_LEVEL, and ours: NSM_BRIDGE_NAME
 * (nsm-br0); security as ./security.ts. The payload is ETHERNET.
 * A client that asks for an address outside the subnet is refused with InvalidArgument.
 */
import { Payload } from "../api/index.js";
import { createNetlinkKernel } from "../kernel/index.js";
import { kernelBridgeServer, setupBridgeDomain } from "../kernel/networkservice/bridge/index.js";
import { kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { subnetIpam } from "../sdk/networkservice/common/subnetipam/index.js";
import { validateInterfaceName } from "../sdk/tools/ifname.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, serveEndpointRole } from "./nse-serve.js";
import { roleSecurity } from "./security.js";
import { roleLogger } from "./serve.js";

/** `nsm nse bridge`: serves, registers through nsmgr, and stops on SIGTERM/SIGINT. */
export async function runBridge(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const name = env.string("NSM_NAME", "bridge-server");
  const connectTo = connectToOf(env);
  const services = env.list("NSM_SERVICE_NAMES", "bridge");
  if (services.length === 0) throw new ConfigError("NSM_SERVICE_NAMES", "", "needs at least one service name");
  const labels = env.parsed("NSM_LABELS", "", parseLabels);
  const ipam = env.parsed("NSM_CIDR_PREFIX", "169.254.0.0/16", subnetIpam);
  const bridge = env.parsed("NSM_BRIDGE_NAME", "nsm-br0", (v) => {
    validateInterfaceName(v);
    return v;
  });
  const registerService = env.bool("NSM_REGISTER_SERVICE", true);
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const log = roleLogger(env, name);
  const kernel = createNetlinkKernel();
  await setupBridgeDomain(kernel, undefined, bridge, ipam.gateway);
  log.info({ bridge, subnet: ipam.subnet, gateway: ipam.gateway }, "bridge ready");
  const sec = await roleSecurity(env, log);
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
      ipam.server,
      mechanismsServer({ KERNEL: kernelMechanismServer({ inodeUrl: `file:///proc/${process.pid}/ns/net` }) }),
      kernelBridgeServer({ kernel, bridge, gateway: ipam.gateway, log }),
    ],
    async () => {
      await kernel.deleteLink(undefined, bridge).catch(() => {});
      await kernel.close();
    },
  );
}
