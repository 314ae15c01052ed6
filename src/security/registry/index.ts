// SPDX-License-Identifier: Apache-2.0
/**
 * Registry security: ready-made values for the `security` slot of the registry chains, and a
 * wrapper that secures a remote registry client.
 *
 * - {@link registryServerSecurity} for `memoryRegistry({ security })` and
 *   `nsmgrRegistry({ security })`: grpcmetadata server → updatepath(token generator) →
 *   authorize server (default policies common + registry + server; NSM_REGISTRY_SERVER_POLICIES).
 * - {@link registryClientSecurity} for `registryClient({ security })` (NSEs, forwarders):
 *   authorize client (common + registry + client; NSM_REGISTRY_CLIENT_POLICIES) →
 *   grpcmetadata client.
 * - {@link secureRegistryClients} wraps the gRPC clients nsmgr forwards to (the cluster
 *   registry), so that the path, grown by nsmgr's own server security, travels on.
 * The gRPC channels must be dialed with `secureDialOptions` (tokens and the call observer).
 */
import type { NseRegistry, NsRegistry } from "../../sdk/registry/api.js";
import type { RegistrySecurity } from "../../sdk/registry/chains/slots.js";
import { registryConnect } from "../../sdk/registry/common/connect/index.js";
import { bindRegistry, registryChain } from "../../sdk/registry/core/chain.js";
import { type NseTypes, type NsTypes, nseKind, nsKind } from "../../sdk/registry/core/kind.js";
import type { Policy } from "../policy/policy.js";
import type { TokenGenerator } from "../token.js";
import type { X509Bundle } from "../x509.js";
import { type ResourcePathIdsMap, registryAuthorizeClient, registryAuthorizeServer } from "./authorize.js";
import { registryGrpcMetadataClient, registryGrpcMetadataServer } from "./grpcmetadata.js";
import { registryUpdatePath } from "./updatepath.js";

export type { RegistryAuthorizeOptions, ResourcePathIdsMap } from "./authorize.js";
export { registryAuthorizeClient, registryAuthorizeServer } from "./authorize.js";
export { registryGrpcMetadataClient, registryGrpcMetadataServer } from "./grpcmetadata.js";
export type { RegistryPath, RegistryPathSegment } from "./path.js";
export {
  decodeRegistryPath,
  emptyRegistryPath,
  encodeRegistryPath,
  REGISTRY_PATH_METADATA_KEY,
  registryPathKey,
} from "./path.js";
export { advanceRegistryPath, registryUpdatePath } from "./updatepath.js";

export interface RegistryServerSecurityOptions {
  /** Mints this registry's tokens. Required. */
  readonly tokenGenerator: TokenGenerator;
  /** @default common + registry + server (built-in) */
  readonly policies?: readonly Policy[];
  /** The registry's trust bundle (tokens signed by a peer's rotated SVID). */
  readonly trustBundle?: () => X509Bundle | undefined;
}

/** The `security` slot value of the registry server chains (memory registry, nsmgr). */
export function registryServerSecurity(options: Readonly<RegistryServerSecurityOptions>): RegistrySecurity {
  const nsOwners: ResourcePathIdsMap = new Map();
  const nseOwners: ResourcePathIdsMap = new Map();
  const authorizeOptions = { policies: options.policies, trustBundle: options.trustBundle };
  return {
    ns: registryChain<NsTypes>(
      registryGrpcMetadataServer(),
      registryUpdatePath(nsKind, options.tokenGenerator),
      registryAuthorizeServer(nsKind, { ...authorizeOptions, resourcePathIdsMap: nsOwners }),
    ),
    nse: registryChain<NseTypes>(
      registryGrpcMetadataServer(),
      registryUpdatePath(nseKind, options.tokenGenerator),
      registryAuthorizeServer(nseKind, { ...authorizeOptions, resourcePathIdsMap: nseOwners }),
    ),
  };
}

export interface RegistryClientSecurityOptions {
  /** @default common + registry + client (built-in) */
  readonly policies?: readonly Policy[];
  /** The client's trust bundle (tokens signed by a peer's rotated SVID). */
  readonly trustBundle?: () => X509Bundle | undefined;
}

/** The `security` slot value of the registry client chain (NSEs and forwarders registering). */
export function registryClientSecurity(options: Readonly<RegistryClientSecurityOptions> = {}): RegistrySecurity {
  return {
    ns: registryChain<NsTypes>(
      registryAuthorizeClient(nsKind, { policies: options.policies, trustBundle: options.trustBundle }),
      registryGrpcMetadataClient(),
    ),
    nse: registryChain<NseTypes>(
      registryAuthorizeClient(nseKind, { policies: options.policies, trustBundle: options.trustBundle }),
      registryGrpcMetadataClient(),
    ),
  };
}

/**
 * Secures registry clients (e.g. `registryClients(channel)` to the cluster registry): authorize
 * client → grpcmetadata client → the given client. Pass the result as nsmgr's `registry`.
 */
export function secureRegistryClients(
  registries: { readonly ns: NsRegistry; readonly nse: NseRegistry },
  options: Readonly<RegistryClientSecurityOptions> = {},
): { ns: NsRegistry; nse: NseRegistry } {
  const security = registryClientSecurity(options);
  return {
    ns: bindRegistry(registryChain<NsTypes>(security.ns!, registryConnect<NsTypes>(registries.ns))),
    nse: bindRegistry(registryChain<NseTypes>(security.nse!, registryConnect<NseTypes>(registries.nse))),
  };
}
