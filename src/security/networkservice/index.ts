// SPDX-License-Identifier: Apache-2.0
/**
 * Security elements of the NetworkService chains: values for the endpoint chain's
 * `updateToken` and `authorize` slots, the client chain's `authorize` slot, and the
 * MonitorConnections authorization.
 */
export type { AuthorizeClientOptions, AuthorizeServerOptions } from "./authorize.js";
export { authorizeClient, authorizeServer, nextHopCertificateOf, SpiffeIdConnectionMap } from "./authorize.js";
export type { AuthorizeMonitorOptions, MonitorConnectionServiceImpl } from "./monitor.js";
export { authorizeMonitorConnectionService } from "./monitor.js";
export type { NetnsOwnerCheckRequest, NetnsOwnership, NetnsOwnershipOptions } from "./netnsowner.js";
export { netnsOwnership, netnsUrlPid } from "./netnsowner.js";
export { updateTokenServer } from "./updatetoken.js";
