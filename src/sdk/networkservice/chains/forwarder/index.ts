// SPDX-License-Identifier: Apache-2.0
/**
 * The forwarder chain (control plane): chooses the endpoint and forwards to it.
 *
 * Order: endpoint base → first (elements that must see each incoming Request once, e.g. recvfd:
 * roundrobin runs what follows once per candidate endpoint) → discover → roundrobin → mechanisms (server side: what the client
 * offered) → additional (data-plane elements, e.g. the kernel cross-connect) →
 * connect(client: mechanismtranslation → mechanisms (client side: what this forwarder offers
 * the endpoint) → additional client elements → filtermechanisms).
 * The forwarder, not the nsmgr, selects the NSE (upstream). Data-plane elements act after
 * `next` returns, when both sides' mechanisms are known.
 */
import { type NetworkServiceElement, passThrough } from "../../../core/chain.js";
import type { Logger } from "../../../core/logger.js";
import type { DialOptions } from "../../../grpc/dial.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";
import { withQueryCache } from "../../../registry/common/querycache/index.js";
import { connectServer } from "../../common/connect/index.js";
import { discoverServer } from "../../common/discover/index.js";
import { filterMechanismsClient } from "../../common/filtermechanisms/index.js";
import { kernelMechanismClient } from "../../common/kernelmechanism/index.js";
import { type MechanismElements, mechanismsClient, mechanismsServer } from "../../common/mechanisms/index.js";
import { mechanismTranslationClient } from "../../common/mechanismtranslation/index.js";
import { roundRobinServer } from "../../common/roundrobin/index.js";
import { clientChain } from "../client/index.js";
import { createEndpoint, type Endpoint, type EndpointOptions } from "../endpoint/index.js";

export interface ForwarderOptions extends Omit<EndpointOptions, "additional"> {
  /** Registries as seen through the local nsmgr. */
  nsRegistry: NsRegistry;
  nseRegistry: NseRegistry;
  /** Server-side mechanism handlers (what clients may ask for). @default { KERNEL: pass-through } */
  serverMechanisms?: MechanismElements;
  /** Client-side mechanism handlers (what the forwarder offers endpoints). @default { KERNEL: kernel mechanism client } */
  clientMechanisms?: MechanismElements;
  /**
   * Server elements before endpoint selection: they see each incoming Request once, however many
   * candidate endpoints roundrobin tries (recvfd: a received descriptor is taken once per call).
   * @default []
   */
  first?: NetworkServiceElement[];
  /** Server elements after mechanism selection (data plane). @default [] */
  additional?: NetworkServiceElement[];
  /** Client elements before filtermechanisms. @default [] */
  additionalClient?: NetworkServiceElement[];
  /** @default 5000 */
  dialTimeoutMs?: number;
  /** Keep registry look-ups in a watched local cache. @default true */
  queryCache?: boolean;
  /** Credentials and channel options for dialing endpoints (e.g. mTLS with path tokens). @default insecure */
  dialOptions?: DialOptions;
  /** The authorize slot of the client chain toward endpoints. @default pass-through */
  clientAuthorize?: NetworkServiceElement;
  log?: Logger;
}

export function createForwarder(options: ForwarderOptions): Endpoint {
  const lifetime = new AbortController();
  const registries =
    options.queryCache === false
      ? { ns: options.nsRegistry, nse: options.nseRegistry }
      : withQueryCache({ ns: options.nsRegistry, nse: options.nseRegistry }, { signal: lifetime.signal });
  const client = clientChain({
    name: options.name,
    dialTimeoutMs: options.dialTimeoutMs,
    ...options.dialOptions,
    authorize: options.clientAuthorize,
    additional: [
      mechanismTranslationClient(),
      mechanismsClient(options.clientMechanisms ?? { KERNEL: kernelMechanismClient() }),
      ...(options.additionalClient ?? []),
      filterMechanismsClient(),
    ],
  });
  const endpoint = createEndpoint({
    ...options,
    additional: [
      ...(options.first ?? []),
      discoverServer({ nsRegistry: registries.ns, nseRegistry: registries.nse }),
      roundRobinServer(),
      mechanismsServer(options.serverMechanisms ?? { KERNEL: passThrough("kernel") }),
      ...(options.additional ?? []),
      connectServer(client),
    ],
  });
  return {
    ...endpoint,
    dispose() {
      lifetime.abort();
      endpoint.dispose();
    },
  };
}
