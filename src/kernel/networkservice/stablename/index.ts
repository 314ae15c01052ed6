// SPDX-License-Identifier: Apache-2.0
/** The forwarder's KERNEL mechanism client with interface names that survive a restart (see `client.ts`). */
export { connectionInterfaceName, stableKernelMechanismClient } from "./client.js";
