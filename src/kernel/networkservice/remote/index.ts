// SPDX-License-Identifier: Apache-2.0
/**
 * kernelRemoteXconnect: the pod's end of a cross-node connection (VXLAN or WireGuard).
 *
 * Purpose: on the NSC-side forwarder the client's KERNEL mechanism meets a tunnel mechanism
 * towards the remote node; on the NSE-side forwarder a tunnel mechanism from the remote node
 * meets the endpoint's KERNEL mechanism. Either way this forwarder gives its pod one interface
 * named as the KERNEL mechanism's `name`, tagged `nsm:client:<owner>:<id>` /
 * `nsm:endpoint:<owner>:<id>` (`../xconnect/tag.ts`), with `context.MTU` (or the mechanism's
 * `MTU`, whichever is lower), up, and the pod's side of the IP context (client: src addresses and routes, as the local cross-connect;
 * endpoint: dst). See `dataplane.ts` for how VXLAN devices and wireguard-go TUNs get there.
 *
 * Chain placement: `kernelRemoteXconnectServer` in `createForwarder({ additional })` (after the
 * mechanism selection, with `metadata` earlier); `kernelRemoteXconnectClient` in
 * `additionalClient`, below mechanismtranslation, so that it sees the next hop's mechanism. The
 * server acts after `next` returns. `kernelForwarderElements()` puts them in place.
 *
 * Per-connection state: client side: the next hop's mechanism. Server side: the plan last
 * programmed and the wireguard-go process. A refresh with the same plan makes no kernel call; a
 * changed IP context or MTU is applied as a diff on the same interface, and so is a changed
 * WireGuard peer (key, address, port: re-configured over UAPI, e.g. after the peer forwarder
 * restarted with a new key); a changed VXLAN tunnel (VNI, ends, port), our WireGuard port, pod
 * netns or name, or a wireguard-go that died, rebuilds it. Close deletes it (stops wireguard-go
 * by PID) and forgets; it answers once the interface has left the pod's netns, not when the
 * kernel acknowledges (`../xconnect/deletions.ts`), and a Request for the same name waits for
 * that. A first Request whose interface is already there, tagged by this
 * forwarder for this connection (an earlier life, killed), re-adopts it (see
 * `dataplane.ts`).
 *
 * Options: {@link KernelRemoteXconnectServerOptions}: those of every cross-connect
 * (`../xconnect/options.ts`: `kernel`, `checkNetns` required), `tunnelNetns` and `wireguard`.
 *
 * Failure behaviour: as the local cross-connect. A bad `inodeURL`/name or tunnel parameter is
 * InvalidArgument; VXLAN ports that differ between the ends are FailedPrecondition; a foreign
 * interface with the requested name is AlreadyExists (left alone). A first Request that fails
 * in the kernel leaves nothing behind and closes downstream; a failed refresh keeps the
 * connection and re-applies everything on the next one. A re-adopted interface whose
 * re-programming fails is removed (with its wireguard-go), as a new one would be. `dispose()`
 * stops the wireguard-go processes (started or adopted); VXLAN devices stay for a restarted
 * forwarder to re-adopt (by tag).
 *
 * Files: `server.ts` and `client.ts` (the elements), `plan.ts` (what a connection asks of the
 * kernel, pure), `dataplane.ts` (the kernel and wireguard-go steps), `metadata.ts`
 * (per-connection state).
 */
export { kernelRemoteXconnectClient } from "./client.js";
export { WIREGUARD_NAME_PREFIX } from "./dataplane.js";
export type { RemotePlan, TunnelPlan, VxlanTunnelPlan, WireguardTunnelPlan } from "./metadata.js";
export type {
  KernelRemoteXconnectServer,
  KernelRemoteXconnectServerOptions,
  RemoteWireguardOptions,
} from "./server.js";
export {
  DEFAULT_PERSISTENT_KEEPALIVE_S,
  DEFAULT_WIREGUARD_LISTEN_TIMEOUT_MS,
  kernelRemoteXconnectServer,
} from "./server.js";
