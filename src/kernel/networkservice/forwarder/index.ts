// SPDX-License-Identifier: Apache-2.0
/** kernelForwarderElements: everything a kernel forwarder plugs into `createForwarder` (see `elements.ts`). */
export type {
  KernelForwarderElements,
  KernelForwarderElementsOptions,
  KernelForwarderReconciliation,
  WireguardForwarderOptions,
} from "./elements.js";
export { kernelForwarderElements } from "./elements.js";
