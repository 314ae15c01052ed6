// SPDX-License-Identifier: Apache-2.0
/**
 * Security elements of the NetworkService chains: values for the endpoint chain's
 * `updateToken` and `authorize` slots, the client chain's `authorize` slot, and the
 * MonitorConnections authorization.
 */
export type { AuthorizeClientOptions, AuthorizeServerOptions } from "./authorize.js";
export { authorizeClient, authorizeServer, SpiffeIdConnectionMap } from "./authorize.js";
export type { AuthorizeMonitorOptions, MonitorConnectionServiceImpl } from "./monitor.js";
export { authorizeMonitorConnectionService } from "./monitor.js";
export { updateTokenServer } from "./updatetoken.js";
