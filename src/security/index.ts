// SPDX-License-Identifier: Apache-2.0
/**
 * Identity and authorization for NSM (DESIGN.md §7, reference upstream-nsm.md §6).
 *
 * - Identity: X.509-SVIDs (`spiffe://<trust domain>/…`) from a SPIFFE Workload API
 *   ({@link createX509Source}), or from the embedded CA ({@link createCa}) that the local runtime
 *   serves on a unix socket ({@link serveWorkloadApi}) with caller attestation by unix peer pid.
 * - Transport: gRPC over mTLS on every hop ({@link serverCredentials}, {@link channelCredentials},
 *   {@link secureDialOptions}), following SVID rotation; an explicit, loudly logged insecure mode.
 * - Path tokens: ES256 JWTs signed with the SVID key ({@link createTokenGenerator}), sent as
 *   per-RPC metadata by the channel credentials and written into the path by
 *   {@link updateTokenServer} and the registry {@link registryUpdatePath}.
 * - Policies: the seven upstream defaults as predicates, selected by the upstream env values
 *   ({@link loadPolicies}); user policies as ES modules. Enforced by {@link authorizeServer},
 *   {@link authorizeClient}, the registry security slot values and
 *   {@link authorizeMonitorConnectionService}.
 */
export type { CertificateAuthority, CreateCaOptions, IssueOptions, LoadCaOptions } from "./ca.js";
export { createCa, DEFAULT_CA_TTL_MS, DEFAULT_SVID_TTL_MS, loadCa } from "./ca.js";
export type {
  AuthorizeClientOptions,
  AuthorizeMonitorOptions,
  AuthorizeServerOptions,
  MonitorConnectionServiceImpl,
  NetnsOwnerCheckRequest,
  NetnsOwnership,
  NetnsOwnershipOptions,
} from "./networkservice/index.js";
export {
  authorizeClient,
  authorizeMonitorConnectionService,
  authorizeServer,
  netnsOwnership,
  netnsUrlPid,
  nextHopCertificateOf,
  SpiffeIdConnectionMap,
  updateTokenServer,
} from "./networkservice/index.js";
export type { CallObservation } from "./observe.js";
export { callObserverInterceptor, observeCalls } from "./observe.js";
export * from "./policy/index.js";
export type {
  RegistryAuthorizeOptions,
  RegistryClientSecurityOptions,
  RegistryPath,
  RegistryPathSegment,
  RegistryServerSecurityOptions,
  ResourcePathIdsMap,
} from "./registry/index.js";
export {
  advanceRegistryPath,
  decodeRegistryPath,
  emptyRegistryPath,
  encodeRegistryPath,
  REGISTRY_PATH_METADATA_KEY,
  registryAuthorizeClient,
  registryAuthorizeServer,
  registryClientSecurity,
  registryGrpcMetadataClient,
  registryGrpcMetadataServer,
  registryPathKey,
  registryServerSecurity,
  registryUpdatePath,
  secureRegistryClients,
} from "./registry/index.js";
export type { Security, SecurityOptions } from "./setup.js";
export { createSecurity } from "./setup.js";
export type { CaX509SourceOptions, SvidRotatorOptions, X509Snapshot, X509Source } from "./source.js";
export { createCaX509Source, DEFAULT_ROTATE_FRACTION, SvidRotator, staticX509Source } from "./source.js";
export type { SpiffeIdParts } from "./spiffeid.js";
export {
  checkTrustDomain,
  componentSpiffeId,
  isSpiffeId,
  parseSpiffeId,
  spiffeIdProblem,
  trustDomainId,
  trustDomainOf,
  workloadSpiffeId,
} from "./spiffeid.js";
export type { ChannelCredentialsOptions, TlsOptions } from "./tls.js";
export {
  channelCredentials,
  drainOnRotation,
  peerCertificateOf,
  peerSpiffeIdOf,
  secureDialOptions,
  serverCredentials,
} from "./tls.js";
export type { IncomingToken, PreciseTime, Token, TokenClaims, TokenGenerator, TokenGeneratorOptions } from "./token.js";
export {
  createTokenGenerator,
  DEFAULT_MAX_TOKEN_LIFETIME_MS,
  decodeTokenClaims,
  formatRfc3339Nano,
  parseRfc3339Nano,
  TOKEN_EXPIRES_METADATA_KEY,
  TOKEN_METADATA_KEY,
  tokenFromMetadata,
  tokenMetadata,
  tokenSubject,
  verifyTokenSignature,
} from "./token.js";
export * from "./workloadapi/index.js";
export type { X509Bundle, X509Svid } from "./x509.js";
export {
  chainsToBundle,
  createBundle,
  parseDerCertificates,
  spiffeIdOfCertificate,
  splitDerCertificates,
  svidFromDer,
  toPem,
  trySpiffeIdOfCertificate,
} from "./x509.js";
