// SPDX-License-Identifier: Apache-2.0
/**
 * kernelXconnect (veth): the forwarder's local (same node) kernel data plane.
 *
 * Purpose: when the client (NSC) and the endpoint (NSE) both use the KERNEL mechanism, connect
 * their namespaces with one veth pair and give each end what the connection's IP context says
 * (the pure-kernel counterpart of upstream forwarder-vpp's veth + xconnect + the sdk-kernel
 * `connectioncontextkernel` elements):
 * 1. the pair is created with each end directly in its pod's netns (from the mechanism's
 *    `inodeURL`, see {@link netnsPathFromUrl}) under the mechanism's `name`, with the MTU
 *    (`context.MTU` when non-zero). Upstream creates the pair in the forwarder's netns and moves
 *    the ends; a move costs the kernel an RCU grace period (~15-20 ms here) and creating in
 *    place gives the same result, so we create in place;
 * 2. each end is tagged with an alias that carries this forwarder's name and the connection id
 *    (`nsm:client:<owner>:<id>` / `nsm:endpoint:<owner>:<id>`, see `../xconnect/tag.ts`) and
 *    brought up, in one RTM_SETLINK;
 * 3. the client's netns gets `src_ip_addrs`, link routes for the dst addresses outside the src
 *    prefixes, `src_routes` (empty next hop → the first dst address of the family, on-link) and
 *    `ip_neighbors`; the endpoint's netns gets `dst_ip_addrs`, link routes for the src addresses
 *    outside the dst prefixes and `dst_routes` (next hop: the first src address). Order per netns:
 *    link up, `disable_ipv6=0` when there are IPv6 addresses, addresses, routes, neighbours,
 *    then `net.ipv4.ping_group_range = 0 2147483647` (unprivileged ping for liveness checks).
 *
 * Chain placement: `kernelXconnectClient()` in the forwarder's client chain
 * (`createForwarder({ additionalClient })`), below mechanismtranslation, so that it sees the
 * endpoint's own mechanism. `kernelXconnectServer({ kernel, checkNetns })` in the server chain
 * (`createForwarder({ additional })`), after mechanism selection and before connect; it needs
 * `metadata` earlier (declared in `requires`). Both act after `next` returns.
 *
 * Per-connection state: client side: the endpoint's KERNEL mechanism (deleted on Close).
 * Server side: the plan last programmed (netns paths, names, tags, MTU, addresses, routes,
 * neighbours). A refresh whose plan equals it makes no kernel call at all; a changed IP
 * context or MTU is applied as a diff (stale routes, neighbours and addresses removed, new ones
 * added); a changed netns or interface name rebuilds the pair. Close deletes the pair (one end
 * suffices) and forgets, while downstream's Close runs beside it.
 *
 * Close latency: the kernel takes a deleted veth pair out of both namespaces within ~1-2 ms but
 * acknowledges the RTM_DELLINK only after RCU grace periods (~20 ms). Close answers once both
 * ends are gone (what the client can observe ends there: no interface, no address, no route)
 * and leaves the acknowledgement to the shared `PendingDeletions`
 * (`../xconnect/deletions.ts`): a Request that needs one of the freed names first waits until
 * it is free, the forwarder's shutdown (`kernelForwarderElements(...).dispose()`) waits for
 * every acknowledgement, a late failure is logged.
 *
 * Options: {@link KernelXconnectServerOptions}: `kernel` and `checkNetns` (the netns-ownership
 * check, required: there is no default that allows all; `insecureNetnsOwnership().check` is the
 * explicit way to turn it off), `cleanupTimeoutMs`, `owner` (the forwarder's name, in the tags),
 * `reconciler`; the same for every cross-connect (`../xconnect/options.ts`).
 *
 * Restart (reconciliation, `../reconcile/`): a forwarder killed with SIGKILL leaves its links
 * behind. The first Request of this life for a connection whose pair is still there (both
 * target links carry this connection's tags and are each other's peer) re-adopts it: same
 * ifindex, no interruption, the plan re-applied idempotently (addresses and routes diffed
 * against what the kernel holds). The endpoint's interface name, which the forwarder chooses, is
 * derived from the connection id (`../stablename/`), so the re-Request names the same one. With
 * `kernelForwarderElements({ reconcileGraceMs })`, what is not Requested within the grace period
 * is deleted.
 *
 * Failure behaviour: a bad `inodeURL` or interface name is InvalidArgument; for the client's
 * mechanism it is found before anything is asked downstream. A link that already has a target
 * name is re-adopted or replaced if it carries this connection's tag, else the Request fails
 * with AlreadyExists and nothing is created. A re-adopted pair whose re-programming fails is
 * deleted, as a new one would be. When a kernel step fails on the first Request, the pair
 * is deleted, downstream is closed, and the kernel's error is returned as an NsmError (errno →
 * code in `src/kernel/errors.ts`). When a refresh fails, the error is returned and the record
 * is marked stale, so that the next refresh re-applies everything; downstream stays open.
 * Close succeeds when the links or the namespaces are already gone, and never deletes a link
 * that no longer carries the connection's tag.
 *
 * Files: `server.ts` and `client.ts` (the elements), `dataplane.ts` (the kernel steps on the
 * pair), `metadata.ts` (per-connection state), `options.ts`.
 *
 * Remote (cross-node) connections are `../remote/`; `../forwarder/` bundles both for
 * `createForwarder`.
 */
export { kernelXconnectClient } from "./client.js";
export type { KernelXconnectServerOptions } from "./options.js";
export { kernelXconnectServer } from "./server.js";
