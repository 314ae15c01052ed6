// SPDX-License-Identifier: Apache-2.0
/**
 * storeRegistry: the cluster registry chain of `memoryRegistry` with an external store in place
 * of the memory element (the etcd and Kubernetes backends of `nsm registry`).
 *
 * Order (as the memory registry, reference §7.3):
 * - NSE: security → validation → begin → setregistrationtime → expire → store
 * - NS:  security → validation → begin → setpayload → store
 *
 * The expire element unregisters a record this replica registered when it expires; a store
 * with its own expiry (etcd leases) or a sweeper (Kubernetes) covers the records of a replica
 * that is gone.
 */

import type { NetworkService, NetworkServiceEndpoint } from "../api/gen/registry_pb.js";
import { type RegistryChains, type RegistrySecurity, securitySlot } from "../sdk/registry/chains/slots.js";
import { registryBegin } from "../sdk/registry/common/begin/index.js";
import { registryExpire } from "../sdk/registry/common/expire/index.js";
import { registrySetPayload } from "../sdk/registry/common/setpayload/index.js";
import { registrySetRegistrationTime } from "../sdk/registry/common/setregistrationtime/index.js";
import { registryValidation } from "../sdk/registry/common/validation/index.js";
import { bindRegistry, registryChain } from "../sdk/registry/core/chain.js";
import { type NseTypes, type NsTypes, nseKind, nsKind } from "../sdk/registry/core/kind.js";
import { type RecordStore, registryStore } from "./index.js";

export interface StoreRegistryOptions {
  readonly nseStore: RecordStore<NetworkServiceEndpoint>;
  readonly nsStore: RecordStore<NetworkService>;
  /** Lifetime of an NSE registration. @default 60000 (1 min) */
  readonly expirationMs?: number;
  /** The registry's lifetime: aborting it cancels every scheduled expiry. @default never */
  readonly signal?: AbortSignal;
  /** @default pass-through */
  readonly security?: RegistrySecurity;
}

/** Builds the registry on `nseStore` and `nsStore`, ready for `serveRegistry`. */
export function storeRegistry(options: Readonly<StoreRegistryOptions>): RegistryChains {
  const security = securitySlot(options.security);
  return {
    nse: bindRegistry(
      registryChain<NseTypes>(
        security.nse,
        registryValidation(nseKind),
        registryBegin(nseKind),
        registrySetRegistrationTime(),
        registryExpire({ expirationMs: options.expirationMs, signal: options.signal }),
        registryStore(nseKind, options.nseStore),
      ),
    ),
    ns: bindRegistry(
      registryChain<NsTypes>(
        security.ns,
        registryValidation(nsKind),
        registryBegin(nsKind),
        registrySetPayload(),
        registryStore(nsKind, options.nsStore),
      ),
    ),
  };
}
