// SPDX-License-Identifier: Apache-2.0
/** Options of the VXLAN mechanism elements. */
import { Payload } from "../../../../api/index.js";
import { checkPort } from "../../../tools/tunnel.js";
import { type ResolvedTunnel, resolveTunnelOptions, type TunnelOptions } from "../remotemechanism/index.js";
import { createVniRegistry, type VniRegistry } from "./common.js";

export { DEFAULT_UNDERLAY_MTU } from "../remotemechanism/index.js";

/** The IANA VXLAN port (upstream default of `NSM_VXLAN_PORT`). */
export const DEFAULT_VXLAN_PORT = 4789;

/**
 * Bytes a VXLAN tunnel adds over an IPv4 underlay: IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
 * Upstream forwarder-vpp subtracts 54 (4 more, room for an inner 802.1Q tag); the Linux VXLAN
 * device carries untagged frames here and itself defaults to 1450 over a 1500 link, so 50 is
 * the exact overhead and a pod MTU of underlay − 50 never fragments.
 */
export const VXLAN_OVERHEAD_IPV4 = 50;

/** The same over an IPv6 underlay (IPv6 header 40): upstream uses 74. */
export const VXLAN_OVERHEAD_IPV6 = 70;

interface CommonOptions extends TunnelOptions {
  /**
   * The UDP port VXLAN uses on this node (`NSM_VXLAN_PORT`). One port per forwarder: the Linux
   * VXLAN device sends to and listens on the same port, so every node must use the same one.
   * @default 4789
   */
  port?: number;
  /** MTU of the underlay link; the tunnel leaves `underlayMtu − 50` (IPv4) / `− 70` (IPv6). @default 1500 */
  underlayMtu?: number;
  /**
   * VNIs in use on this node, shared by the client and server elements of one forwarder (a VNI
   * is unique per UDP port in a netns for the kernel). @default a registry of this element's own
   */
  vnis?: VniRegistry;
}

export type VxlanClientOptions = CommonOptions & {
  /** Payloads for which the VXLAN preference is offered. @default ["ETHERNET"] (upstream) */
  payloads?: readonly string[];
};

export type VxlanServerOptions = CommonOptions & {
  /** Source of randomness for new VNIs: returns an integer in [0, 2^23). @default crypto.randomInt */
  random?: () => number;
};

export interface Resolved extends ResolvedTunnel {
  readonly port: number;
  readonly vnis: VniRegistry;
}

export function resolveOptions(what: string, o: Readonly<CommonOptions> & { payloads?: readonly string[] }): Resolved {
  const overhead = (ip: { family: string }) => (ip.family === "ipv4" ? VXLAN_OVERHEAD_IPV4 : VXLAN_OVERHEAD_IPV6);
  const tunnel = resolveTunnelOptions(what, o, overhead, Payload.ETHERNET);
  return { ...tunnel, port: checkPort(o.port ?? DEFAULT_VXLAN_PORT, what), vnis: o.vnis ?? createVniRegistry() };
}
