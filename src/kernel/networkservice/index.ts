// SPDX-License-Identifier: Apache-2.0
/**
 * The kernel forwarder's chain elements, one folder per element as in the sdk
 * (`src/sdk/networkservice/common/<element>/`):
 * - `forwarder/`: `kernelForwarderElements()`, everything a kernel forwarder plugs into
 *   `createForwarder` (mechanisms, cross-connects, the netns-ownership check, reconciliation);
 * - `veth/`: `kernelXconnectServer` / `kernelXconnectClient`, the local (same node) cross-connect:
 *   one veth pair between the client's and the endpoint's netns;
 * - `remote/`: `kernelRemoteXconnectServer` / `kernelRemoteXconnectClient`, the pod's end of a
 *   cross-node connection (a VXLAN device or a wireguard-go TUN);
 * - `wireguard/`: the wireguard-go runner (one process per tunnel, UAPI);
 * - `stablename/`: the KERNEL mechanism client whose interface names survive a restart;
 * - `ipcontext/`: the connection's IP context as per-netns plans, and their programming;
 * - `reconcile/`: what a killed forwarder left, re-adopted or swept after a restart;
 * - `xconnect/`: what the cross-connects share (tags, netns URLs, the ownership check, options).
 * Test support (`testing.ts`) is not exported here.
 */
export * from "./forwarder/index.js";
export * from "./ipcontext/index.js";
export * from "./reconcile/index.js";
export * from "./remote/index.js";
export * from "./stablename/index.js";
export * from "./veth/index.js";
export * from "./wireguard/index.js";
export * from "./xconnect/index.js";
