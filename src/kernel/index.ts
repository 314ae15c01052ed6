// SPDX-License-Identifier: Apache-2.0
/**
 * The kernel layer: {@link KernelApi} (links, addresses, routes, neighbours, sysctls in any
 * network namespace named by path), its Linux implementation over in-process rtnetlink, and
 * an in-memory fake for tests.
 *
 * Why hand-written: no maintained npm library does netns-aware rtnetlink. Node cannot open an
 * AF_NETLINK socket or call setns(); the one npm netlink binding (`netlink@0.3.0`) is
 * unmaintained and always opens sockets in the calling thread's netns. So the N-API addon in
 * `native/` is ours (a socket created by a throwaway thread that did setns() keeps that netns),
 * and the rtnetlink codec (`codec.ts`) is written by hand in TypeScript. No `ip` processes are
 * spawned: an exec costs ~10 ms, a netlink request well under one.
 *
 * Errors are NsmErrors; errno → gRPC code mapping lives in `errors.ts` only.
 */
export type {
  AddressFilter,
  AddressInfo,
  AddressOptions,
  BridgeSpec,
  KernelApi,
  LinkChanges,
  LinkInfo,
  LinkRef,
  NeighborFilter,
  NeighborInfo,
  NeighborSpec,
  NeighborStateName,
  NetnsId,
  NetnsPath,
  RouteFilter,
  RouteInfo,
  RouteSpec,
  ScopeName,
  TunSpec,
  VethSpec,
  VxlanInfo,
  VxlanSpec,
} from "./api.js";
export { IFF, MAIN_TABLE, NUD, Scope } from "./api.js";
export { NETLINK_GENERIC, NETLINK_ROUTE } from "./codec.js";
export { codeFromErrno, errnoName, nsmErrorFromErrno, nsmErrorFromSystem } from "./errors.js";
export type { FakeKernel } from "./fake.js";
export { createFakeKernel } from "./fake.js";
export type { NativeBinding } from "./native.js";
export { loadNativeBinding } from "./native.js";
export type { NetlinkKernelOptions, NetlinkSocket } from "./netlink.js";
export { createNetlinkKernel, openNetlinkSocket, SELF_NETNS } from "./netlink.js";
