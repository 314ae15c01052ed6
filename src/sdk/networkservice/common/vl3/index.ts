// SPDX-License-Identifier: Apache-2.0
/** vL3: an endpoint's share of the vL3 network and the elements that hand it out and announce it. */
export { vl3Client } from "./client.js";
export { Vl3Network, type Vl3Share } from "./network.js";
export { connectsTo, type Vl3Peers, type Vl3PeersOptions, vl3Peers } from "./peers.js";
export { announcesBlock, vl3Server } from "./server.js";
