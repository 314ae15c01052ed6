// SPDX-License-Identifier: Apache-2.0
/**
 * bridge (kernel): the clients of an endpoint share one Linux bridge in the endpoint's netns, so
 * they are on one L2 segment (upstream's bridge service; `nsm nse bridge`).
 *
 * {@link setupBridgeDomain} creates the bridge with the endpoint's own address (the gateway of
 * subnetipam). Per connection, {@link kernelBridgeServer} makes the endpoint's end of the
 * connection a port of the bridge as soon as the forwarder has created it (after this Request
 * returns, so in the background, polled every `pollMs`) and removes the gateway address the
 * forwarder put on that port (the IP context's `dst_ip_addrs`): the address lives on the bridge
 * only, so the endpoint's own traffic to the subnet goes through the bridge to every client.
 * Chain placement: in an endpoint, after the KERNEL mechanism server (it reads the interface name
 * from the returned connection's mechanism).
 * Per-connection state: the background attach (aborted on Close). The port goes with the
 * forwarder's veth on Close.
 * Failure behaviour: a port that never appears is logged (the Request has already succeeded).
 * Bridges on several nodes joined into one domain: ./domain.ts.
 */
import { MechanismType, Param } from "../../../api/index.js";
import type { NetworkServiceElement } from "../../../sdk/core/chain.js";
import { type Logger, silentLogger } from "../../../sdk/core/logger.js";
import type { KernelApi, NetnsPath } from "../../api.js";
import { type Attach, attachWhenPresent, bypassBridgeNetfilter, ensureBridge } from "../passthrough/index.js";

/** Options of {@link kernelBridgeServer}. */
export interface KernelBridgeOptions {
  readonly kernel: KernelApi;
  /** The endpoint's netns. @default this process's */
  readonly netns?: NetnsPath;
  /** The bridge's name. */
  readonly bridge: string;
  /** The endpoint's address on the bridge (`172.16.2.1/24`). */
  readonly gateway: string;
  /** @default 10 */
  readonly pollMs?: number;
  /** @default 15000 */
  readonly attachTimeoutMs?: number;
  readonly log?: Logger;
}

/** Creates (or finds) the bridge, up, with the endpoint's address. */
export async function setupBridgeDomain(kernel: KernelApi, netns: NetnsPath, bridge: string, gateway: string) {
  await ensureBridge(kernel, netns, bridge);
  await bypassBridgeNetfilter(kernel, netns);
  await kernel.replaceAddress(netns, bridge, gateway);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Removes `cidr` from `link` once the forwarder has put it there (until the deadline). */
async function dropAddressWhenPresent(a: Attach, link: string, cidr: string): Promise<void> {
  while (!a.signal.aborted && Date.now() < a.deadline) {
    const info = await a.kernel.findLink(a.netns, link);
    if (!info) return;
    const addrs = await a.kernel.listAddresses(a.netns, { link: info.index });
    if (addrs.some((x) => x.cidr === cidr)) {
      await a.kernel.deleteAddress(a.netns, link, cidr);
      return;
    }
    await sleep(a.pollMs);
  }
}

/** The element: each connection's endpoint-side interface becomes a port of the bridge. */
export function kernelBridgeServer(options: KernelBridgeOptions): NetworkServiceElement {
  const { kernel, netns, bridge, gateway } = options;
  const log = options.log ?? silentLogger;
  const pending = new Map<string, AbortController>();
  const attachOf = (signal: AbortSignal, timeoutMs: number): Attach => ({
    kernel,
    netns,
    pollMs: options.pollMs ?? 10,
    deadline: Date.now() + timeoutMs,
    signal,
  });
  return {
    name: "kernelBridge",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const port = conn.mechanism?.type === MechanismType.KERNEL ? conn.mechanism.parameters[Param.NAME] : undefined;
      if (!port) return conn;
      pending.get(conn.id)?.abort();
      const stop = new AbortController();
      pending.set(conn.id, stop);
      const timeoutMs = options.attachTimeoutMs ?? 15_000;
      attachWhenPresent(attachOf(stop.signal, timeoutMs), port, bridge)
        .then(async (attached) => {
          const hasGateway = conn.context?.ipContext?.dstIpAddrs.includes(gateway) ?? false;
          if (attached && hasGateway) await dropAddressWhenPresent(attachOf(stop.signal, 5_000), port, gateway);
          log.debug({ id: conn.id, bridge, port }, "client port on the bridge");
        })
        .catch((err) => log.warn({ id: conn.id, bridge, port, err: String(err) }, "client port not bridged"))
        .finally(() => {
          if (pending.get(conn.id) === stop) pending.delete(conn.id);
        });
      return conn;
    },
    async close(conn, ctx, next) {
      pending.get(conn.id)?.abort();
      pending.delete(conn.id);
      await next.close(conn, ctx);
    },
  };
}

export {
  BRIDGE_PEER_LABEL,
  type BridgeDomainOptions,
  BridgeDomainPeers,
  bridgePortClient,
  clientMtuServer,
  PEER_PORT_PREFIX,
  unlessBridgePeer,
} from "./domain.js";
