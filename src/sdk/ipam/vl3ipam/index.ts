// SPDX-License-Identifier: Apache-2.0
/** vL3 IPAM: the prefix pool, the `ipam.IPAM` service and the endpoint's stream to it. */
export { type PrefixWatchOptions, watchPrefix } from "./client.js";
export { PrefixPool } from "./pool.js";
export { PrefixLeases, serveVl3Ipam, type Vl3IpamOptions } from "./server.js";
