// SPDX-License-Identifier: Apache-2.0
/**
 * wireguard: the parameters of the WIREGUARD remote mechanism (upstream sdk-vpp
 * `mechanisms/wireguard` + `mtu`), without any kernel work.
 *
 * Purpose: for IP payload, two forwarders on different nodes join a client and an endpoint with
 * one WireGuard tunnel per connection. The client side offers a REMOTE/WIREGUARD preference with
 * its tunnel end and key (`src_ip`, `src_port`, `src_public_key`, base64); the server side
 * completes the selected mechanism with its own (`dst_ip`, `dst_port`, `dst_public_key`). Both
 * set the `MTU` parameter to underlay MTU − 80 ({@link WIREGUARD_OVERHEAD}; upstream 60/80 for
 * IPv4/IPv6) and lower `context.MTU` to it when it is 0 or larger.
 *
 * Ports: one UDP port per connection and side, from a per-node range starting at
 * `NSM_WIREGUARD_PORT` (51820): the userspace data plane runs one wireguard-go per tunnel, each
 * with its own socket. A connection keeps its port across refreshes; Close frees it.
 * Keys: one X25519 key pair per forwarder (the private key stays with the data plane; these
 * elements only carry the public key).
 * Payload rule (client): offered only for IP payload by default, as upstream (an empty payload
 * counts as IP); `payloads` widens it.
 *
 * Chain placement: `wireguardClient` among the forwarder's client mechanisms
 * (`mechanismsClient({ WIREGUARD: … })`), `wireguardServer` as the server mechanism
 * (`mechanismsServer({ WIREGUARD: … })`); give both the same {@link PortPool}.
 * Per-connection state: the port held in the pool, keyed by the connection id.
 * Options: {@link WireguardClientOptions}, {@link WireguardServerOptions}.
 * Failure behaviour: a bad option is InvalidArgument at construction. Server: a mechanism
 * without a valid `src_ip`, `src_port` or `src_public_key` is InvalidArgument before anything is
 * asked downstream. Client: an answer without a valid `dst_ip`, `dst_port` or `dst_public_key`
 * is InvalidArgument (downstream closed first on a first Request). No free port is
 * ResourceExhausted.
 */

export { wireguardClient } from "./client.js";
export type { PortPool } from "./common.js";
export { checkPeerHalf, createPortPool, isWireguardKey, WIREGUARD_KEY_BYTES } from "./common.js";
export type { WireguardClientOptions, WireguardServerOptions } from "./options.js";
export { DEFAULT_WIREGUARD_PORT, DEFAULT_WIREGUARD_PORT_COUNT, WIREGUARD_OVERHEAD } from "./options.js";
export { wireguardServer } from "./server.js";
