// SPDX-License-Identifier: Apache-2.0
/**
 * external (kernel): a network outside the mesh, reached through an endpoint's uplink
 * (`nsm nse external`; upstream's breakout endpoints, cmd-nse-remote-vlan).
 *
 * Where upstream puts a VLAN sub-interface of the node's NIC (a real external L2 network), the
 * local runtime has no outside to reach, so {@link createOutsideNetwork} makes one: a named
 * network namespace standing for the outside network (a router with the address plan the user
 * gives, on its `lan0`), joined to the endpoint's netns by a veth pair, the uplink (`ext0` on
 * both ends, a /30 or /31 between them). The endpoint routes the outside's prefixes to the router
 * and, with NAT on, masquerades its clients' traffic leaving through the uplink (nftables `ip`
 * table {@link NAT_TABLE}), so the outside sees the endpoint's uplink address; with NAT off the
 * router routes the clients' subnet back to the endpoint instead.
 * {@link removeOutsideNetwork} undoes all of it (table, uplink, namespace).
 * {@link externalRoutesServer} gives clients routes to the outside's prefixes through the
 * endpoint's address on their segment.
 *
 * The namespace is made with iproute2 (`ip netns add`/`del`: a named netns is a bind mount that
 * netlink cannot make), in the mount namespace the endpoint was started from so that everyone
 * sees it; the NAT table with `nft`, as the ACL element does. Everything else goes
 * through the netlink {@link KernelApi}.
 */
import { execFile } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import {
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  IPContextSchema,
  RouteSchema,
} from "../../../api/index.js";
import type { NetworkServiceElement } from "../../../sdk/core/chain.js";
import { type Logger, silentLogger } from "../../../sdk/core/logger.js";
import { requestConnection } from "../../../sdk/core/request.js";
import type { KernelApi } from "../../api.js";
import { runNft } from "../acl/index.js";

/** The nftables table (family `ip`) of the endpoint's NAT. */
export const NAT_TABLE = "nsm_external";

/** Name of the uplink veth on both ends, and of the router's LAN link. */
export const UPLINK = "ext0";
const LAN = "lan0";
const LAN_PEER = "lan1";

/** What {@link createOutsideNetwork} builds. */
export interface OutsideNetworkPlan {
  /** The outside's netns name (`/var/run/netns/<name>`). */
  readonly netns: string;
  /** The endpoint's uplink address (`192.0.2.1/30`). */
  readonly endpointUplink: string;
  /** The router's uplink address (`192.0.2.2/30`). */
  readonly routerUplink: string;
  /** The outside's address plan: CIDRs on the router's `lan0`. */
  readonly outsideAddresses: readonly string[];
  /** Prefixes the endpoint (and its clients) route to the router. */
  readonly routes: readonly string[];
  /** The clients' subnet. */
  readonly clientSubnet: string;
  /** Masquerade the clients behind the endpoint's uplink address. */
  readonly nat: boolean;
}

/**
 * The nearest ancestor in another mount namespace, if any. `ip netns exec` (how the local runtime
 * starts pod processes) gives each process a mount namespace of its own, a slave of its parent's:
 * a netns bind-mounted there would be visible to this process only, while one mounted in the
 * parent's namespace propagates here too.
 */
function outerMountNsPid(): number | undefined {
  const mnt = (pid: number | "self") => {
    try {
      return readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
      return undefined;
    }
  };
  const own = mnt("self");
  let pid = process.ppid;
  for (let i = 0; i < 8 && pid > 1; i++) {
    const theirs = mnt(pid);
    if (theirs && theirs !== own) return pid;
    const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    pid = Number(ppid ?? 0);
  }
  return undefined;
}

