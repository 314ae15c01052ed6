// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse external`: connects clients to a network outside the mesh (stands in for upstream's
 * cmd-nse-remote-vlan, the VLAN breakout endpoint). Clients share one segment with the endpoint
 * (a Linux bridge, addresses from NSM_CIDR_PREFIX, the endpoint at the first one) and get routes
 * to the outside through it; the endpoint reaches the outside through its uplink, a veth to a
 * network namespace that stands for the outside network (created at start, removed at stop, see
 * src/kernel/networkservice/external). The payload is ETHERNET.
 *
 * Env (upstream names): NSM_NAME (external-server), NSM_CONNECT_TO
 * (unix:///var/lib/networkservicemesh/nsm.io.sock), NSM_SERVICE_NAMES (external) or upstream's
 * NSM_SERVICES (`name { vlan: 100; via: gw1 }, …`: the names are served; `vlan` and `via` have no
 * meaning without a VLAN-capable uplink and are logged and ignored), NSM_LABELS, NSM_CIDR_PREFIX
 * (172.16.5.0/24: the clients' subnet), NSM_REGISTER_SERVICE (true), NSM_EXPIRE (1m),
 * NSM_LOG_LEVEL; ours: NSM_EXTERNAL_NETNS (the outside's netns name; default the endpoint's own
 * netns name + `-outside` when it has one, else `nsm-outside-<NSM_NAME>`), NSM_EXTERNAL_ADDRESSES
 * (203.0.113.1/24: the outside's address plan, on its `lan0`), NSM_EXTERNAL_ROUTES (the prefixes
 * clients reach through the endpoint; default the networks of NSM_EXTERNAL_ADDRESSES),
 * NSM_UPLINK_CIDR (192.0.2.0/30: the uplink's link net, endpoint first, router second),
 * NSM_EXTERNAL_NAT (true: masquerade clients behind the uplink address), NSM_BRIDGE_NAME
 * (nsm-br0); security as ./security.ts. A bad value stops the endpoint at start with one line
 * naming the variable.
 */
import { readdirSync, statSync } from "node:fs";
import { Payload } from "../api/index.js";
import type { KernelApi } from "../kernel/api.js";
import { createNetlinkKernel } from "../kernel/index.js";
import { kernelBridgeServer, setupBridgeDomain } from "../kernel/networkservice/bridge/index.js";
import {
  createOutsideNetwork,
  externalRoutesServer,
  type OutsideNetworkPlan,
  removeOutsideNetwork,
} from "../kernel/networkservice/external/index.js";
import { kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { type SubnetIpam, subnetIpam } from "../sdk/networkservice/common/subnetipam/index.js";
import { type Cidr, formatIp, IpPool, parseCidr } from "../sdk/tools/cidr.js";
import { validateInterfaceName } from "../sdk/tools/ifname.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, type EndpointRole, serveEndpointRole } from "./nse-serve.js";
import { type RoleSecurity, roleSecurity } from "./security.js";
import { roleLogger } from "./serve.js";

/** Upstream's NSM_SERVICES entries: `name { vlan: 100; via: gw1 }` (the block is optional). */
export function parseRemoteVlanServices(value: string): { name: string; vlan?: number; via?: string }[] {
  const out: { name: string; vlan?: number; via?: string }[] = [];
  for (const m of value.matchAll(/([^\s,{}]+)\s*(?:\{([^}]*)\})?/g)) {
    const body = m[2] ?? "";
    const vlan = /vlan\s*:\s*(\d+)/.exec(body)?.[1];
    const via = /via\s*:\s*([^;\s]+)/.exec(body)?.[1];
    out.push({ name: m[1]!, vlan: vlan ? Number(vlan) : undefined, via });
  }
  return out;
}

/** The two host addresses of a link net (`192.0.2.0/30` → .1 and .2, with the length). */
function uplinkAddresses(text: string): [string, string] {
  const cidr = parseCidr(text);
  if (cidr.family !== "ipv4") throw new Error("must be IPv4");
  if (cidr.prefixLength > 31) throw new Error("needs two addresses (/31 or shorter)");
  const pool = new IpPool([cidr.text]);
  if (cidr.prefixLength < 31) {
    pool.pull({ family: "ipv4", value: cidr.first });
    pool.pull({ family: "ipv4", value: cidr.last });
  }
  const host = () => `${formatIp(pool.allocate())}/${cidr.prefixLength}`;
  return [host(), host()];
}

const overlaps = (a: Cidr, b: Cidr) => a.family === b.family && a.first <= b.last && b.first <= a.last;

/** The name of this process's netns in /var/run/netns, if it has one. */
function ownNetnsName(): string | undefined {
  try {
    const own = statSync("/proc/self/ns/net");
    return readdirSync("/var/run/netns").find((n) => {
      const s = statSync(`/var/run/netns/${n}`, { throwIfNoEntry: false });
      return s?.ino === own.ino && s.dev === own.dev;
    });
  } catch {
    return undefined;
  }
}

/** Services from NSM_SERVICES (upstream remote-vlan) or NSM_SERVICE_NAMES. */
function servicesOf(env: Env): { names: string[]; ignored: string[] } {
  const upstream = env.raw("NSM_SERVICES");
  if (!upstream) return { names: env.list("NSM_SERVICE_NAMES", "external"), ignored: [] };
  const parsed = parseRemoteVlanServices(upstream);
  const ignored = parsed
    .filter((s) => s.vlan !== undefined || s.via)
    .map((s) => `${s.name} vlan ${s.vlan} via ${s.via}`);
  return { names: [...new Set(parsed.map((s) => s.name))], ignored };
}

/** One CIDR of a list variable, or a ConfigError naming the variable and the item. */
function cidrItem(variable: string, item: string): Cidr {
  try {
    return parseCidr(item);
  } catch (err) {
    throw new ConfigError(variable, item, (err as Error).message.replace(/^\[\w+\] /, ""));
  }
}

/** The outside network the environment asks for, checked. */
export function outsidePlanOf(env: Env, name: string, clientSubnet: string): OutsideNetworkPlan {
  const addresses = env.list("NSM_EXTERNAL_ADDRESSES", "203.0.113.1/24");
  if (addresses.length === 0) throw new ConfigError("NSM_EXTERNAL_ADDRESSES", "", "needs at least one address");
  const cidrs = addresses.map((a) => cidrItem("NSM_EXTERNAL_ADDRESSES", a));
  const [endpointUplink, routerUplink] = env.parsed("NSM_UPLINK_CIDR", "192.0.2.0/30", uplinkAddresses);
  const clients = parseCidr(clientSubnet);
  const uplink = parseCidr(endpointUplink);
  for (const [i, c] of cidrs.entries()) {
    if (overlaps(c, clients))
      throw new ConfigError("NSM_EXTERNAL_ADDRESSES", addresses[i]!, `overlaps NSM_CIDR_PREFIX ${clientSubnet}`);
    if (overlaps(c, uplink)) throw new ConfigError("NSM_EXTERNAL_ADDRESSES", addresses[i]!, "overlaps NSM_UPLINK_CIDR");
  }
  const routes = env
    .list("NSM_EXTERNAL_ROUTES", [...new Set(cidrs.map((c) => c.text))].join(","))
    .map((r) => cidrItem("NSM_EXTERNAL_ROUTES", r).text);
  const own = ownNetnsName();
  const netns = env.parsed("NSM_EXTERNAL_NETNS", own ? `${own}-outside` : `nsm-outside-${name}`, (v) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(v)) throw new Error("is not a netns name");
    return v;
  });
  const nat = env.bool("NSM_EXTERNAL_NAT", true);
  return { netns, endpointUplink, routerUplink, outsideAddresses: addresses, routes, clientSubnet: clients.text, nat };
}

/** `nsm nse external`: serves, registers through nsmgr, and stops on SIGTERM/SIGINT. */
export async function runExternal(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const name = env.string("NSM_NAME", "external-server");
  const connectTo = connectToOf(env);
  const services = servicesOf(env);
  if (services.names.length === 0) throw new ConfigError("NSM_SERVICE_NAMES", "", "needs at least one service name");
  const ipam = env.parsed("NSM_CIDR_PREFIX", "172.16.5.0/24", subnetIpam);
  const plan = outsidePlanOf(env, name, ipam.subnet);
  const bridge = env.parsed("NSM_BRIDGE_NAME", "nsm-br0", (v) => {
    validateInterfaceName(v);
    return v;
  });
  const role = {
    name,
    connectTo,
    services: services.names,
    labels: env.parsed("NSM_LABELS", "", parseLabels),
    registerServices: env.bool("NSM_REGISTER_SERVICE", true) ? Payload.ETHERNET : undefined,
    expirationMs: env.duration("NSM_EXPIRE", "1m"),
    log: roleLogger(env, name),
  };
  const { log } = role;
  if (services.ignored.length > 0)
    log.warn({ ignored: services.ignored }, "NSM_SERVICES: no VLAN here, the uplink is a veth to the outside's netns");
  const kernel = createNetlinkKernel();
  await setupBridgeDomain(kernel, undefined, bridge, ipam.gateway);
  await createOutsideNetwork(kernel, plan, log);
  const undo = async () => {
    await removeOutsideNetwork(kernel, plan.netns);
    await kernel.deleteLink(undefined, bridge).catch(() => {});
    await kernel.close();
  };
  try {
    return await serveExternal(role, await roleSecurity(env, log), ipam, plan, kernel, bridge, undo);
  } catch (err) {
    await undo();
    throw err;
  }
}

function serveExternal(
  role: Omit<EndpointRole, "sec">,
  sec: RoleSecurity,
  ipam: SubnetIpam,
  plan: OutsideNetworkPlan,
  kernel: KernelApi,
  bridge: string,
  stopped: () => Promise<void>,
): Promise<number> {
  const { log } = role;
  return serveEndpointRole(
    { ...role, sec },
    [
      ipam.server,
      externalRoutesServer({ routes: plan.routes, gateway: ipam.gateway }),
      mechanismsServer({ KERNEL: kernelMechanismServer({ inodeUrl: `file:///proc/${process.pid}/ns/net` }) }),
      kernelBridgeServer({ kernel, bridge, gateway: ipam.gateway, log }),
    ],
    stopped,
  );
}
