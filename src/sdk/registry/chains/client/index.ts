// SPDX-License-Identifier: Apache-2.0
/**
 * registryClient: the registry chains NSEs and forwarders use to register with their nsmgr
 * (or any registry).
 *
 * Order (reference §7.3, registry client chain):
 * - NSE: begin → heal → refresh → security → clientinfo → [additional…] → connect(registry.nse)
 * - NS:  begin → security → [additional…] → connect(registry.ns)
 *
 * refresh keeps the NSE registered (re-Register at 2/3 of the lifetime the registry grants)
 * until it unregisters or the `signal` option aborts; `refresh: false` turns it off.
 * heal watches the NSE's own record on the same registry (Find, `watch: true`) and registers
 * again at once when that stream breaks (the nsmgr or the registry restarted) or shows the
 * record deleted, until it unregisters or `signal` aborts; `heal: false` turns it off.
 * `security` is a pass-through until the security issue fills it.
 */
import type { NseRegistry, NsRegistry } from "../../api.js";
import { registryBegin } from "../../common/begin/index.js";
import { type RegistryClientInfoOptions, registryClientInfo } from "../../common/clientinfo/index.js";
import { registryConnect } from "../../common/connect/index.js";
import { registryHeal } from "../../common/heal/index.js";
import { registryRefresh } from "../../common/refresh/index.js";
import { bindRegistry, type RegistryElement, registryChain, registryPassThrough } from "../../core/chain.js";
import { type NseTypes, type NsTypes, nseKind, nsKind } from "../../core/kind.js";
import { type RegistryChains, type RegistrySecurity, securitySlot } from "../slots.js";

export interface RegistryClientOptions {
  /** Where to register: usually `registryClients(channel)` to the nsmgr or registry. Required. */
  readonly registry: { readonly ns: NsRegistry; readonly nse: NseRegistry };
  /** Re-register NSEs before their registration expires. @default true */
  readonly refresh?: boolean;
  /** Delay between refresh attempts after a failure. @default 200 */
  readonly refreshRetryIntervalMs?: number;
  /**
   * Register NSEs again as soon as the registry loses them (the nsmgr or the registry
   * restarted), watching each NSE's own record. @default true
   */
  readonly heal?: boolean;
  /** Delay between heal attempts after a failure. @default 200 */
  readonly healRetryIntervalMs?: number;
  /** The client's lifetime: aborting it stops refreshing and healing. @default never */
  readonly signal?: AbortSignal;
  /** Node, pod and cluster labels added to registered NSEs. @default none */
  readonly clientInfo?: RegistryClientInfoOptions;
  /** Extra elements placed right before connect. @default none */
  readonly additional?: {
    readonly ns?: readonly RegistryElement<NsTypes>[];
    readonly nse?: readonly RegistryElement<NseTypes>[];
  };
  /** Security elements (later issue). @default pass-through */
  readonly security?: RegistrySecurity;
}

/** Builds the registry client chains. */
export function registryClient(options: Readonly<RegistryClientOptions>): RegistryChains {
  const security = securitySlot(options.security);
  const refresh =
    options.refresh === false
      ? registryPassThrough<NseTypes>("refresh")
      : registryRefresh({ signal: options.signal, retryIntervalMs: options.refreshRetryIntervalMs });
  const heal =
    options.heal === false
      ? registryPassThrough<NseTypes>("heal")
      : registryHeal({ signal: options.signal, retryIntervalMs: options.healRetryIntervalMs });
  return {
    nse: bindRegistry(
      registryChain<NseTypes>(
        registryBegin(nseKind),
        heal,
        refresh,
        security.nse,
        registryClientInfo(options.clientInfo),
        ...(options.additional?.nse ?? []),
        registryConnect<NseTypes>(options.registry.nse),
      ),
    ),
    ns: bindRegistry(
      registryChain<NsTypes>(
        registryBegin(nsKind),
        security.ns,
        ...(options.additional?.ns ?? []),
        registryConnect<NsTypes>(options.registry.ns),
      ),
    ),
  };
}
