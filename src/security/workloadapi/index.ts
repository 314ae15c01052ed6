// SPDX-License-Identifier: Apache-2.0
/**
 * The SPIFFE Workload API (`/SpiffeWorkloadAPI/*`, proto/spiffe/workload.proto): the client
 * that turns it into an X.509 source, and the embedded server that serves an embedded CA to
 * local workloads attested by unix peer (./peer.ts).
 */
export type { X509SourceOptions } from "./client.js";
export { createX509Source, SPIFFE_ENDPOINT_SOCKET_ENV, snapshotFromResponse, workloadApiTarget } from "./client.js";
export { netnsInodeOf, parentPid, resolveByNetns, resolveByProcessTree } from "./identity.js";
export type { NetlinkRequester, UnixPeerLookup, UnixPeerLookupOptions } from "./peer.js";
export {
  addonNetlinkRequester,
  createUnixPeerLookup,
  namedNetns,
  pidsHoldingSocket,
  unixPeerInode,
} from "./peer.js";
export type { ProcessIdentities, ProcessIdentity, ProcessIdentityResolverOptions } from "./processes.js";
export {
  processIdentity,
  processIdentityResolver,
  processStartTime,
  readProcessIdentities,
  writeProcessIdentities,
} from "./processes.js";
export type { ResolveIdentity, WorkloadApiServer, WorkloadApiServerOptions } from "./server.js";
export { serveWorkloadApi, WORKLOAD_API_HEADER } from "./server.js";
