// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal/local-nse-death and heal/remote-nse-death (the endpoint replaced by a new pod template with new addresses), run from our examples' READMEs on `nsm up --nodes 2` (see ./readme.ts).
 * Two READMEs a file at most: a file must end within the suite's per-file timeout (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite("heal READMEs: endpoint death", ["local-nse-death", "remote-nse-death"]);
