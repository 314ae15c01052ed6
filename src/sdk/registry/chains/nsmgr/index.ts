// SPDX-License-Identifier: Apache-2.0
/**
 * nsmgrRegistry: the registries nsmgr serves to the NSEs and forwarders of its node.
 *
 * Order (reference §7.3):
 * - NSE: security → validation → begin → clientinfo → expire → localbypass(nsmgrUrl) →
 *   connect(remote NSE registry), or, without a remote registry, … → localbypass → memory.
 * - NS: security → validation → begin → connect(remote NS registry), or, without a remote
 *   registry, … → setpayload → memory.
 *
 * localbypass sits before memory in the local case (upstream puts it after): then the stored
 * records carry the nsmgr URL exactly as a remote registry's would, so forwarder discovery by
 * `url` = nsmgr URL finds them, and Find still returns the real URLs.
 * `security` is a pass-through until the security issue fills it.
 */
import type { NseRegistry, NsRegistry } from "../../api.js";
import { registryBegin } from "../../common/begin/index.js";
import { type RegistryClientInfoOptions, registryClientInfo } from "../../common/clientinfo/index.js";
import { registryConnect } from "../../common/connect/index.js";
import { registryExpire } from "../../common/expire/index.js";
import { registryLocalBypass } from "../../common/localbypass/index.js";
import { registryMemory } from "../../common/memory/index.js";
import { registrySetPayload } from "../../common/setpayload/index.js";
import { registryValidation } from "../../common/validation/index.js";
import { bindRegistry, type RegistryElement, registryChain } from "../../core/chain.js";
import { type NseTypes, type NsTypes, nseKind, nsKind } from "../../core/kind.js";
import { type RegistryChains, type RegistrySecurity, securitySlot } from "../slots.js";

export interface NsmgrRegistryOptions {
  /** The nsmgr's public URL, published for its local NSEs (e.g. `tcp://10.0.0.5:5001`). Required. */
  readonly nsmgrUrl: string;
  /** The cluster registry to forward to (e.g. `registryClients(channel)`). @default none: keep records in memory */
  readonly registry?: { readonly ns: NsRegistry; readonly nse: NseRegistry };
  /** Lifetime nsmgr gives an NSE registration. @default 60000 (1 min) */
  readonly expirationMs?: number;
  /** nsmgr's lifetime: aborting it cancels every scheduled expiry. @default never */
  readonly signal?: AbortSignal;
  /** Node, pod and cluster labels added to registered NSEs. @default none */
  readonly clientInfo?: RegistryClientInfoOptions;
  /** Security elements (later issue). @default pass-through */
  readonly security?: RegistrySecurity;
}

/** Builds nsmgr's registry chains. */
export function nsmgrRegistry(options: Readonly<NsmgrRegistryOptions>): RegistryChains {
  const security = securitySlot(options.security);
  const nseStore: RegistryElement<NseTypes> = options.registry
    ? registryConnect<NseTypes>(options.registry.nse)
    : registryMemory(nseKind);
  const nsStore: RegistryElement<NsTypes> = options.registry
    ? registryConnect<NsTypes>(options.registry.ns)
    : registryChain<NsTypes>(registrySetPayload(), registryMemory(nsKind));
  return {
    nse: bindRegistry(
      registryChain<NseTypes>(
        security.nse,
        registryValidation(nseKind),
        registryBegin(nseKind),
        registryClientInfo(options.clientInfo),
        registryExpire({ expirationMs: options.expirationMs, signal: options.signal }),
        registryLocalBypass(options.nsmgrUrl),
        nseStore,
      ),
    ),
    ns: bindRegistry(registryChain<NsTypes>(security.ns, registryValidation(nsKind), registryBegin(nsKind), nsStore)),
  };
}
