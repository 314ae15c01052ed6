// SPDX-License-Identifier: Apache-2.0
/**
 * memoryRegistry: the cluster registry that keeps records in memory (cmd-registry-memory).
 *
 * Order (reference §7.3, without the interdomain switch):
 * - NSE: security → validation → begin → setregistrationtime → expire → memory
 * - NS:  security → validation → begin → setpayload → memory
 *
 * `security` is a pass-through until the security issue fills it. Stop the expiry timers with
 * the `signal` option when the registry shuts down.
 */

import { registryBegin } from "../../common/begin/index.js";
import { registryExpire } from "../../common/expire/index.js";
import { registryMemory } from "../../common/memory/index.js";
import { registrySetPayload } from "../../common/setpayload/index.js";
import { registrySetRegistrationTime } from "../../common/setregistrationtime/index.js";
import { registryValidation } from "../../common/validation/index.js";
import { bindRegistry, registryChain } from "../../core/chain.js";
import { type NseTypes, type NsTypes, nseKind, nsKind } from "../../core/kind.js";
import { type RegistryChains, type RegistrySecurity, securitySlot } from "../slots.js";

export interface MemoryRegistryOptions {
  /** Lifetime of an NSE registration (`expiration_time` = now + this). @default 60000 (1 min) */
  readonly expirationMs?: number;
  /** The registry's lifetime: aborting it cancels every scheduled expiry. @default never */
  readonly signal?: AbortSignal;
  /** Events a watcher may have pending before it is ended as too slow. @default 10000 */
  readonly maxPendingEvents?: number;
  /** Security elements (later issue). @default pass-through */
  readonly security?: RegistrySecurity;
}

/** Builds the memory registry: one bound chain per registry, ready for `serveRegistry`. */
export function memoryRegistry(options: Readonly<MemoryRegistryOptions> = {}): RegistryChains {
  const security = securitySlot(options.security);
  const memory = { maxPendingEvents: options.maxPendingEvents };
  return {
    nse: bindRegistry(
      registryChain<NseTypes>(
        security.nse,
        registryValidation(nseKind),
        registryBegin(nseKind),
        registrySetRegistrationTime(),
        registryExpire({ expirationMs: options.expirationMs, signal: options.signal }),
        registryMemory(nseKind, memory),
      ),
    ),
    ns: bindRegistry(
      registryChain<NsTypes>(
        security.ns,
        registryValidation(nsKind),
        registryBegin(nsKind),
        registrySetPayload(),
        registryMemory(nsKind, memory),
      ),
    ),
  };
}
