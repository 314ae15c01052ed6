// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal/remote-nsmgr-restart-ip and heal/remote-forwarder-death-ip (WireGuard between the nodes), run from our examples' READMEs on `nsm up --nodes 2` (see ./readme.ts).
 * Two READMEs a file at most: a file must end within the suite's per-file timeout (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite(
  "heal READMEs over WireGuard: nsmgr and forwarder",
  ["remote-nsmgr-restart-ip", "remote-forwarder-death-ip"],
  { wireguard: true },
);
