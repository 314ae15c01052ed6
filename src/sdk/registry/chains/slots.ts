// SPDX-License-Identifier: Apache-2.0
/** Types shared by the standard registry chains. */
import type { RegistryElement, RegistryHandler } from "../core/chain.js";
import { registryPassThrough } from "../core/chain.js";
import type { NseTypes, NsTypes } from "../core/kind.js";

/**
 * The place for registry security, implemented by a later issue: upstream runs
 * `grpcmetadata` (the `path` header, reference §1.4) → `updatepath` (path tokens, `path_ids`)
 * → `authorize` (registry policies) at this position. Until then the slot is a pass-through.
 */
export interface RegistrySecurity {
  /** Security elements of the NS registry chain. @default pass-through */
  readonly ns?: RegistryElement<NsTypes>;
  /** Security elements of the NSE registry chain. @default pass-through */
  readonly nse?: RegistryElement<NseTypes>;
}

/** A bound chain per registry; each has the shape of `NsRegistry` / `NseRegistry`. */
export interface RegistryChains {
  readonly ns: RegistryHandler<NsTypes>;
  readonly nse: RegistryHandler<NseTypes>;
}

/** The security slot of a chain: the given elements, or a pass-through named "security". */
export function securitySlot(security: RegistrySecurity | undefined): {
  ns: RegistryElement<NsTypes>;
  nse: RegistryElement<NseTypes>;
} {
  return {
    ns: security?.ns ?? registryPassThrough<NsTypes>("security"),
    nse: security?.nse ?? registryPassThrough<NseTypes>("security"),
  };
}
