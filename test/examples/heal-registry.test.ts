// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal/registry-remote-nsmgr and heal/registry-remote-forwarder, run from our examples' READMEs on `nsm up --nodes 2` (see ./readme.ts).
 * Two READMEs a file at most: a file must end within the suite's per-file timeout (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite("heal READMEs: registry restart with remote nsmgr or forwarder", [
  "registry-remote-nsmgr",
  "registry-remote-forwarder",
]);