/** `ip netns …`, in the outer mount namespace when there is one (see {@link outerMountNsPid}). */
const ipNetns = (args: readonly string[]) =>
  new Promise<void>((resolve, reject) => {
    const outer = outerMountNsPid();
    const [cmd, argv] = outer
      ? ["nsenter", ["-t", String(outer), "-m", "--", "ip", "netns", ...args]]
      : ["ip", ["netns", ...args]];
    execFile(cmd, argv, { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`ip netns ${args.join(" ")}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });

const netnsPath = (name: string) => `/var/run/netns/${name}`;
const addressOnly = (cidr: string) => cidr.split("/")[0]!;

/** The NAT ruleset: clients' packets leaving through the uplink take its address. */
export function natRuleset(clientSubnet: string): string {
  return [
    `table ip ${NAT_TABLE}`,
    `delete table ip ${NAT_TABLE}`,
    `table ip ${NAT_TABLE} {`,
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    oifname "${UPLINK}" ip saddr ${clientSubnet} masquerade`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/** The router's side: its LAN with the address plan, and its end of the uplink. */
async function buildRouter(kernel: KernelApi, plan: OutsideNetworkPlan): Promise<void> {
  const router = netnsPath(plan.netns);
  await kernel.setLink(router, "lo", { up: true });
  await kernel.createVeth(router, { name: LAN, peer: { name: LAN_PEER } });
  for (const link of [LAN, LAN_PEER]) await kernel.setLink(router, link, { up: true });
  for (const cidr of plan.outsideAddresses) await kernel.replaceAddress(router, LAN, cidr);
  await kernel.replaceAddress(router, UPLINK, plan.routerUplink);
  await kernel.setLink(router, UPLINK, { up: true });
  if (!plan.nat)
    await kernel.replaceRoute(router, {
      dst: plan.clientSubnet,
      gateway: addressOnly(plan.endpointUplink),
      link: UPLINK,
    });
}

/** Creates the outside network and the endpoint's way to it (see the module doc); a leftover of the same name is replaced. */
export async function createOutsideNetwork(kernel: KernelApi, plan: OutsideNetworkPlan, log = silentLogger) {
  await removeOutsideNetwork(kernel, plan.netns);
  await ipNetns(["add", plan.netns]);
  try {
    await kernel.createVeth(undefined, { name: UPLINK, peer: { name: UPLINK, netns: netnsPath(plan.netns) } });
    await buildRouter(kernel, plan);
    await kernel.replaceAddress(undefined, UPLINK, plan.endpointUplink);
    await kernel.setLink(undefined, UPLINK, { up: true });
    await kernel.writeSysctl(undefined, "net.ipv4.ip_forward", "1");
    for (const dst of plan.routes)
      await kernel.replaceRoute(undefined, { dst, gateway: addressOnly(plan.routerUplink), link: UPLINK });
    if (plan.nat) await runNft(["-f", "-"], natRuleset(plan.clientSubnet));
  } catch (err) {
    await removeOutsideNetwork(kernel, plan.netns);
    throw err;
  }
  log.info(
    { netns: plan.netns, addresses: plan.outsideAddresses, routes: plan.routes, nat: plan.nat },
    "outside ready",
  );
}

/** Removes the NAT table, the uplink and the outside's namespace; each may already be gone. */
export async function removeOutsideNetwork(kernel: KernelApi, netns: string): Promise<void> {
  await runNft(["-f", "-"], `table ip ${NAT_TABLE}\ndelete table ip ${NAT_TABLE}\n`).catch(() => {});
  await kernel.deleteLink(undefined, UPLINK).catch(() => {});
  await ipNetns(["del", netns]).catch(() => {});
}

/** Options of {@link externalRoutesServer}. */
export interface ExternalRoutesOptions {
  /** Prefixes behind the endpoint. */
  readonly routes: readonly string[];
  /** The endpoint's address on the clients' segment (the next hop). */
  readonly gateway: string;
  readonly log?: Logger;
}

/**
 * Server element: every client connection gets `src_routes` to the outside's prefixes through
 * the endpoint. Chain placement: after the IPAM (it keeps the addresses the IPAM set).
 */
export function externalRoutesServer(options: ExternalRoutesOptions): NetworkServiceElement {
  const nextHop = addressOnly(options.gateway);
  return {
    name: "externalRoutes",
    request(req, ctx, next) {
      const connection = clone(ConnectionSchema, requestConnection(req));
      connection.context ??= create(ConnectionContextSchema, {});
      connection.context.ipContext ??= create(IPContextSchema, {});
      const ipc = connection.context.ipContext;
      for (const prefix of options.routes)
        if (!ipc.srcRoutes.some((r) => r.prefix === prefix))
          ipc.srcRoutes.push(create(RouteSchema, { prefix, nextHop }));
      return next.request({ ...req, connection }, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
