// SPDX-License-Identifier: Apache-2.0
/**
 * The nsmgr: one per node, the entry point for the node's clients and endpoints.
 *
 * NetworkService chain (upstream order): endpoint base → clientinfo → discoverforwarder →
 * netsvcmonitor → connect(client chain without refresh) — nsmgr only chooses the local forwarder; the
 * forwarder chooses the endpoint. Healing is driven by the NSC, so nsmgr never refreshes.
 * Registry: nsmgr also serves both registries to its node (localbypass keeps local NSE
 * sockets off the cluster registry), backed by a remote registry or by memory.
 */
import type * as grpc from "@grpc/grpc-js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { Logger } from "../../../core/logger.js";
import type { DialOptions } from "../../../grpc/dial.js";
import { serveRegistry } from "../../../grpc/registry.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";
import { nsmgrRegistry } from "../../../registry/chains/nsmgr/index.js";
import type { RegistryChains, RegistrySecurity } from "../../../registry/chains/slots.js";
import { withQueryCache } from "../../../registry/common/querycache/index.js";
import { nseRegistryFromChain, nsRegistryFromChain } from "../../../registry/core/adapters.js";
import { type ClientInfoOptions, clientInfoClient } from "../../common/clientinfo/index.js";
import { connectServer } from "../../common/connect/index.js";
import { discoverForwarderServer } from "../../common/discoverforwarder/index.js";
import { excludedPrefixesServer } from "../../common/excludedprefixes/index.js";
import { netSvcMonitorServer } from "../../common/netsvcmonitor/index.js";
import { recvFdClient, recvFdServer } from "../../common/recvfd/index.js";
import { sendFdClient, sendFdServer } from "../../common/sendfd/index.js";
import { clientChain } from "../client/index.js";
import { createEndpoint, type Endpoint, type EndpointOptions } from "../endpoint/index.js";

export interface NsmgrOptions extends Omit<EndpointOptions, "additional"> {
  /** The URL published for local endpoints and used to find local forwarders (e.g. `tcp://198.18.0.1:5001`). */
  url: string;
  /** The cluster registry; omitted → an in-memory registry inside nsmgr. */
  registry?: { ns: NsRegistry; nse: NseRegistry };
  /** Node/pod/cluster labels stamped on connections and registrations. */
  clientInfo?: ClientInfoOptions;
  /** @default "forwarder" */
  forwarderServiceName?: string;
  /** Dial timeout to forwarders (NSM_DIAL_TIMEOUT). @default 750 */
  dialTimeoutMs?: number;
  /** NSE registration lifetime. @default 60000 */
  expirationMs?: number;
  /** nsmgr's lifetime (cancels registry expiry timers). */
  signal?: AbortSignal;
  /** Credentials and channel options for dialing forwarders (e.g. mTLS with path tokens). @default insecure */
  dialOptions?: DialOptions;
  /** The authorize slot of the client chain toward forwarders. @default pass-through */
  clientAuthorize?: NetworkServiceElement;
  /** The `security` slot of nsmgr's registry server chains. @default pass-through */
  registrySecurity?: RegistrySecurity;
  /**
   * The node's excluded-prefixes file (upstream `excluded_prefixes.yaml`, see excludedprefixes),
   * whose prefixes go into every request's `excluded_prefixes`. @default none read
   */
  excludedPrefixesFile?: string;
  log?: Logger;
}

export interface Nsmgr extends Endpoint {
  readonly registry: RegistryChains;
}

export function createNsmgr(options: NsmgrOptions): Nsmgr {
  const registry = nsmgrRegistry({
    nsmgrUrl: options.url,
    registry: options.registry,
    expirationMs: options.expirationMs,
    signal: options.signal,
    clientInfo: options.clientInfo,
    security: options.registrySecurity,
  });
  const lifetime = new AbortController();
  options.signal?.addEventListener("abort", () => lifetime.abort());
  // Forwarder look-ups repeat for every connection: keep them in a watched local cache.
  const { ns: nsRegistry, nse: nseRegistry } = withQueryCache(
    { ns: nsRegistryFromChain(registry.ns), nse: nseRegistryFromChain(registry.nse) },
    { signal: lifetime.signal },
  );
  const endpoint = createEndpoint({
    ...options,
    additional: [
      // Namespaces passed as descriptors (upstream's grpcfd): the NSC's come with its Request,
      // the NSE's with its response; each is checked against the sending process and sent on.
      // Only what came as a descriptor on this call goes on as one: a caller's plain path
      // passes unchanged, for the forwarder's pid-based check (sendfd `sends: "received"`).
      recvFdServer({ requireSenderNetns: true }),
      sendFdServer({ sends: "received" }),
      clientInfoClient(options.clientInfo ?? {}),
      discoverForwarderServer({
        nsRegistry,
        nseRegistry,
        nsmgrUrl: options.url,
        forwarderServiceName: options.forwarderServiceName,
      }),
      netSvcMonitorServer({ nsRegistry, nseRegistry, signal: lifetime.signal }),
      ...(options.excludedPrefixesFile
        ? [excludedPrefixesServer({ file: options.excludedPrefixesFile, log: options.log })]
        : []),
      connectServer(
        clientChain({
          name: options.name,
          dialTimeoutMs: options.dialTimeoutMs ?? 750,
          ...options.dialOptions,
          authorize: options.clientAuthorize,
          additional: [recvFdClient({ requireSenderNetns: true }), sendFdClient({ sends: "received" })],
        }),
      ),
    ],
  });
  return {
    ...endpoint,
    registry,
    dispose() {
      lifetime.abort();
      endpoint.dispose();
    },
    register(server: grpc.Server) {
      endpoint.register(server);
      serveRegistry(server, registry, { log: options.log });
    },
  };
}
