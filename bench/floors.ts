// SPDX-License-Identifier: Apache-2.0
/**
 * What bench:setup and bench:scale put next to our setup, each in this process:
 * - {@link netlinkFloor}: the same kernel work as a local kernel2kernel Request (one veth pair
 *   between a client's netns and the endpoint's, addresses and routes on both ends) through the
 *   forwarder's own kernel cross-connect, with no control plane: an endpoint element that only
 *   names its netns and an interface. Like the forwarder's, its Close answers once the pair has
 *   left both namespaces (the kernel's acknowledgement is awaited in the background);
 * - {@link cniPtp}: Debian's CNI `ptp` plugin with host-local IPAM, one exec per ADD or DEL, as a
 *   container runtime runs it.
 */
import { spawnSync } from "node:child_process";
import {
  Cls,
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  create,
  IPContextSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  RouteSchema,
} from "../src/api/index.js";
import { createNetlinkKernel } from "../src/kernel/index.js";
import {
  insecureNetnsOwnership,
  kernelXconnectClient,
  kernelXconnectServer,
  PendingDeletions,
} from "../src/kernel/networkservice/index.js";
import { bind, chain, type NetworkServiceElement, passThrough } from "../src/sdk/core/chain.js";
import { CallContext } from "../src/sdk/core/context.js";
import { connectServer } from "../src/sdk/networkservice/common/connect/index.js";
import { mechanismsServer } from "../src/sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../src/sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../src/sdk/networkservice/common/metadata/index.js";

/** The file of a named netns (`ip netns add NAME`). */
export const netnsPath = (name: string): string => `/var/run/netns/${name}`;

export interface NetlinkFloor {
  /** Connection `i` (10.61.0.0/16, a /32 pair of its own) into the client netns `clientNs`; its duration in ms. */
  request(i: number, clientNs: string): Promise<number>;
  /** Closes connection `i`; its duration in ms. */
  close(i: number): Promise<number>;
  /** Waits for the kernel's acknowledgements and closes the netlink sockets. */
  stop(): Promise<void>;
}

/**
 * The netlink floor, its endpoint ends in the named netns `nseNs`, the client ends named
 * `ifname` (see the module doc).
 */
export function netlinkFloor(nseNs: string, ifname: string): NetlinkFloor {
  const kernel = createNetlinkKernel();
  const deletions = new PendingDeletions();
  const endpoint: NetworkServiceElement = {
    name: "endpoint",
    request: async (req) => {
      const c = req.connection!;
      c.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
        name: `e${c.id}`.slice(0, 15),
        inodeURL: `file://${netnsPath(nseNs)}`,
      });
      return c;
    },
    close: async () => {},
  };
  const h = bind(
    chain(
      metadataServer(),
      mechanismsServer({ KERNEL: passThrough("kernel") }),
      kernelXconnectServer({ kernel, checkNetns: insecureNetnsOwnership().check, deletions }),
      connectServer(chain(metadataClient(), mechanismTranslationClient(), kernelXconnectClient(), endpoint)),
    ),
  );
  const live = new Map<number, Connection>();
  return {
    async request(i, clientNs) {
      const t0 = performance.now();
      live.set(i, await h.request(floorRequest(i, clientNs, ifname), CallContext.create()));
      return performance.now() - t0;
    },
    async close(i) {
      const conn = live.get(i);
      if (!conn) throw new Error(`floor connection ${i} is not live`);
      live.delete(i);
      const t0 = performance.now();
      await h.close(conn, CallContext.create());
      return performance.now() - t0;
    },
    async stop() {
      await deletions.drain();
      await kernel.close();
    },
  };
}

/** Request `i` of the floor, as the forwarder receives it: 10.61.x.(2+2i) for the endpoint, the next for the client. */
function floorRequest(i: number, clientNs: string, ifname: string) {
  const a = 2 + 2 * i;
  const ip = (n: number) => `10.61.${n >> 8}.${n & 255}/32`;
  const ctx = create(ConnectionContextSchema, {
    ipContext: create(IPContextSchema, {
      srcIpAddrs: [ip(a + 1)],
      dstIpAddrs: [ip(a)],
      srcRoutes: [create(RouteSchema, { prefix: ip(a) })],
      dstRoutes: [create(RouteSchema, { prefix: ip(a + 1) })],
    }),
  });
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: `f${i}`,
      networkService: "floor",
      mechanism: newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
        name: ifname,
        inodeURL: `file://${netnsPath(clientNs)}`,
      }),
      context: ctx,
    }),
  });
}

export interface CniPtp {
  /** ADD or DEL of container `i` whose netns is the named `clientNs`; its duration in ms. */
  run(command: "ADD" | "DEL", i: number, clientNs: string): number;
}

/**
 * Debian's `ptp` plugin run from the named netns `hostNs` (10.62.0.0/16, host-local IPAM state
 * in `ipamDir`, network name `bench-TAG`). A failed exec throws with the plugin's output.
 */
export function cniPtp(hostNs: string, ipamDir: string, tag: string): CniPtp {
  const conf = JSON.stringify({
    cniVersion: "1.0.0",
    name: `bench-${tag}`,
    type: "ptp",
    ipMasq: false,
    ipam: { type: "host-local", subnet: "10.62.0.0/16", dataDir: ipamDir },
  });
  return {
    run(command, i, clientNs) {
      const t0 = performance.now();
      const r = spawnSync("ip", ["netns", "exec", hostNs, "/usr/lib/cni/ptp"], {
        input: conf,
        env: {
          PATH: process.env.PATH,
          CNI_COMMAND: command,
          CNI_CONTAINERID: `bench-${tag}-${i}`,
          CNI_NETNS: netnsPath(clientNs),
          CNI_IFNAME: "eth0",
          CNI_PATH: "/usr/lib/cni",
        },
        encoding: "utf8",
      });
      const ms = performance.now() - t0;
      if (r.status !== 0) throw new Error(`ptp ${command} failed: ${r.stdout}${r.stderr}`);
      return ms;
    },
  };
}
