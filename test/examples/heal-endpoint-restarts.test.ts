// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal/remote-nsmgr-remote-endpoint and heal/registry-local-endpoint (a restart in nsm-system while the endpoint is replaced), run from our examples' READMEs on `nsm up --nodes 2` (see ./readme.ts).
 * Two READMEs a file at most: a file must end within the suite's per-file timeout (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite("heal READMEs: nsm-system restart and endpoint replacement", [
  "remote-nsmgr-remote-endpoint",
  "registry-local-endpoint",
]);
