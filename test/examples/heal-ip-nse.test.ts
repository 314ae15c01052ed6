// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal/remote-nse-death-ip (WireGuard between the nodes) and heal/dataplane-interrupt
 * (the client's interface set down from inside the pod; a background pinger notices, the
 * client's liveness check heals), run from our examples' READMEs on `nsm up --nodes 2` (see
 * ./readme.ts). Two READMEs a file at most: a file must end within the suite's per-file timeout
 * (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite(
  "heal READMEs: remote endpoint death over WireGuard, data plane interruption",
  ["remote-nse-death-ip", "dataplane-interrupt"],
  { wireguard: true },
);
