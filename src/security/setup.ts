// SPDX-License-Identifier: Apache-2.0
/**
 * One object a process builds at startup and takes every security piece from.
 *
 * `createSecurity({ socket: SPIFFE_ENDPOINT_SOCKET, maxTokenLifetimeMs: NSM_MAX_TOKEN_LIFETIME })`
 * connects to the Workload API and returns the server credentials, dial options, slot values
 * of the endpoint, client and registry chains, and the MonitorConnections wrapper, all sharing
 * the same source, token generator and peer → connection map. With `insecure: true` it needs no
 * Workload API: plaintext credentials (logged loudly), no tokens, and pass-through security
 * slots, because the policies cannot pass without certificates and tokens.
 */
import type * as grpc from "@grpc/grpc-js";
import { type NetworkServiceElement, passThrough } from "../sdk/core/chain.js";
import { invalidArgument } from "../sdk/core/errors.js";
import type { Logger } from "../sdk/core/logger.js";
import { silentLogger } from "../sdk/core/logger.js";
import type { DialOptions } from "../sdk/grpc/dial.js";
import { fdChannelCredentials } from "../sdk/grpc/fdtransport.js";
import type { NseRegistry, NsRegistry } from "../sdk/registry/api.js";
import type { RegistrySecurity } from "../sdk/registry/chains/slots.js";
import { authorizeClient, authorizeServer, SpiffeIdConnectionMap } from "./networkservice/authorize.js";
import { authorizeMonitorConnectionService, type MonitorConnectionServiceImpl } from "./networkservice/monitor.js";
import { updateTokenServer } from "./networkservice/updatetoken.js";
import type { Policy } from "./policy/policy.js";
import { registryClientSecurity, registryServerSecurity, secureRegistryClients } from "./registry/index.js";
import type { X509Source } from "./source.js";
import { secureDialOptions, serverCredentials } from "./tls.js";
import { createTokenGenerator, type TokenGenerator } from "./token.js";
import { createX509Source, type X509SourceOptions } from "./workloadapi/client.js";

export interface SecurityOptions {
  /** The Workload API address (SPIFFE_ENDPOINT_SOCKET). Required unless `source` or `insecure`. */
  readonly socket?: string;
  /** Use this source instead of connecting to a Workload API (it is not closed by `close()`). */
  readonly source?: X509Source;
  /** Plaintext and no authorization (tests only; logged loudly). @default false */
  readonly insecure?: boolean;
  /** NSM_MAX_TOKEN_LIFETIME. @default 10 min */
  readonly maxTokenLifetimeMs?: number;
  /**
   * Pass network namespaces as descriptors on unix sockets (upstream's grpcfd): dial with
   * descriptor-passing credentials, and serve with {@link Security.passFds}. @default false
   */
  readonly passFds?: boolean;
  /** Options of the Workload API client. */
  readonly workloadApi?: Omit<X509SourceOptions, "socket" | "log">;
  readonly log?: Logger;
}

/** Everything a process needs from the security library, ready to plug in. */
export interface Security {
  readonly insecure: boolean;
  /** Whether unix sockets pass descriptors (see {@link SecurityOptions.passFds}). */
  readonly passFds: boolean;
  /** Undefined in insecure mode. */
  readonly source: X509Source | undefined;
  /** Undefined in insecure mode. */
  readonly tokenGenerator: TokenGenerator | undefined;
  /** Peer SPIFFE ID → connections it requested here (filled by `endpoint().authorize`). */
  readonly spiffeIdConnectionMap: SpiffeIdConnectionMap;
  /** For `server.bindAsync` (every listen URL). */
  serverCredentials(): grpc.ServerCredentials;
  /** For `dialChannel`, `clientChain`/`createClient` options and other dials (unix targets pass descriptors, see fdtransport.ts). */
  dialOptions(expectedPeer?: string): Required<Pick<DialOptions, "credentials" | "channelOptions">>;
  /** `updateToken` and `authorize` slot values for `createEndpoint` (default server policies). */
  endpoint(policies?: readonly Policy[]): { updateToken: NetworkServiceElement; authorize: NetworkServiceElement };
  /** The `authorize` slot value for client chains (default client policies). */
  clientAuthorize(policies?: readonly Policy[]): NetworkServiceElement;
  /** The `security` slot value of registry server chains (memory registry, nsmgr). */
  registryServer(policies?: readonly Policy[]): RegistrySecurity | undefined;
  /** The `security` slot value of the registry client chain (NSEs, forwarders). */
  registryClient(policies?: readonly Policy[]): RegistrySecurity | undefined;
  /** Wraps the clients nsmgr forwards registrations to. */
  secureRegistryClients(
    registries: { readonly ns: NsRegistry; readonly nse: NseRegistry },
    policies?: readonly Policy[],
  ): { ns: NsRegistry; nse: NseRegistry };
  /** Wraps the MonitorConnection service (no policy by default, as upstream). */
  monitor(service: MonitorConnectionServiceImpl, policies?: readonly Policy[]): MonitorConnectionServiceImpl;
  /** Closes the Workload API source (when this object opened it). */
  close(): void;
}

/** Builds the {@link Security} of a process. */
export async function createSecurity(options: Readonly<SecurityOptions>): Promise<Security> {
  const log = options.log ?? silentLogger;
  const insecure = options.insecure === true;
  let source = options.source;
  const owned = !insecure && !source;
  if (owned) {
    if (!options.socket) throw invalidArgument("SPIFFE_ENDPOINT_SOCKET is not set (or use insecure mode)");
    source = await createX509Source({ ...options.workloadApi, socket: options.socket, log });
    log.info({ spiffeId: source.current().svid.spiffeId }, "X.509-SVID obtained");
  }
  if (insecure) source = undefined;
  const tokenGenerator = source
    ? createTokenGenerator(source, { maxTokenLifetimeMs: options.maxTokenLifetimeMs })
    : undefined;
  const connections = new SpiffeIdConnectionMap();
  const trustBundle = () => source?.current().bundle;
  const serverCreds = serverCredentials(source, { insecure, log });
  return {
    insecure,
    passFds: options.passFds ?? false,
    source,
    tokenGenerator,
    spiffeIdConnectionMap: connections,
    serverCredentials: () => serverCreds,
    dialOptions: (expectedPeer) => {
      const o = secureDialOptions(source, { insecure, log, tokenGenerator, expectedPeer });
      return options.passFds ? { ...o, credentials: fdChannelCredentials(o.credentials) } : o;
    },
    endpoint: (policies) =>
      tokenGenerator
        ? {
            updateToken: updateTokenServer(tokenGenerator),
            authorize: authorizeServer({ policies, spiffeIdConnectionMap: connections, trustBundle }),
          }
        : { updateToken: passThrough("updatetoken"), authorize: passThrough("authorize") },
    clientAuthorize: (policies) =>
      insecure ? passThrough("authorizeClient") : authorizeClient({ policies, trustBundle }),
    registryServer: (policies) =>
      tokenGenerator ? registryServerSecurity({ tokenGenerator, policies, trustBundle }) : undefined,
    registryClient: (policies) => (insecure ? undefined : registryClientSecurity({ policies, trustBundle })),
    secureRegistryClients: (registries, policies) =>
      insecure
        ? { ns: registries.ns, nse: registries.nse }
        : secureRegistryClients(registries, { policies, trustBundle }),
    monitor: (service, policies) =>
      insecure ? service : authorizeMonitorConnectionService(service, { policies, spiffeIdConnectionMap: connections }),
    close: () => {
      if (owned) source?.close();
    },
  };
}
