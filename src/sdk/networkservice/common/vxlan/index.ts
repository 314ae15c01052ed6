// SPDX-License-Identifier: Apache-2.0
/**
 * vxlan: the parameters of the VXLAN remote mechanism (upstream `mechanisms/vxlan`, `vni`,
 * and sdk-vpp's VXLAN `mtu`), without any kernel work.
 *
 * Purpose: two forwarders on different nodes join a client and an endpoint with one VXLAN
 * tunnel per connection. The client side offers a REMOTE/VXLAN preference carrying its tunnel
 * end (`src_ip`, `src_port`); the server side completes the selected mechanism with its own
 * (`dst_ip`, `dst_port`) and the VNI. Both set the mechanism's `MTU` parameter to what the tunnel
 * leaves (underlay MTU − 50 for IPv4, − 70 for IPv6; upstream subtracts 54/74, see
 * {@link VXLAN_OVERHEAD_IPV4}) and lower `context.MTU` to it when it is 0 or larger.
 *
 * VNI (server): `(2·rand) & 0xFFFFFF`, even when `orig_src_ip || src_ip` ≤ `orig_dst_ip || dst_ip`
 * bytewise, odd otherwise (upstream parity rule, so the two directions of a node pair never
 * draw the same VNI). Never 0, never one in use: the registry is per forwarder, which is
 * stricter than upstream's per (src, dst) pair and is what the Linux kernel needs (it tells
 * tunnels of one UDP port apart by VNI alone). Kept across refreshes; a VNI the client sends
 * back that we do not hold (we restarted) is adopted when it has the right parity and is free.
 * Released on Close and when a first Request fails.
 *
 * Payload rule (client): offered only for ETHERNET payload by default, as upstream sdk-vpp
 * (`payloads` option to offer it for IP too; an empty payload counts as IP, upstream's default).
 * Port: one UDP port per forwarder (4789, `NSM_VXLAN_PORT`), the same on every node: the Linux
 * VXLAN device sends to and listens on one port.
 *
 * Chain placement: `vxlanClient` among the forwarder's client mechanisms
 * (`mechanismsClient({ VXLAN: vxlanClient(…) })`, before filtermechanisms/mechanismpriority);
 * `vxlanServer` as the server mechanism (`mechanismsServer({ VXLAN: vxlanServer(…) })`).
 * Give both the same {@link VniRegistry} (`vnis`).
 * Per-connection state: the VNI held in the registry, keyed by the connection id.
 * Options: {@link VxlanClientOptions}, {@link VxlanServerOptions}.
 * Failure behaviour: a bad option is InvalidArgument at construction. Server: a VXLAN
 * mechanism without a valid `src_ip`, or a malformed `vni`, is InvalidArgument before anything
 * is asked downstream. Client: an answer without a VNI, or with a VNI another tunnel of this
 * node uses (Unavailable, reason `vni-in-use`: retrying gets a new one), fails the Request; on a
 * first Request downstream is closed first.
 */

export { vxlanClient } from "./client.js";
export type { VniRegistry } from "./common.js";
export { createVniRegistry, MAX_VNI, parseVni, vniFromRandom, vniMustBeOdd } from "./common.js";
export type { VxlanClientOptions, VxlanServerOptions } from "./options.js";
export {
  DEFAULT_UNDERLAY_MTU,
  DEFAULT_VXLAN_PORT,
  VXLAN_OVERHEAD_IPV4,
  VXLAN_OVERHEAD_IPV6,
} from "./options.js";
export { vxlanServer } from "./server.js";
