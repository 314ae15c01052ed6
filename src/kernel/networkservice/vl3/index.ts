// SPDX-License-Identifier: Apache-2.0
/**
 * vl3 (kernel): a vL3 endpoint's netns is the router of its share of the vL3 network (upstream
 * cmd-nse-vl3-vpp routes in a VPP VRF). The forwarders put the endpoint's address and a host
 * route to each client on the endpoint's side of every client connection, and the peers' blocks
 * behind their addresses on each peer connection; the netns only has to forward between those
 * interfaces: IPv4 and IPv6 forwarding on, reverse-path filtering off (a peer's clients arrive
 * from the peer's interface, which a strict check would drop before routes settle).
 */
import type { KernelApi, NetnsPath } from "../../api.js";

/** The sysctls {@link prepareVl3Netns} writes, in order. */
export const VL3_SYSCTLS: readonly (readonly [string, string])[] = [
  ["net.ipv4.ip_forward", "1"],
  ["net.ipv4.conf.all.rp_filter", "0"],
  ["net.ipv4.conf.default.rp_filter", "0"],
  ["net.ipv6.conf.all.forwarding", "1"],
];

/** Makes `netns` (default: this process's) forward between its interfaces. */
export async function prepareVl3Netns(kernel: KernelApi, netns?: NetnsPath): Promise<void> {
  for (const [key, value] of VL3_SYSCTLS) await kernel.writeSysctl(netns, key, value);
}
